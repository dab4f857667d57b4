#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t appendf(char *buf, size_t cap, size_t len, const char *fmt, ...) {
    if (len >= cap) return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0) return len;
    len += (size_t)n;
    return len < cap ? len : cap - 1;
}

typedef struct {
    const char *start;
    int len;
} word;

/* Lays out words[from..to) on one line of `width` columns. */
static void emit_line(word *words, int from, int to, layout lay, int last, int number,
                      line_fn out, void *ctx) {
    char line[256];
    size_t len = 0;
    int text_len = 0;
    for (int i = from; i < to; i++) text_len += words[i].len;
    int gaps = to - from - 1;
    int indent = lay.bullet ? 2 : 0;
    int room = lay.width - indent;
    int spaces = gaps;
    int pad_left = 0;
    if (lay.how == ALIGN_RIGHT) pad_left = room - text_len - gaps;
    if (lay.how == ALIGN_CENTER) pad_left = (room - text_len - gaps) / 2;
    if (lay.how == ALIGN_JUSTIFY && !last && gaps > 0) spaces = room - text_len;
    if (lay.bullet) len = appendf(line, sizeof line, len, "%c ", number == 0 ? lay.bullet : ' ');
    len = appendf(line, sizeof line, len, "%*s", pad_left, "");
    for (int i = from; i < to; i++) {
        len = appendf(line, sizeof line, len, "%.*s", words[i].len, words[i].start);
        if (i + 1 < to) {
            /* Spread the extra spaces, the leftmost gaps getting one more. */
            int k = i - from;
            int here = spaces / gaps + (k < spaces % gaps ? 1 : 0);
            len = appendf(line, sizeof line, len, "%*s", here, "");
        }
    }
    out(ctx, number, line);
}

int fill(const char *text, layout lay, line_fn out, void *ctx) {
    word words[512];
    int nwords = 0;
    const char *p = text;
    while (*p && nwords < 512) {
        while (*p == ' ' || *p == '\n' || *p == '\t') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\n' && *p != '\t') p++;
        words[nwords].start = s;
        words[nwords].len = (int)(p - s);
        nwords++;
    }
    int room = lay.width - (lay.bullet ? 2 : 0);
    int lines = 0, from = 0;
    while (from < nwords) {
        int to = from + 1, used = words[from].len;
        while (to < nwords && used + 1 + words[to].len <= room) used += 1 + words[to++].len;
        emit_line(words, from, to, lay, to == nwords, lines, out, ctx);
        lines++;
        from = to;
    }
    return lines;
}
