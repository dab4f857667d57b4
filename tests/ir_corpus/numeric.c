/* Numeric kernels on small and large structs passed and returned by value.
 *
 * vec2 (two floats: one SSE register), vec3 (three floats), complex
 * (two doubles), a mixed int/float/double "sample" (INTEGER+SSE classes),
 * a 4x4 matrix (memory class, passed on the stack and returned through a
 * hidden pointer) and a particle mixing all of them. A table of function
 * pointers applies transformations; qsort orders particles through a
 * comparator chosen at run time. `numeric N` sets the size of the
 * CPU-heavy part (a Mandelbrot grid and a matrix-power loop).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float x, y; } vec2;
typedef struct { float x, y, z; } vec3;
typedef struct { double re, im; } complex_t;
typedef struct { int id; float weight; double value; } sample;
typedef struct { char tag; short level; long count; } packed_ints;
typedef struct { double m[4][4]; } mat4;
typedef struct {
    vec3 pos, vel;
    float mass;
    int kind;
    complex_t phase;
    char name[12];
} particle;

static vec2 v2(float x, float y) { vec2 r = {x, y}; return r; }
static vec2 v2_add(vec2 a, vec2 b) { return v2(a.x + b.x, a.y + b.y); }
static vec2 v2_rot90(vec2 a) { return v2(-a.y, a.x); }
static float v2_dot(vec2 a, vec2 b) { return a.x * b.x + a.y * b.y; }

static vec3 v3(float x, float y, float z) { vec3 r = {x, y, z}; return r; }
static vec3 v3_add(vec3 a, vec3 b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
static vec3 v3_scale(vec3 a, float s) { return v3(a.x * s, a.y * s, a.z * s); }
static vec3 v3_cross(vec3 a, vec3 b) {
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static float v3_len(vec3 a) { return sqrtf(a.x * a.x + a.y * a.y + a.z * a.z); }

static complex_t c_make(double re, double im) { complex_t c = {re, im}; return c; }
static complex_t c_mul(complex_t a, complex_t b) {
    return c_make(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
static complex_t c_add(complex_t a, complex_t b) { return c_make(a.re + b.re, a.im + b.im); }
static double c_abs2(complex_t a) { return a.re * a.re + a.im * a.im; }

static sample s_make(int id, float w, double v) { sample s = {id, w, v}; return s; }
static sample s_combine(sample a, sample b, int bias) {
    return s_make(a.id * 31 + b.id + bias, a.weight + b.weight, a.value * b.weight + b.value);
}
static packed_ints p_bump(packed_ints p, int by) {
    p.tag = (char)(p.tag + by);
    p.level = (short)(p.level * 2 + by);
    p.count += (long)by * 1000000007L;
    return p;
}

static mat4 m_identity(void) {
    mat4 m;
    memset(&m, 0, sizeof m);
    for (int i = 0; i < 4; i++) m.m[i][i] = 1.0;
    return m;
}
static mat4 m_mul(mat4 a, mat4 b) {
    mat4 r;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += a.m[i][k] * b.m[k][j];
            r.m[i][j] = s;
        }
    return r;
}
static mat4 m_rotation_z(double angle) {
    mat4 m = m_identity();
    m.m[0][0] = cos(angle); m.m[0][1] = -sin(angle);
    m.m[1][0] = sin(angle); m.m[1][1] = cos(angle);
    return m;
}
static mat4 m_translation(vec3 t) {
    mat4 m = m_identity();
    m.m[0][3] = t.x; m.m[1][3] = t.y; m.m[2][3] = t.z;
    return m;
}
static vec3 m_apply(mat4 m, vec3 v) {
    double in[4] = {v.x, v.y, v.z, 1.0}, out[4];
    for (int i = 0; i < 4; i++) {
        out[i] = 0;
        for (int k = 0; k < 4; k++) out[i] += m.m[i][k] * in[k];
    }
    return v3((float)out[0], (float)out[1], (float)out[2]);
}
static double m_trace(mat4 m) { return m.m[0][0] + m.m[1][1] + m.m[2][2] + m.m[3][3]; }

/* Takes many struct arguments at once: some go in registers, the rest spill. */
static double many_args(vec2 a, vec3 b, complex_t c, sample d, packed_ints e, vec2 f,
                        complex_t g, sample h, double i, int j, float k, mat4 l) {
    return a.x + a.y + b.x + b.y + b.z + c.re + c.im + d.id + d.weight + d.value + e.tag +
           e.level + (double)e.count + f.x + f.y + g.re + g.im + h.id + h.weight + h.value + i +
           j + k + m_trace(l);
}

