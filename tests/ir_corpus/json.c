/* A JSON-ish parser and pretty-printer.
 *
 * Errors unwind out of the recursive-descent parser with longjmp, after a
 * variadic error reporter formats them (vsnprintf on a va_copy, so the
 * same arguments are formatted twice). A variadic `emit` builds the pretty
 * printer's output; numbers are printed with printf's %g and %.3f. The
 * last document is a "fatal" one: its handler calls exit(3) from deep
 * inside the recursion, so the program's status is 3 and the atexit
 * handler still prints its summary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jvalue {
    jtype type;
    double num;
    int boolean;
    char *str;
    struct jvalue **items; /* array elements or object values */
    char **keys;           /* object keys */
    int count, cap;
} jvalue;

typedef struct {
    const char *src;
    int pos;
    int line;
    int depth;
    jmp_buf on_error;
    char message[160];
    int fatal;
    struct jvalue *root; /* what an error must free */
} parser;

static int documents_parsed, documents_failed, values_made;

/* Formats the message twice: once to measure, once into the buffer. */
static void parse_error(parser *p, const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "line %d col %d: ", p->line, p->pos);
    size_t plen = strlen(prefix);
    memcpy(p->message, prefix, plen + 1);
    vsnprintf(p->message + plen, sizeof p->message - plen, fmt, again);
    va_end(again);
    if (need + plen >= sizeof p->message) strcpy(p->message + sizeof p->message - 4, "...");
    longjmp(p->on_error, 1);
}

/* A growing output buffer written with printf-style formats. */
typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void emit(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (sb->len + (size_t)n + 1 > sb->cap) {
        while (sb->len + (size_t)n + 1 > sb->cap) sb->cap = sb->cap ? sb->cap * 2 : 64;
        sb->buf = realloc(sb->buf, sb->cap);
    }
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
    va_end(ap);
}

/* Sums `count` doubles passed as variadic arguments. */
static double sum_doubles(int count, ...) {
    va_list ap;
    va_start(ap, count);
    double total = 0;
    for (int i = 0; i < count; i++) total += va_arg(ap, double);
    va_end(ap);
    return total;
}

/* Mixed variadic kinds: a format of 'i' (int), 'l' (long), 'd' (double), 's'. */
static long mixed(const char *kinds, ...) {
    va_list ap;
    va_start(ap, kinds);
    long acc = 0;
    for (const char *k = kinds; *k; k++) {
        switch (*k) {
        case 'i': acc = acc * 3 + va_arg(ap, int); break;
        case 'l': acc = acc * 5 + va_arg(ap, long); break;
        case 'd': acc = acc * 7 + (long)(va_arg(ap, double) * 100); break;
        case 's': acc = acc * 11 + (long)strlen(va_arg(ap, const char *)); break;
        }
    }
    va_end(ap);
    return acc;
}

static jvalue *new_value(jtype t) {
    jvalue *v = calloc(1, sizeof *v);
    v->type = t;
    values_made++;
    return v;
}

static void push_item(jvalue *v, char *key, jvalue *item) {
    if (v->count == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        v->items = realloc(v->items, sizeof *v->items * (size_t)v->cap);
        v->keys = realloc(v->keys, sizeof *v->keys * (size_t)v->cap);
    }
    v->keys[v->count] = key;
    v->items[v->count++] = item;
}

