#include "text.h"

#include <stdlib.h>
#include <string.h>

/* A compiled node: one atom with its quantifier. */
enum kind { K_CHAR, K_ANY, K_CLASS, K_BOL, K_EOL };
enum quant { Q_ONE, Q_STAR, Q_PLUS, Q_OPT };

typedef struct {
    enum kind kind;
    enum quant quant;
    char ch;
    unsigned char set[32]; /* bitmap for classes */
} node;

struct regex {
    node *nodes;
    int count;
};

static void set_bit(unsigned char *set, int c) { set[(unsigned char)c >> 3] |= (unsigned char)(1u << (c & 7)); }
static int has_bit(const unsigned char *set, int c) { return set[(unsigned char)c >> 3] >> (c & 7) & 1; }

static void add_range(unsigned char *set, int lo, int hi) {
    for (int c = lo; c <= hi; c++) set_bit(set, c);
}

static void add_escape(unsigned char *set, char e) {
    switch (e) {
    case 'd': add_range(set, '0', '9'); break;
    case 'w': add_range(set, 'a', 'z'); add_range(set, 'A', 'Z'); add_range(set, '0', '9'); set_bit(set, '_'); break;
    case 's': set_bit(set, ' '); set_bit(set, '\t'); set_bit(set, '\n'); break;
    default: set_bit(set, e); break;
    }
}

regex *re_compile(const char *pattern, const char **error) {
    size_t n = strlen(pattern);
    regex *re = malloc(sizeof *re);
    re->nodes = calloc(n + 1, sizeof(node));
    re->count = 0;
    *error = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = pattern[i];
        node *nd = &re->nodes[re->count];
        memset(nd, 0, sizeof *nd);
        if (c == '*' || c == '+' || c == '?') {
            if (re->count == 0 || re->nodes[re->count - 1].quant != Q_ONE ||
                re->nodes[re->count - 1].kind == K_BOL) {
                *error = "quantifier without an atom";
                re_free(re);
                return NULL;
            }
            re->nodes[re->count - 1].quant = c == '*' ? Q_STAR : c == '+' ? Q_PLUS : Q_OPT;
            continue;
        }
        if (c == '^' && i == 0) {
            nd->kind = K_BOL;
        } else if (c == '$' && i + 1 == n) {
            nd->kind = K_EOL;
        } else if (c == '.') {
            nd->kind = K_ANY;
        } else if (c == '\\') {
            if (i + 1 == n) { *error = "trailing backslash"; re_free(re); return NULL; }
            char e = pattern[++i];
            if (e == 'd' || e == 'w' || e == 's') {
                nd->kind = K_CLASS;
                add_escape(nd->set, e);
            } else {
                nd->kind = K_CHAR;
                nd->ch = e;
            }
        } else if (c == '[') {
            nd->kind = K_CLASS;
            int negate = 0;
            i++;
            if (i < n && pattern[i] == '^') { negate = 1; i++; }
            int first = 1;
            while (i < n && (pattern[i] != ']' || first)) {
                first = 0;
                if (pattern[i] == '\\' && i + 1 < n) {
                    add_escape(nd->set, pattern[++i]);
                } else if (i + 2 < n && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
                    add_range(nd->set, (unsigned char)pattern[i], (unsigned char)pattern[i + 2]);
                    i += 2;
                } else {
                    set_bit(nd->set, pattern[i]);
                }
                i++;
            }
            if (i >= n) { *error = "unterminated class"; re_free(re); return NULL; }
            if (negate)
                for (int b = 0; b < 32; b++) nd->set[b] = (unsigned char)~nd->set[b];
            set_bit(nd->set, 0) ; /* never match the terminator: cleared below */
            nd->set[0] &= (unsigned char)~1u;
        } else {
            nd->kind = K_CHAR;
            nd->ch = c;
        }
        re->count++;
    }
    return re;
}

void re_free(regex *re) {
    if (!re) return;
    free(re->nodes);
    free(re);
}

int re_nodes(const regex *re) { return re->count; }

static int match_one(const node *nd, const char *text, int pos) {
    char c = text[pos];
    switch (nd->kind) {
    case K_CHAR: return c != 0 && c == nd->ch;
    case K_ANY: return c != 0 && c != '\n';
    case K_CLASS: return c != 0 && has_bit(nd->set, (unsigned char)c);
    default: return 0;
    }
}

/* Returns the end of a match of nodes[i..] at pos, or -1. */
static int match_here(const regex *re, int i, const char *text, int pos) {
    if (i == re->count) return pos;
    const node *nd = &re->nodes[i];
    if (nd->kind == K_BOL) return pos == 0 ? match_here(re, i + 1, text, pos) : -1;
    if (nd->kind == K_EOL) return text[pos] == 0 ? pos : -1;
    switch (nd->quant) {
    case Q_ONE:
        return match_one(nd, text, pos) ? match_here(re, i + 1, text, pos + 1) : -1;
    case Q_OPT:
        if (match_one(nd, text, pos)) {
            int end = match_here(re, i + 1, text, pos + 1);
            if (end >= 0) return end;
        }
        return match_here(re, i + 1, text, pos);
    case Q_STAR:
    case Q_PLUS: {
        int max = pos;
        while (match_one(nd, text, max)) max++;
        int min = nd->quant == Q_PLUS ? pos + 1 : pos;
        for (int k = max; k >= min; k--) {
            int end = match_here(re, i + 1, text, k);
            if (end >= 0) return end;
        }
        return -1;
    }
    }
    return -1;
}

int re_search(const regex *re, const char *text, int from, int *len) {
    int n = (int)strlen(text);
    for (int start = from; start <= n; start++) {
        int end = match_here(re, 0, text, start);
        if (end >= 0) {
            *len = end - start;
            return start;
        }
        if (re->count > 0 && re->nodes[0].kind == K_BOL) break;
    }
    return -1;
}

int re_for_each(const regex *re, const char *text, match_fn fn, void *ctx) {
    int count = 0, pos = 0, len;
    int n = (int)strlen(text);
    while (pos <= n) {
        int start = re_search(re, text, pos, &len);
        if (start < 0) break;
        fn(ctx, text, start, len);
        count++;
        pos = start + (len > 0 ? len : 1);
    }
    return count;
}
