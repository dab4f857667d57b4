/* A growable string builder. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calc.h"

static void reserve(StrBuf *sb, size_t extra) {
    if (sb->len + extra + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 16;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    sb->data = realloc(sb->data, cap);
    if (!sb->data) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    sb->cap = cap;
}

StrBuf *strbuf_new(void) {
    StrBuf *sb = calloc(1, sizeof *sb);
    reserve(sb, 0);
    sb->data[0] = '\0';
    return sb;
}

void strbuf_free(StrBuf *sb) {
    if (!sb)
        return;
    free(sb->data);
    free(sb);
}

void strbuf_putc(StrBuf *sb, char c) {
    reserve(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void strbuf_puts(StrBuf *sb, const char *s) {
    size_t n = strlen(s);
    reserve(sb, n);
    memcpy(sb->data + sb->len, s, n + 1);
    sb->len += n;
}

void strbuf_printf(StrBuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

const char *strbuf_cstr(StrBuf *sb) { return sb->data; }

void strbuf_clear(StrBuf *sb) {
    sb->len = 0;
    sb->data[0] = '\0';
}