static void free_value(jvalue *v) {
    if (!v) return;
    for (int i = 0; i < v->count; i++) {
        free_value(v->items[i]);
        free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static void skip_ws(parser *p) {
    for (;;) {
        char c = p->src[p->pos];
        if (c == '\n') { p->line++; p->pos++; }
        else if (c == ' ' || c == '\t' || c == '\r') p->pos++;
        else break;
    }
}

static jvalue *parse_value(parser *p, jvalue **owner);

static char *parse_string(parser *p) {
    if (p->src[p->pos] != '"') parse_error(p, "expected '\"', found '%c'", p->src[p->pos]);
    p->pos++;
    size_t cap = 16, len = 0;
    char *out = malloc(cap);
    for (;;) {
        char c = p->src[p->pos++];
        if (c == 0) { free(out); parse_error(p, "unterminated string after %zu chars", len); }
        if (c == '"') break;
        if (c == '\\') {
            char e = p->src[p->pos++];
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            default: free(out); parse_error(p, "bad escape '\\%c'", e);
            }
        }
        if (len + 2 > cap) out = realloc(out, cap *= 2);
        out[len++] = c;
    }
    out[len] = 0;
    return out;
}

/* Values under construction hang off `owner` so an error can free them. */
static jvalue *parse_value(parser *p, jvalue **owner) {
    skip_ws(p);
    if (++p->depth > 40) {
        if (p->fatal) {
            printf("fatal: nesting deeper than 40 at line %d; giving up\n", p->line);
            fflush(stdout);
            exit(3);
        }
        parse_error(p, "nesting deeper than %d", 40);
    }
    char c = p->src[p->pos];
    jvalue *v;
    if (c == '{' || c == '[') {
        v = new_value(c == '{' ? J_OBJ : J_ARR);
        *owner = v;
        p->pos++;
        skip_ws(p);
        char close = c == '{' ? '}' : ']';
        if (p->src[p->pos] == close) {
            p->pos++;
        } else {
            for (;;) {
                skip_ws(p);
                char *key = NULL;
                if (v->type == J_OBJ) {
                    key = parse_string(p);
                    skip_ws(p);
                    if (p->src[p->pos] != ':') { free(key); parse_error(p, "expected ':' after key \"%s\"", "?"); }
                    p->pos++;
                }
                push_item(v, key, NULL);
                parse_value(p, &v->items[v->count - 1]);
                skip_ws(p);
                if (p->src[p->pos] == ',') { p->pos++; continue; }
                if (p->src[p->pos] == close) { p->pos++; break; }
                parse_error(p, "expected ',' or '%c' in %s of %d items", close,
                            v->type == J_OBJ ? "object" : "array", v->count);
            }
        }
    } else if (c == '"') {
        v = new_value(J_STR);
        *owner = v;
        v->str = parse_string(p);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        double d = strtod(p->src + p->pos, &end);
        v = new_value(J_NUM);
        *owner = v;
        v->num = d;
        p->pos = (int)(end - p->src);
    } else if (strncmp(p->src + p->pos, "true", 4) == 0 || strncmp(p->src + p->pos, "false", 5) == 0) {
        v = new_value(J_BOOL);
        *owner = v;
        v->boolean = c == 't';
        p->pos += v->boolean ? 4 : 5;
    } else if (strncmp(p->src + p->pos, "null", 4) == 0) {
        v = new_value(J_NULL);
        *owner = v;
        p->pos += 4;
    } else {
        parse_error(p, "unexpected character '%c' (code %d)", c ? c : '?', c);
        return NULL;
    }
    p->depth--;
    return v;
}

static void pretty(strbuf *sb, const jvalue *v, int indent) {
    switch (v->type) {
    case J_NULL: emit(sb, "null"); break;
    case J_BOOL: emit(sb, "%s", v->boolean ? "true" : "false"); break;
    case J_NUM:
        if (v->num == (long)v->num) emit(sb, "%ld", (long)v->num);
        else emit(sb, "%g", v->num);
        break;
    case J_STR: emit(sb, "\"%s\"", v->str); break;
    case J_ARR:
    case J_OBJ: {
        int obj = v->type == J_OBJ;
        if (v->count == 0) { emit(sb, obj ? "{}" : "[]"); break; }
        emit(sb, "%c\n", obj ? '{' : '[');
        for (int i = 0; i < v->count; i++) {
            emit(sb, "%*s", indent + 2, "");
            if (obj) emit(sb, "\"%s\": ", v->keys[i]);
            pretty(sb, v->items[i], indent + 2);
            emit(sb, "%s\n", i + 1 < v->count ? "," : "");
        }
        emit(sb, "%*s%c", indent, "", obj ? '}' : ']');
        break;
    }
    }
}

typedef struct {
    int nulls, bools, numbers, strings, arrays, objects, max_depth;
    double sum;
} stats;

static void collect(const jvalue *v, stats *s, int depth) {
    if (depth > s->max_depth) s->max_depth = depth;
    switch (v->type) {
    case J_NULL: s->nulls++; break;
    case J_BOOL: s->bools++; break;
    case J_NUM: s->numbers++; s->sum += v->num; break;
    case J_STR: s->strings++; break;
    case J_ARR: s->arrays++; break;
    case J_OBJ: s->objects++; break;
    }
    for (int i = 0; i < v->count; i++) collect(v->items[i], s, depth + 1);
}

static void report(void) {
    printf("atexit: %d documents parsed, %d failed, %d values made\n", documents_parsed,
           documents_failed, values_made);
}

static int handle(const char *name, const char *text, int fatal) {
    parser p;
    memset(&p, 0, sizeof p);
    p.src = text;
    p.line = 1;
    p.fatal = fatal;
    printf("== %s\n", name);
    if (setjmp(p.on_error)) {
        printf("error: %s\n", p.message);
        free_value(p.root);
        documents_failed++;
        return 1;
    }
    parse_value(&p, &p.root);
    jvalue *r = p.root;
    skip_ws(&p);
    if (p.src[p.pos]) parse_error(&p, "trailing text '%.8s'", p.src + p.pos);
    strbuf sb = {0, 0, 0};
    pretty(&sb, r, 0);
    printf("%s\n", sb.buf);
    stats s;
    memset(&s, 0, sizeof s);
    collect(r, &s, 0);
    printf("stats: null=%d bool=%d num=%d str=%d arr=%d obj=%d depth=%d sum=%.3f mean=%.4f\n",
           s.nulls, s.bools, s.numbers, s.strings, s.arrays, s.objects, s.max_depth, s.sum,
           s.numbers ? s.sum / s.numbers : 0.0);
    free(sb.buf);
    free_value(r);
    documents_parsed++;
    return 0;
}

static const char *const docs[][2] = {
    {"config", "{\"name\": \"orc\", \"version\": 13, \"ratio\": 0.6, \"tiers\": [0, 1, \"adaptive\"],\n"
               " \"lazy\": true, \"eager\": false, \"parent\": null,\n"
               " \"limits\": {\"start\": 0.2, \"steady\": 1.1, \"escapes\": \"tab\\there\\n\"}}"},
    {"matrix", "[[1, 2, 3], [4.5, -5.25, 6e2], [7, 8, 9.125], []]"},
    {"bad-escape", "{\"a\": \"x\\q\"}"},
    {"missing-colon", "{\"key\" 1}"},
    {"unterminated", "[1, 2, \"abc"},
    {"trailing", "[1] [2]"},
    {"bad-char", "[1, @]"},
    {"people", "[{\"name\": \"Ada\", \"born\": 1815, \"langs\": [\"analytical engine\"]},\n"
               " {\"name\": \"Grace\", \"born\": 1906, \"langs\": [\"COBOL\", \"FLOW-MATIC\"]},\n"
               " {\"name\": \"Edsger\", \"born\": 1930, \"langs\": [\"ALGOL 60\"], \"quote\": \"goto considered harmful\"}]"},
};

int main(int argc, char **argv) {
    atexit(report);
    int failures = 0;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) failures += handle(docs[i][0], docs[i][1], 0);
    printf("failures so far: %d\n", failures);
    printf("sum_doubles: %.6f %.6f\n", sum_doubles(3, 0.5, 1.25, -2.0),
           sum_doubles(6, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 1e10));
    printf("mixed: %ld %ld\n", mixed("ildsi", 7, 100000000000L, 3.14159, "hello", -2),
           mixed("dddddddd", 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.5));
    /* Nesting: a deep but legal document, then one too deep (recoverable). */
    int depth = argc > 1 ? atoi(argv[1]) : 30;
    char *deep = malloc((size_t)depth * 2 + 8);
    for (int i = 0; i < depth; i++) deep[i] = '[';
    deep[depth] = '1';
    for (int i = 0; i < depth; i++) deep[depth + 1 + i] = ']';
    deep[2 * depth + 1] = 0;
    failures += handle("deep", deep, 0);
    char *too_deep = malloc(64 * 2 + 8);
    for (int i = 0; i < 64; i++) too_deep[i] = '[';
    too_deep[64] = 0;
    failures += handle("too-deep", too_deep, 0);
    printf("failures: %d\n", failures);
    /* The fatal handler exits from inside parse_value, 41 frames down. */
    handle("fatal", too_deep, 1);
    printf("not reached\n");
    return 0;
}
