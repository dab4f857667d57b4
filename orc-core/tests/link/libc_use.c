/* printf, malloc, qsort with a JIT'd comparator callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sort_and_check(int n) {
    int *v = malloc((size_t)n * sizeof(int));
    if (!v)
        return -1;
    for (int i = 0; i < n; i++)
        v[i] = (i * 7919) % n;
    qsort(v, (size_t)n, sizeof(int), cmp_int);
    int ok = 1;
    for (int i = 1; i < n; i++)
        if (v[i - 1] > v[i])
            ok = 0;
    free(v);
    return ok;
}

int format_number(char *buf, int size, int x) { return snprintf(buf, (size_t)size, "value=%d %s", x, "ok"); }

int say_hello(void) { return printf("hello from JIT'd printf\n"); }

double use_libm(double x);
double call_libm(double x) { return use_libm(x); }