static particle make_particle(int i) {
    particle p;
    memset(&p, 0, sizeof p);
    p.pos = v3((float)(i % 7) - 3.0f, (float)(i % 5) * 0.5f, (float)i * 0.25f);
    p.vel = v3(0.125f * (float)(i % 3), -0.5f, 1.0f / (float)(i + 1));
    p.mass = 1.0f + (float)(i * 37 % 11);
    p.kind = i % 4;
    p.phase = c_make(cos(i * 0.7), sin(i * 0.7));
    snprintf(p.name, sizeof p.name, "p%02d-%c", i, "abcd"[i % 4]);
    return p;
}
static particle step(particle p, float dt) {
    p.pos = v3_add(p.pos, v3_scale(p.vel, dt));
    p.vel = v3_add(p.vel, v3(0.0f, -9.75f * dt, 0.0f));
    p.phase = c_mul(p.phase, c_make(cos(dt), sin(dt)));
    return p;
}

/* Transformations through a table of function pointers. */
typedef particle (*transform)(particle, float);
static particle t_step(particle p, float a) { return step(p, a); }
static particle t_spin(particle p, float a) {
    p.vel = m_apply(m_rotation_z(a), p.vel);
    return p;
}
static particle t_heavier(particle p, float a) { p.mass *= 1.0f + a; return p; }
static particle t_kick(particle p, float a) {
    p.vel = v3_add(p.vel, v3_scale(v3_cross(p.pos, v3(0, 0, 1)), a));
    return p;
}
static const struct { const char *name; transform fn; } transforms[] = {
    {"step", t_step}, {"spin", t_spin}, {"heavier", t_heavier}, {"kick", t_kick},
};

