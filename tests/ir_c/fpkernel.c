/* Floating-point kernels whose printed bits depend on exact IEEE
 * evaluation order: matrix multiply, LU decomposition with partial
 * pivoting and a solve, Simpson integration of libm functions, an n-body
 * integrator, a radix-2 FFT, Horner polynomials, Kahan summation and a
 * Mandelbrot escape count. Everything is printed with %.17g, so any
 * reassociation or fused multiply-add shows. Compile with
 * -ffp-contract=off (clang's default would contract C expressions into
 * llvm.fmuladd, which a JIT for an FMA-capable host turns into FMA while a
 * baseline x86-64 binary does not). */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

#define N 24

static double a[N][N], b[N][N], c[N][N];

static void matmul(double (*x)[N], double (*y)[N], double (*out)[N]) {
    int i, j, k;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            double s = 0.0;
            for (k = 0; k < N; k++) s += x[i][k] * y[k][j];
            out[i][j] = s;
        }
}

static int lu_decompose(double (*m)[N], int *perm) {
    int i, j, k, swaps = 0;
    for (i = 0; i < N; i++) perm[i] = i;
    for (k = 0; k < N; k++) {
        int p = k;
        double best = fabs(m[k][k]);
        for (i = k + 1; i < N; i++)
            if (fabs(m[i][k]) > best) {
                best = fabs(m[i][k]);
                p = i;
            }
        if (best == 0.0) return -1;
        if (p != k) {
            for (j = 0; j < N; j++) {
                double t = m[k][j];
                m[k][j] = m[p][j];
                m[p][j] = t;
            }
            i = perm[k];
            perm[k] = perm[p];
            perm[p] = i;
            swaps++;
        }
        for (i = k + 1; i < N; i++) {
            m[i][k] /= m[k][k];
            for (j = k + 1; j < N; j++) m[i][j] -= m[i][k] * m[k][j];
        }
    }
    return swaps;
}

static void lu_solve(double (*lu)[N], const int *perm, const double *rhs, double *x) {
    double y[N];
    int i, j;
    for (i = 0; i < N; i++) {
        double s = rhs[perm[i]];
        for (j = 0; j < i; j++) s -= lu[i][j] * y[j];
        y[i] = s;
    }
    for (i = N - 1; i >= 0; i--) {
        double s = y[i];
        for (j = i + 1; j < N; j++) s -= lu[i][j] * x[j];
        x[i] = s / lu[i][i];
    }
}

typedef double (*real_fn)(double);

static double gauss(double x) { return exp(-x * x); }
static double wiggle(double x) { return sin(3.0 * x) * cos(x) + 0.25 * sqrt(x + 1.0); }
static double rational(double x) { return 1.0 / (1.0 + x * x); }

static const struct {
    const char *name;
    real_fn f;
    double lo, hi;
} integrands[] = {
    {"exp(-x^2)", gauss, -3.0, 3.0},
    {"wiggle", wiggle, 0.0, 5.0},
    {"1/(1+x^2)", rational, 0.0, 1.0},
    {"atan", atan, 0.0, 2.0},
};

static double simpson(real_fn f, double lo, double hi, int n) {
    double h = (hi - lo) / n, s = f(lo) + f(hi);
    int i;
    for (i = 1; i < n; i++) s += (i % 2 ? 4.0 : 2.0) * f(lo + i * h);
    return s * h / 3.0;
}

struct body {
    double x, y, z, vx, vy, vz, m;
};

static struct body bodies[5] = {
    {0, 0, 0, 0, 0, 0, 39.47841760435743},
    {4.84, -1.16, -0.10, 0.606, 2.81, -0.025, 0.037},
    {8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.011},
    {12.89, -15.11, -0.22, 1.08, 0.868, -0.010, 0.0017},
    {15.37, -25.91, 0.17, 0.979, 0.594, -0.034, 0.0020},
};

