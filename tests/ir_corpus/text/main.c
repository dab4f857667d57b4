/* The driver: searches a text with regular expressions (results through a
 * callback), fills paragraphs four ways, and checks the constructors ran
 * in priority order. Exit status: the number of failed self-checks
 * (expected: 0) plus 10 times (pattern errors - 1): 3 errors, so 20. */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const corpus =
    "In 1977 the Unix shell grew regular expressions, and by 1986 Henry Spencer's "
    "library was everywhere. A pattern like a+b* or [0-9]+ matches in linear time "
    "for most inputs, but a backtracking engine can take exponential time on "
    "patterns such as (a*)*b. This toolkit's engine has no groups, so it stays "
    "polynomial. Contact: ada@example.org, grace@navy.mil, edsger@tue.nl; "
    "version 2.7.18 released on 2020-04-20 at 10:42.";

typedef struct {
    int count;
    int total_len;
    char summary[512];
    size_t summary_len;
} collector;

static void collect(void *ctx, const char *text, int start, int len) {
    collector *c = ctx;
    c->count++;
    c->total_len += len;
    c->summary_len = appendf(c->summary, sizeof c->summary, c->summary_len, "%s[%d:%.*s]",
                             c->count > 1 ? " " : "", start, len, text + start);
}

static void print_line(void *ctx, int number, const char *line) {
    int *width = ctx;
    printf("%2d |%-*s|\n", number, *width, line);
}

static int checks_failed;
static void check(int ok, const char *what) {
    printf("check %-40s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) checks_failed++;
}

int main(int argc, char **argv) {
    printf("constructors ran: %s\n", startup_log);
    check(strcmp(startup_log, "c101 c200 c300 c-default") == 0, "constructor priorities");

    static const char *const patterns[] = {
        "[0-9]+", "\\w+@\\w+\\.\\w+", "[A-Z][a-z]+", "\\d+\\.\\d+\\.\\d+", "^In",
        "time$", "\\d\\d:\\d\\d\\.$", "a+b*", "[^a-z ,.']+", "e.?e", "*bad", "[unclosed",
        "b\\", "x?y?z?",
    };
    int errors = 0;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        const char *err;
        regex *re = re_compile(patterns[i], &err);
        if (!re) {
            printf("/%s/: error: %s\n", patterns[i], err);
            errors++;
            continue;
        }
        collector c;
        memset(&c, 0, sizeof c);
        int n = re_for_each(re, corpus, collect, &c);
        printf("/%s/ (%d nodes): %d matches, %d chars\n  %s\n", patterns[i], re_nodes(re), n,
               c.total_len, c.summary);
        re_free(re);
    }

    /* Scaling: search a repeated text; `text N` repeats it N times. */
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    size_t cl = strlen(corpus);
    char *big = malloc(cl * (size_t)reps + 1);
    for (int i = 0; i < reps; i++) memcpy(big + cl * (size_t)i, corpus, cl);
    big[cl * (size_t)reps] = 0;
    const char *err;
    regex *words = re_compile("[a-zA-Z]+[^a-z]", &err);
    collector c;
    memset(&c, 0, sizeof c);
    int n = re_for_each(words, big, collect, &c);
    printf("big text x%d: %d word matches, %d chars\n", reps, n, c.total_len);
    check(n == 67 * reps || reps <= 0, "word matches scale with repeats");
    re_free(words);
    free(big);

    static const char *const how[] = {"left", "right", "center", "justify"};
    int widths[] = {40, 33, 52, 28};
    for (int a = 0; a < 4; a++) {
        layout lay = {widths[a], (align)a, a == 3 ? '*' : 0};
        printf("-- %s, width %d\n", how[a], widths[a]);
        int lines = fill(corpus, lay, print_line, &widths[a]);
        printf("-- %d lines\n", lines);
        check(lines > 5, "filled into several lines");
    }
    char buf[16];
    size_t len = appendf(buf, sizeof buf, 0, "%s-%d-%.2f", "overflowing", 12345, 3.14159);
    printf("truncated: '%s' (%zu)\n", buf, len);
    check(len == sizeof buf - 1, "appendf truncates");
    printf("failed checks: %d, pattern errors: %d\n", checks_failed, errors);
    return checks_failed + 10 * (errors - 1);
}