static int by_mass(const void *a, const void *b) {
    const particle *x = a, *y = b;
    if (x->mass != y->mass) return x->mass < y->mass ? -1 : 1;
    return strcmp(x->name, y->name);
}
static int by_height(const void *a, const void *b) {
    const particle *x = a, *y = b;
    if (x->pos.y != y->pos.y) return x->pos.y < y->pos.y ? -1 : 1;
    return strcmp(x->name, y->name);
}
static int by_speed(const void *a, const void *b) {
    const particle *x = a, *y = b;
    float sx = v3_len(x->vel), sy = v3_len(y->vel);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void show(const particle *p) {
    printf("  %-8s kind=%d mass=%6.2f pos=(%8.4f %8.4f %8.4f) |v|=%8.5f phase=%+.5f%+.5fi\n",
           p->name, p->kind, p->mass, p->pos.x, p->pos.y, p->pos.z, v3_len(p->vel), p->phase.re,
           p->phase.im);
}

/* ---- more by-value shapes: unions with bitfields, long double, arrays ---- */
typedef struct {
    unsigned kind : 3;
    unsigned negative : 1;
    unsigned scale : 12;
    union {
        long i;
        double d;
        char s[8];
    } u;
} tagged;

static tagged t_int(long v) {
    tagged t;
    memset(&t, 0, sizeof t);
    t.kind = 1;
    t.negative = v < 0;
    t.u.i = v;
    return t;
}
static tagged t_double(double d, unsigned scale) {
    tagged t;
    memset(&t, 0, sizeof t);
    t.kind = 2;
    t.negative = d < 0;
    t.scale = scale & 0xfff;
    t.u.d = d;
    return t;
}
static tagged t_text(const char *s) {
    tagged t;
    memset(&t, 0, sizeof t);
    t.kind = 3;
    strncpy(t.u.s, s, sizeof t.u.s);
    return t;
}
static double t_value(tagged t) {
    switch (t.kind) {
    case 1: return (double)t.u.i;
    case 2: return t.u.d * (t.scale ? t.scale : 1);
    case 3: return (double)strnlen(t.u.s, sizeof t.u.s);
    default: return 0;
    }
}

/* x87 extended precision: its own classification (passed in memory,
 * returned in st0) and its own printf conversion. */
static long double ld_series(int terms) {
    long double sum = 0.0L, term = 1.0L;
    for (int n = 1; n <= terms; n++) {
        sum += term;
        term /= (long double)n;
    }
    return sum;
}
static long double ld_scale(long double x, int by) { return x * (long double)by; }

/* A 6x6 system solved by Gaussian elimination with partial pivoting;
 * the matrix and vectors go by value both ways. */
typedef struct { double a[6][6]; } mat6;
typedef struct { double v[6]; } vec6;

static vec6 solve6(mat6 m, vec6 b) {
    for (int col = 0; col < 6; col++) {
        int pivot = col;
        for (int r = col + 1; r < 6; r++)
            if (fabs(m.a[r][col]) > fabs(m.a[pivot][col])) pivot = r;
        if (pivot != col) {
            for (int k = 0; k < 6; k++) {
                double t = m.a[col][k];
                m.a[col][k] = m.a[pivot][k];
                m.a[pivot][k] = t;
            }
            double t = b.v[col];
            b.v[col] = b.v[pivot];
            b.v[pivot] = t;
        }
        for (int r = col + 1; r < 6; r++) {
            double f = m.a[r][col] / m.a[col][col];
            for (int k = col; k < 6; k++) m.a[r][k] -= f * m.a[col][k];
            b.v[r] -= f * b.v[col];
        }
    }
    vec6 x;
    for (int r = 5; r >= 0; r--) {
        double s = b.v[r];
        for (int k = r + 1; k < 6; k++) s -= m.a[r][k] * x.v[k];
        x.v[r] = s / m.a[r][r];
    }
    return x;
}
static vec6 mul6(mat6 m, vec6 x) {
    vec6 r;
    for (int i = 0; i < 6; i++) {
        r.v[i] = 0;
        for (int k = 0; k < 6; k++) r.v[i] += m.a[i][k] * x.v[k];
    }
    return r;
}

/* Iterative radix-2 FFT on complex_t; used for an integer convolution. */
static void fft(complex_t *a, int n, int invert) {
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            complex_t t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        double ang = 2 * 3.14159265358979323846 / len * (invert ? -1 : 1);
        complex_t wl = c_make(cos(ang), sin(ang));
        for (int i = 0; i < n; i += len) {
            complex_t w = c_make(1, 0);
            for (int j = 0; j < len / 2; j++) {
                complex_t u = a[i + j], v = c_mul(a[i + j + len / 2], w);
                a[i + j] = c_add(u, v);
                a[i + j + len / 2] = c_add(u, c_make(-v.re, -v.im));
                w = c_mul(w, wl);
            }
        }
    }
    if (invert)
        for (int i = 0; i < n; i++) a[i] = c_make(a[i].re / n, a[i].im / n);
}

/* The CPU-heavy part: escape times of a Mandelbrot grid. */
static long mandelbrot(int size, int max_iter) {
    long total = 0;
    for (int row = 0; row < size; row++) {
        for (int col = 0; col < size; col++) {
            complex_t c = c_make(-2.0 + 2.5 * col / size, -1.25 + 2.5 * row / size);
            complex_t z = c_make(0, 0);
            int n = 0;
            while (n < max_iter && c_abs2(z) <= 4.0) {
                z = c_add(c_mul(z, z), c);
                n++;
            }
            total += n;
        }
    }
    return total;
}