static double energy(void) {
    double e = 0.0;
    int i, j;
    for (i = 0; i < 5; i++) {
        struct body *p = &bodies[i];
        e += 0.5 * p->m * (p->vx * p->vx + p->vy * p->vy + p->vz * p->vz);
        for (j = i + 1; j < 5; j++) {
            struct body *q = &bodies[j];
            double dx = p->x - q->x, dy = p->y - q->y, dz = p->z - q->z;
            e -= p->m * q->m / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static void advance(double dt) {
    int i, j;
    for (i = 0; i < 5; i++)
        for (j = i + 1; j < 5; j++) {
            struct body *p = &bodies[i], *q = &bodies[j];
            double dx = p->x - q->x, dy = p->y - q->y, dz = p->z - q->z;
            double d2 = dx * dx + dy * dy + dz * dz;
            double mag = dt / (d2 * sqrt(d2));
            p->vx -= dx * q->m * mag;
            p->vy -= dy * q->m * mag;
            p->vz -= dz * q->m * mag;
            q->vx += dx * p->m * mag;
            q->vy += dy * p->m * mag;
            q->vz += dz * p->m * mag;
        }
    for (i = 0; i < 5; i++) {
        bodies[i].x += dt * bodies[i].vx;
        bodies[i].y += dt * bodies[i].vy;
        bodies[i].z += dt * bodies[i].vz;
    }
}

struct cplx {
    double re, im;
};

static void fft(struct cplx *v, int n) {
    int i, j, len;
    for (i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            struct cplx t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
    for (len = 2; len <= n; len <<= 1) {
        double ang = -2.0 * M_PI / len;
        struct cplx w = {cos(ang), sin(ang)};
        for (i = 0; i < n; i += len) {
            struct cplx u = {1.0, 0.0};
            for (j = 0; j < len / 2; j++) {
                struct cplx x = v[i + j], y = v[i + j + len / 2], t;
                t.re = y.re * u.re - y.im * u.im;
                t.im = y.re * u.im + y.im * u.re;
                v[i + j].re = x.re + t.re;
                v[i + j].im = x.im + t.im;
                v[i + j + len / 2].re = x.re - t.re;
                v[i + j + len / 2].im = x.im - t.im;
                t.re = u.re * w.re - u.im * w.im;
                u.im = u.re * w.im + u.im * w.re;
                u.re = t.re;
            }
        }
    }
}

static double horner(const double *coef, int n, double x) {
    double r = 0.0;
    int i;
    for (i = n - 1; i >= 0; i--) r = r * x + coef[i];
    return r;
}

static double kahan_sum(const double *v, int n) {
    double s = 0.0, comp = 0.0;
    int i;
    for (i = 0; i < n; i++) {
        double y = v[i] - comp, t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    return s;
}

static int mandel(double cr, double ci) {
    double zr = 0.0, zi = 0.0;
    int n;
    for (n = 0; n < 500; n++) {
        double t = zr * zr - zi * zi + cr;
        zi = 2.0 * zr * zi + ci;
        zr = t;
        if (zr * zr + zi * zi > 4.0) break;
    }
    return n;
}

int main(void) {
    int i, j, perm[N], swaps;
    double x[N], rhs[N], resid = 0.0, trace = 0.0;
    static double harmonic[20000];
    struct cplx sig[64];
    static const double coef[] = {1.0, -0.5, 1.0 / 6.0, -1.0 / 24.0, 1.0 / 120.0, -1.0 / 720.0};
    long escape = 0;

    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            a[i][j] = sin(i * 1.3 + j * 0.7) + (i == j ? N : 0);
            b[i][j] = cos(i * 0.3 - j * 1.1) / (1.0 + i + j);
        }
    matmul(a, b, c);
    for (i = 0; i < N; i++) trace += c[i][i];
    printf("trace(ab) = %.17g\n", trace);
    printf("c[3][5] = %.17g, c[23][0] = %.17g\n", c[3][5], c[23][0]);

    for (i = 0; i < N; i++) rhs[i] = 1.0 + i * 0.5;
    swaps = lu_decompose(a, perm);
    lu_solve(a, perm, rhs, x);
    printf("lu swaps %d, x[0] = %.17g, x[%d] = %.17g\n", swaps, x[0], N - 1, x[N - 1]);
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) a[i][j] = sin(i * 1.3 + j * 0.7) + (i == j ? N : 0);
    for (i = 0; i < N; i++) {
        double s = -rhs[i];
        for (j = 0; j < N; j++) s += a[i][j] * x[j];
        resid += fabs(s);
    }
    printf("residual %.3e\n", resid);

    for (i = 0; i < (int)(sizeof integrands / sizeof integrands[0]); i++)
        printf("int %-10s = %.17g\n", integrands[i].name,
               simpson(integrands[i].f, integrands[i].lo, integrands[i].hi, 1000));

    printf("energy before %.17g\n", energy());
    for (i = 0; i < 20000; i++) advance(0.01);
    printf("energy after  %.17g\n", energy());
    printf("body 1 at (%.17g, %.17g)\n", bodies[1].x, bodies[1].y);

    for (i = 0; i < 64; i++) {
        sig[i].re = sin(2 * M_PI * 5 * i / 64.0) + 0.5 * cos(2 * M_PI * 12 * i / 64.0);
        sig[i].im = 0.0;
    }
    fft(sig, 64);
    for (i = 0; i < 16; i++)
        if (hypot(sig[i].re, sig[i].im) > 1e-9)
            printf("bin %2d: %.17g\n", i, hypot(sig[i].re, sig[i].im));

    for (i = 0; i < 5; i++) {
        double t = -1.0 + i * 0.5;
        printf("horner(%.1f) = %.17g vs expm1 %.17g\n", t, horner(coef, 6, t), -expm1(-t));
    }

    for (i = 0; i < 20000; i++) harmonic[i] = 1.0 / (i + 1);
    {
        double naive = 0.0;
        for (i = 0; i < 20000; i++) naive += harmonic[i];
        printf("harmonic naive %.17g kahan %.17g\n", naive, kahan_sum(harmonic, 20000));
    }

    for (i = 0; i < 60; i++)
        for (j = 0; j < 40; j++) escape += mandel(-2.0 + i * 0.045, -1.0 + j * 0.05);
    printf("mandelbrot escape sum %ld\n", escape);
    printf("pow %.17g atan2 %.17g fmod %.17g cbrt %.17g\n", pow(1.0001, 10000.0), atan2(-1.0, -2.0),
           fmod(1e10, 7.3), cbrt(12345.0));
    return 0;
}
