/* Sorting: libc qsort and bsearch with many comparator callbacks (JIT'd
 * functions called back from libc), plus a merge sort, a heap sort and an
 * introsort of our own taking comparators through a table of function
 * pointers stored in global data. Exit status: 7 when every check passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

struct person {
    char name[16];
    int age;
    double score;
};

typedef int (*cmp_fn)(const void *, const void *);

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static uint32_t next_rand(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(seed >> 33);
}

static int cmp_int_asc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_int_desc(const void *a, const void *b) { return cmp_int_asc(b, a); }
static int cmp_int_abs(const void *a, const void *b) {
    int x = abs(*(const int *)a), y = abs(*(const int *)b);
    if (x != y) return (x > y) - (x < y);
    return cmp_int_asc(a, b);
}
static int cmp_int_parity(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int px = x & 1, py = y & 1;
    if (px != py) return px - py;
    return (x > y) - (x < y);
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
static int cmp_str_len(const void *a, const void *b) {
    size_t x = strlen(*(const char *const *)a), y = strlen(*(const char *const *)b);
    if (x != y) return (x > y) - (x < y);
    return cmp_str(a, b);
}
static int cmp_person(const void *a, const void *b) {
    const struct person *p = a, *q = b;
    if (p->age != q->age) return p->age - q->age;
    if (p->score != q->score) return p->score < q->score ? 1 : -1;
    return strcmp(p->name, q->name);
}

struct named_cmp {
    const char *name;
    cmp_fn fn;
};

/* Global data pointing at code. */
static const struct named_cmp int_orders[] = {
    {"ascending", cmp_int_asc},
    {"descending", cmp_int_desc},
    {"by magnitude", cmp_int_abs},
    {"evens first", cmp_int_parity},
};

static long comparisons;

static int counting_cmp_target(const void *a, const void *b);
static cmp_fn current_cmp;
static int counting_cmp_target(const void *a, const void *b) {
    comparisons++;
    return current_cmp(a, b);
}

static void swap_bytes(void *a, void *b, size_t size) {
    unsigned char tmp[64], *x = a, *y = b;
    while (size > 0) {
        size_t n = size < sizeof tmp ? size : sizeof tmp;
        memcpy(tmp, x, n);
        memcpy(x, y, n);
        memcpy(y, tmp, n);
        x += n;
        y += n;
        size -= n;
    }
}

static void merge_sort_rec(char *base, char *tmp, size_t n, size_t size, cmp_fn cmp) {
    size_t half, i, j, k;
    if (n < 2) return;
    half = n / 2;
    merge_sort_rec(base, tmp, half, size, cmp);
    merge_sort_rec(base + half * size, tmp, n - half, size, cmp);
    i = 0;
    j = half;
    k = 0;
    while (i < half && j < n) {
        if (cmp(base + j * size, base + i * size) < 0)
            memcpy(tmp + k++ * size, base + j++ * size, size);
        else
            memcpy(tmp + k++ * size, base + i++ * size, size);
    }
    while (i < half) memcpy(tmp + k++ * size, base + i++ * size, size);
    while (j < n) memcpy(tmp + k++ * size, base + j++ * size, size);
    memcpy(base, tmp, n * size);
}

static void merge_sort(void *base, size_t n, size_t size, cmp_fn cmp) {
    char *tmp = malloc(n * size + 1);
    merge_sort_rec(base, tmp, n, size, cmp);
    free(tmp);
}

static void sift_down(char *base, size_t root, size_t n, size_t size, cmp_fn cmp) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0) child++;
        if (cmp(base + root * size, base + child * size) >= 0) return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

static void heap_sort(void *base, size_t n, size_t size, cmp_fn cmp) {
    char *b = base;
    size_t i;
    if (n < 2) return;
    for (i = n / 2; i-- > 0;) sift_down(b, i, n, size, cmp);
    for (i = n - 1; i > 0; i--) {
        swap_bytes(b, b + i * size, size);
        sift_down(b, 0, i, size, cmp);
    }
}

static void insertion_sort(char *b, size_t n, size_t size, cmp_fn cmp) {
    size_t i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && cmp(b + (j - 1) * size, b + j * size) > 0; j--)
            swap_bytes(b + (j - 1) * size, b + j * size, size);
}

static void intro_rec(char *b, size_t n, size_t size, cmp_fn cmp, int depth) {
    while (n > 16) {
        size_t i = 0, j = n - 1, mid = n / 2;
        if (depth-- == 0) {
            heap_sort(b, n, size, cmp);
            return;
        }
        /* median of three to the end as pivot */
        if (cmp(b + mid * size, b) < 0) swap_bytes(b + mid * size, b, size);
        if (cmp(b + (n - 1) * size, b) < 0) swap_bytes(b + (n - 1) * size, b, size);
        if (cmp(b + mid * size, b + (n - 1) * size) < 0) swap_bytes(b + mid * size, b + (n - 1) * size, size);
        for (;;) {
            while (cmp(b + i * size, b + (n - 1) * size) < 0) i++;
            while (j > 0 && cmp(b + (n - 1) * size, b + (j - 1) * size) < 0) j--;
            if (j == 0 || i >= j - 1) break;
            swap_bytes(b + i * size, b + (j - 1) * size, size);
            i++;
            j--;
        }
        swap_bytes(b + i * size, b + (n - 1) * size, size);
        intro_rec(b + (i + 1) * size, n - i - 1, size, cmp, depth);
        n = i;
    }
    insertion_sort(b, n, size, cmp);
}