int main(int argc, char **argv) {
    int size = argc > 1 ? atoi(argv[1]) : 24;
    printf("vec2: dot=%.3f rot=(%.2f,%.2f)\n", v2_dot(v2(1.5f, -2), v2(4, 0.25f)),
           v2_rot90(v2_add(v2(1, 2), v2(3, 4))).x, v2_rot90(v2_add(v2(1, 2), v2(3, 4))).y);
    vec3 c = v3_cross(v3(1, 2, 3), v3(-2, 0.5f, 4));
    printf("vec3: cross=(%.3f %.3f %.3f) len=%.6f\n", c.x, c.y, c.z, v3_len(c));
    sample s = s_make(1, 0.5f, 2.0);
    for (int i = 2; i < 8; i++) s = s_combine(s, s_make(i, 0.25f * i, 1.0 / i), i);
    printf("sample: id=%d weight=%.3f value=%.9f\n", s.id, s.weight, s.value);
    packed_ints pk = {'a', 3, 10};
    for (int i = 1; i < 5; i++) pk = p_bump(pk, i);
    printf("packed: tag=%c level=%d count=%ld\n", pk.tag, pk.level, pk.count);

    mat4 m = m_identity();
    for (int i = 0; i < 12; i++)
        m = m_mul(m, m_mul(m_rotation_z(0.1 * i), m_translation(v3(0.5f, -0.25f, (float)i))));
    printf("mat4: trace=%.9f corner=%.9f %.9f\n", m_trace(m), m.m[0][3], m.m[2][3]);
    printf("many: %.6f\n", many_args(v2(1, 2), v3(3, 4, 5), c_make(6, 7), s_make(8, 9, 10),
                                     pk, v2(11, 12), c_make(13, 14), s_make(15, 16, 17), 18.5,
                                     19, 20.25f, m));

    enum { N = 24 };
    particle ps[N];
    for (int i = 0; i < N; i++) ps[i] = make_particle(i);
    for (int round = 0; round < 6; round++) {
        const int t = (round * 3 + 1) % 4;
        for (int i = 0; i < N; i++)
            ps[i] = transforms[(t + i) % 4].fn(ps[i], 0.05f * (float)(round + 1));
        printf("round %d: first transform %s\n", round, transforms[t].name);
    }
    static int (*const orders[])(const void *, const void *) = {by_mass, by_height, by_speed};
    static const char *const order_names[] = {"mass", "height", "speed"};
    for (int o = 0; o < 3; o++) {
        qsort(ps, N, sizeof ps[0], orders[o]);
        printf("by %s:\n", order_names[o]);
        for (int i = 0; i < N; i += 5) show(&ps[i]);
    }

    tagged tv[] = {t_int(-42), t_double(2.5, 3), t_text("by-value"), t_double(-0.125, 0), t_int(7)};
    double tsum = 0;
    for (int i = 0; i < 5; i++) {
        tsum += t_value(tv[i]);
        printf("tagged %d: kind=%u negative=%u scale=%u value=%.4f\n", i, tv[i].kind,
               tv[i].negative, tv[i].scale, t_value(tv[i]));
    }
    printf("tagged sum: %.4f\n", tsum);
    long double e = ld_series(20);
    printf("long double: e=%.18Lf 3e=%.15Lf size=%zu\n", e, ld_scale(e, 3), sizeof e);

    mat6 sys;
    vec6 truth;
    for (int i = 0; i < 6; i++) {
        truth.v[i] = (double)(i + 1) * (i % 2 ? -0.5 : 1.25);
        for (int k = 0; k < 6; k++) sys.a[i][k] = 1.0 / (i + k + 1) + (i == k ? 2.0 : 0.0);
    }
    vec6 rhs = mul6(sys, truth);
    vec6 sol = solve6(sys, rhs);
    double err = 0;
    for (int i = 0; i < 6; i++) err += fabs(sol.v[i] - truth.v[i]);
    printf("solve6: x0=%.12f x5=%.12f error<1e-9: %d\n", sol.v[0], sol.v[5], err < 1e-9);

    enum { FN = 16 };
    complex_t fa[FN], fb[FN];
    const int pa[] = {3, 1, 4, 1, 5}, pb[] = {2, 7, 1, 8};
    for (int i = 0; i < FN; i++) {
        fa[i] = c_make(i < 5 ? pa[i] : 0, 0);
        fb[i] = c_make(i < 4 ? pb[i] : 0, 0);
    }
    fft(fa, FN, 0);
    fft(fb, FN, 0);
    for (int i = 0; i < FN; i++) fa[i] = c_mul(fa[i], fb[i]);
    fft(fa, FN, 1);
    printf("convolution:");
    for (int i = 0; i < 8; i++) printf(" %ld", lround(fa[i].re));
    printf("\n");

    long esc = mandelbrot(size, 200);
    printf("mandelbrot %dx%d: %ld iterations\n", size, size, esc);
    mat4 power = m_rotation_z(0.001);
    mat4 acc = m_identity();
    for (int i = 0; i < size * 20; i++) acc = m_mul(acc, power);
    printf("rotation^%d: trace=%.9f\n", size * 20, m_trace(acc));
    return 0;
}
