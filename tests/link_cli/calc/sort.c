/* Sorting: qsort with a comparator callback, and an insertion sort taking
 * one. */
#include <stdlib.h>
#include <string.h>

#include "calc.h"

static int cmp_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sort_doubles(double *xs, size_t n) { qsort(xs, n, sizeof(double), cmp_doubles); }

int cmp_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void insertion_sort(void *base, size_t n, size_t size, CmpFn cmp) {
    unsigned char *p = base;
    unsigned char tmp[64];
    if (size > sizeof tmp)
        return;
    for (size_t i = 1; i < n; i++) {
        memcpy(tmp, p + i * size, size);
        size_t j = i;
        while (j > 0 && cmp(p + (j - 1) * size, tmp) > 0) {
            memcpy(p + j * size, p + (j - 1) * size, size);
            j--;
        }
        memcpy(p + j * size, tmp, size);
    }
}
