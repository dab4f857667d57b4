/* CPU kernels for `cargo bench --bench ir_tiers`: each runs REPS times
 * (argv[1], default 5); the program prints, per kernel, its checksum and
 * the best time of one run in microseconds (measured inside the program,
 * so a JIT's compile time does not count: this is steady state). Total
 * time (for start-up-inclusive comparisons) scales with REPS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Sieve of Eratosthenes. */
static long sieve(int n) {
    char *composite = calloc(n + 1, 1);
    long count = 0;
    for (int i = 2; i <= n; i++) {
        if (composite[i]) continue;
        count += i;
        for (long j = (long)i * i; j <= n; j += i) composite[j] = 1;
    }
    free(composite);
    return count;
}

/* Dense matrix multiply. */
#define M 160
static double ma[M][M], mb[M][M], mc[M][M];
static long matmul(void) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            ma[i][j] = (i * 7 + j * 3) % 11 - 5;
            mb[i][j] = (i * 5 + j * 13) % 7 - 3;
        }
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            double s = 0;
            for (int k = 0; k < M; k++) s += ma[i][k] * mb[k][j];
            mc[i][j] = s;
        }
    double t = 0;
    for (int i = 0; i < M; i++) t += mc[i][(i * 7) % M];
    return (long)t;
}

/* A switch-dispatched register bytecode interpreter. */
enum { LOADI, ADD, MODI, SUBI, JNZ, HALT };
static long interp(int n) {
    /* r0 = 0; r1 = n; loop: r2 = r1 % 7; r0 += r2; r1 -= 1; if r1 goto loop */
    const int code[] = {LOADI, 0, 0, LOADI, 1, n, /* 6: */ MODI, 2, 1, 7, ADD, 0, 0, 2,
                        SUBI, 1, 1, 1, JNZ, 1, 6, HALT};
    long r[4] = {0};
    int pc = 0;
    long steps = 0;
    for (;;) {
        steps++;
        switch (code[pc]) {
        case LOADI: r[code[pc + 1]] = code[pc + 2]; pc += 3; break;
        case ADD: r[code[pc + 1]] = r[code[pc + 2]] + r[code[pc + 3]]; pc += 4; break;
        case MODI: r[code[pc + 1]] = r[code[pc + 2]] % code[pc + 3]; pc += 4; break;
        case SUBI: r[code[pc + 1]] = r[code[pc + 2]] - code[pc + 3]; pc += 4; break;
        case JNZ: pc = r[code[pc + 1]] ? code[pc + 2] : pc + 3; break;
        case HALT: return r[0] + steps;
        default: return -1;
        }
    }
}

/* Open-addressing hash map. */
#define HCAP (1 << 16)
static unsigned long hkeys[HCAP];
static long hvals[HCAP];
static unsigned long mix(unsigned long x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdUL; x ^= x >> 33; return x;
}
static long hashmap(int n) {
    memset(hkeys, 0, sizeof hkeys);
    for (int i = 1; i <= n; i++) {
        unsigned long k = (unsigned long)i * 2654435761UL, h = mix(k) & (HCAP - 1);
        while (hkeys[h] && hkeys[h] != k) h = (h + 1) & (HCAP - 1);
        hkeys[h] = k;
        hvals[h] += i;
    }
    long s = 0;
    for (int i = 1; i <= n; i += 3) {
        unsigned long k = (unsigned long)i * 2654435761UL, h = mix(k) & (HCAP - 1);
        while (hkeys[h] && hkeys[h] != k) h = (h + 1) & (HCAP - 1);
        s += hvals[h];
    }
    return s;
}

/* qsort with a callback. */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static long sorting(int n) {
    int *v = malloc(n * sizeof *v);
    unsigned s = 12345;
    for (int i = 0; i < n; i++) { s = s * 1103515245 + 12345; v[i] = (int)(s >> 8) % 100000; }
    qsort(v, n, sizeof *v, cmp_int);
    long t = 0;
    for (int i = 0; i < n; i += 97) t += v[i];
    free(v);
    return t;
}

/* n-body style floating point. */
static long nbody(int steps) {
    double x[5] = {0, 1, 2, 3, 4}, y[5] = {0, 0.5, 1, 1.5, 2}, vx[5] = {0}, vy[5] = {0};
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                if (i == j) continue;
                double dx = x[j] - x[i], dy = y[j] - y[i];
                double d2 = dx * dx + dy * dy + 0.01;
                double inv = 1.0 / (d2 * __builtin_sqrt(d2));
                vx[i] += dx * inv * 0.001;
                vy[i] += dy * inv * 0.001;
            }
        for (int i = 0; i < 5; i++) { x[i] += vx[i] * 0.01; y[i] += vy[i] * 0.01; }
    }
    return (long)((x[0] + y[4]) * 1e6);
}

typedef long (*kernel_fn)(void);
static long k_sieve(void) { return sieve(2000000); }
static long k_matmul(void) { return matmul(); }
static long k_interp(void) { return interp(3000000); }
static long k_hashmap(void) { return hashmap(40000); }
static long k_sort(void) { return sorting(300000); }
static long k_nbody(void) { return nbody(200000); }

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    struct { const char *name; kernel_fn f; } kernels[] = {
        {"sieve", k_sieve}, {"matmul", k_matmul}, {"interp", k_interp},
        {"hashmap", k_hashmap}, {"sort", k_sort}, {"nbody", k_nbody},
    };
    for (unsigned k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
        double best = 1e30;
        long check = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = now_us();
            check = kernels[k].f();
            double t = now_us() - t0;
            if (t < best) best = t;
        }
        printf("%s %ld %.0f\n", kernels[k].name, check, best);
    }
    return 0;
}