static void intro_sort(void *base, size_t n, size_t size, cmp_fn cmp) {
    intro_rec(base, n, size, cmp, 2 * 20);
}

typedef void (*sort_fn)(void *, size_t, size_t, cmp_fn);
static const struct {
    const char *name;
    sort_fn sort;
} sorters[] = {
    {"qsort", qsort},
    {"merge", merge_sort},
    {"heap", heap_sort},
    {"intro", intro_sort},
};

static int is_sorted(const void *base, size_t n, size_t size, cmp_fn cmp) {
    const char *b = base;
    size_t i;
    for (i = 1; i < n; i++)
        if (cmp(b + (i - 1) * size, b + i * size) > 0) return 0;
    return 1;
}

static unsigned long checksum(const int *v, size_t n) {
    unsigned long h = 5381;
    size_t i;
    for (i = 0; i < n; i++) h = h * 33 ^ (unsigned long)(unsigned)v[i];
    return h;
}

#define N 3000
static int ints[N], work[N];

int main(void) {
    static const char *words[] = {"pear", "fig", "apple", "kiwi", "banana", "cherry", "date",
                                  "elderberry", "grape", "lime", "mango", "nectarine", "olive",
                                  "papaya", "quince", "raspberry", "fig", "apple"};
    size_t n_words = sizeof words / sizeof words[0];
    struct person people[40];
    double doubles[500];
    int failures = 0;
    size_t i, s, o;

    for (i = 0; i < N; i++) ints[i] = (int)(next_rand() % 20001) - 10000;
    for (o = 0; o < sizeof int_orders / sizeof int_orders[0]; o++) {
        unsigned long first = 0;
        for (s = 0; s < sizeof sorters / sizeof sorters[0]; s++) {
            memcpy(work, ints, sizeof ints);
            comparisons = 0;
            current_cmp = int_orders[o].fn;
            sorters[s].sort(work, N, sizeof work[0], counting_cmp_target);
            if (!is_sorted(work, N, sizeof work[0], int_orders[o].fn)) {
                printf("FAIL: %s sort, %s\n", sorters[s].name, int_orders[o].name);
                failures++;
            }
            if (s == 0) first = checksum(work, N);
            else if (checksum(work, N) != first && o != 2) {
                printf("FAIL: %s differs from qsort (%s)\n", sorters[s].name, int_orders[o].name);
                failures++;
            }
            printf("%-6s %-13s first=%6d last=%6d comparisons>0=%d\n", sorters[s].name,
                   int_orders[o].name, work[0], work[N - 1], comparisons > 0);
        }
    }

    for (i = 0; i < 500; i++) doubles[i] = (double)(next_rand() % 100000) / 7.0 - 5000.0;
    qsort(doubles, 500, sizeof doubles[0], cmp_double);
    printf("doubles: min %.6f median %.6f max %.6f\n", doubles[0], doubles[250], doubles[499]);
    {
        double key = doubles[123];
        double *hit = bsearch(&key, doubles, 500, sizeof doubles[0], cmp_double);
        printf("bsearch double: index %ld\n", hit ? (long)(hit - doubles) : -1L);
    }

    qsort(words, n_words, sizeof words[0], cmp_str);
    for (i = 0; i < n_words; i++) printf("%s%s", words[i], i + 1 < n_words ? " " : "\n");
    {
        const char *key = "mango";
        const char **hit = bsearch(&key, words, n_words, sizeof words[0], cmp_str);
        printf("bsearch mango: %s\n", hit ? *hit : "(none)");
    }
    merge_sort(words, n_words, sizeof words[0], cmp_str_len);
    for (i = 0; i < n_words; i++) printf("%s%s", words[i], i + 1 < n_words ? " " : "\n");

    for (i = 0; i < 40; i++) {
        snprintf(people[i].name, sizeof people[i].name, "p%02u", (unsigned)(next_rand() % 100));
        people[i].age = 20 + (int)(next_rand() % 5);
        people[i].score = (double)(next_rand() % 1000) / 10.0;
    }
    heap_sort(people, 40, sizeof people[0], cmp_person);
    if (!is_sorted(people, 40, sizeof people[0], cmp_person)) failures++;
    for (i = 0; i < 40; i += 8)
        printf("%s age %d score %.1f\n", people[i].name, people[i].age, people[i].score);

    printf("failures: %d\n", failures);
    return failures ? 1 : 7;
}
