/* A text toolkit in several files, joined with llvm-link-19 for the JIT. */
#ifndef TEXT_H
#define TEXT_H
#include <stddef.h>

/* regex.c: a backtracking regular-expression engine. Supports literals,
 * '.', character classes ([a-z], [^0-9]), escapes (\d \w \s), the
 * quantifiers * + ? (greedy), and anchors ^ $. */
typedef struct regex regex;
regex *re_compile(const char *pattern, const char **error);
void re_free(regex *re);
/* Finds the leftmost match in text at or after `from`; returns its start,
 * or -1, and sets *len. */
int re_search(const regex *re, const char *text, int from, int *len);
typedef void (*match_fn)(void *ctx, const char *text, int start, int len);
int re_for_each(const regex *re, const char *text, match_fn fn, void *ctx);
int re_nodes(const regex *re);

/* format.c: paragraph filling and justification. */
typedef enum { ALIGN_LEFT, ALIGN_RIGHT, ALIGN_CENTER, ALIGN_JUSTIFY } align;
typedef struct {
    int width;
    align how;
    char bullet; /* 0 for none */
} layout;
typedef void (*line_fn)(void *ctx, int number, const char *line);
int fill(const char *text, layout lay, line_fn out, void *ctx);
/* A printf-style appender into a fixed buffer; returns the new length. */
size_t appendf(char *buf, size_t cap, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ctors.c: start-up and shut-down order of constructors with priorities. */
extern char startup_log[128];
void note(const char *what);
#endif
