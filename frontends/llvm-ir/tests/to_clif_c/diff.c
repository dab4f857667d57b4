/* Functions run natively (clang-19) and as tier-0 code translated from
   their IR (tests/ir_to_clif.rs): results must agree. No global data:
   the tests load no data unit. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int snprintf(char *, size_t, const char *, ...);
void qsort(void *, size_t, size_t, int (*)(const void *, const void *));
double fmod(double, double);

struct pair { long a, b; };
struct dpair { double x, y; };
struct mixed { long n; double d; };
struct fpair { float x, y; };
struct big { long v[6]; };
struct node { int tag; struct node *next; short s[3]; signed char c; };

long int_mix(long a, long b) {
    int x = (int)a, y = (int)b | 1;
    short s = (short)(a * 3);
    signed char c = (signed char)b;
    unsigned u = (unsigned)a;
    long r = (x * y) ^ (x / y) ^ (x % y) ^ (x << (y & 15)) ^ (x >> 3) ^ (u >> 5) ^ (x & y) ^ (x | y) ^ (x - y);
    r += s * c + (unsigned char)c + (unsigned short)s;
    r += (a / (b | 1)) + (a % (b | 1)) + (a >> (b & 63)) + ((unsigned long)a >> (b & 63)) + (a << (b & 31));
    return r;
}
unsigned long umix(unsigned long a, unsigned long b) {
    return a / (b | 1) + a % (b | 1) + (a > b) + (a <= b) * 2 + (unsigned)(a * b);
}
static bool both(bool p, bool q) { return p && q; }
int bools(int a, int b) {
    bool p = a > b, q = a == b || a < 0;
    return both(p, q) + (p ^ q) * 2 + (p | q) * 4 + (signed char)-p * 8 + (a < b) * 16;
}
long i128_mix(long a, long b) {
    __int128 x = (__int128)a * b, y = ((__int128)a << 70) | (unsigned long)b;
    unsigned __int128 u = (unsigned __int128)y >> 65;
    return (long)(x >> 64) ^ (long)x ^ (long)u ^ (x < y) ^ (long)(y >> 80) ^ (long)(x + y - u);
}
double float_mix(double a, double b) {
    double r = a * b + a / b - (a - b) + -a;
    float f = (float)a * (float)b - (float)a / 3.0f;
    return r + f + fmod(a, b) + __builtin_fmodf((float)a, (float)b);
}
int fcmp_bits(double a, double b) {
    return (a < b) | (a <= b) << 1 | (a > b) << 2 | (a >= b) << 3 | (a == b) << 4 | (a != b) << 5
        | __builtin_isunordered(a, b) << 6 | __builtin_islessgreater(a, b) << 7
        | !(a < b) << 8 | !(a >= b) << 9 | ((float)a < (float)b) << 10;
}
long conversions(double d, long l) {
    float f = (float)d;
    long r = (long)d + (int)f + (long)(double)l + (long)(float)(unsigned)l + (short)d;
    r += (long)(unsigned long)(d < 0 ? -d : d) + (unsigned char)(unsigned)(f < 0 ? -f : f);
    r += (long)((double)(unsigned long)l / 1e10);
    return r;
}
double conv_back(long l, unsigned long ul, short s, unsigned char c) {
    return (double)l + (double)ul + (float)s + c + (float)l + (double)(unsigned)l;
}
long switch_dense(long x) {
    switch (x) { case 0: return 10; case 1: return 20; case 2: return 7; case 3: return 70; case 4: return 71; case 5: return -1; default: return x * 2; }
}
long switch_sparse(long x) {
    long r = 1;
    switch (x) { case -100: r = 3; break; case 7: r = x; case 8: r += 4; break; case 1000000: r = 9; break; case 1L << 40: r = 11; break; default: r = -x; }
    return r * 3;
}
long loop_sum(const long *p, long n) { long s = 0; for (long i = 0; i < n; i++) s += p[i] * (i + 1); return s; }
struct pair make_pair(long a, long b) { struct pair p = { a + 1, b * 2 }; return p; }
struct dpair make_dpair(double a) { struct dpair p = { a, a * 2 }; return p; }
struct mixed make_mixed(long n, double d) { struct mixed m = { n * 2, d + 0.5 }; return m; }
struct fpair make_fpair(float a) { struct fpair p = { a, -a * 3 }; return p; }
struct big make_big(long s) { struct big b; for (int i = 0; i < 6; i++) b.v[i] = s + i * i; return b; }
long use_pair(struct pair p) { return p.a * 3 + p.b; }
double use_dpair(struct dpair p) { return p.x - p.y * 0.25; }
float use_fpair(struct fpair p) { return p.x * 2 - p.y; }
long use_big(struct big b) { return b.v[0] + b.v[5] * 10 + b.v[3]; }
long call_structs(long s) {
    struct fpair f = make_fpair((float)s);
    struct mixed m = make_mixed(s, 1.25);
    return use_big(make_big(s)) + use_pair(make_pair(s, s + 1)) + (long)use_dpair(make_dpair((double)s))
        + (long)use_fpair(f) + m.n + (long)m.d;
}
long sum_va(int n, ...) {
    va_list ap; va_start(ap, n); long s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, long) * (i + 1);
    va_end(ap); return s;
}
double sum_vd(int n, ...) {
    va_list ap, aq; va_start(ap, n); va_copy(aq, ap); double s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, double);
    for (int i = 0; i < n; i++) s += va_arg(aq, double) * 0.5;
    va_end(aq); va_end(ap); return s;
}
long many_va(long a, long b, long c, long d, long e, long f, long g, ...) {
    va_list ap; va_start(ap, g);
    long x = va_arg(ap, long); double y = va_arg(ap, double); long z = va_arg(ap, long);
    va_end(ap);
    return a + b * 2 + c * 3 + d * 4 + e * 5 + f * 6 + g * 7 + x * 8 + (long)(y * 9) + z * 10;
}
long call_va(long x) {
    return sum_va(3, x, x + 1, x + 2) + (long)sum_vd(2, 1.5, (double)x)
        + many_va(1, 2, 3, 4, 5, 6, x, x * 2, 2.5, x * 3)
        + sum_va(8, 1L, 2L, 3L, 4L, 5L, 6L, 7L, x);
}
int format(char *buf, long n, const char *fmt, int x, double y) { return snprintf(buf, (size_t)n, fmt, x, y, x * 2); }
static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}
long sort_checksum(long seed) {
    long v[17];
    unsigned long u = (unsigned long)seed;
    for (int i = 0; i < 17; i++) { u = u * 6364136223846793005UL + 1442695040888963407UL; v[i] = (long)(u >> 40); }
    qsort(v, 17, sizeof v[0], cmp_long);
    unsigned long s = 0;
    for (int i = 0; i < 17; i++) s = s * 31 + (unsigned long)v[i];
    return s;
}
int atomics(int *p, int v) {
    int old = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    __atomic_fetch_sub(p, 1, __ATOMIC_RELAXED);
    __atomic_fetch_and(p, ~4, __ATOMIC_ACQ_REL);
    __atomic_fetch_or(p, 64, __ATOMIC_ACQUIRE);
    __atomic_fetch_xor(p, 3, __ATOMIC_RELEASE);
    int exp = *p;
    bool ok = __atomic_compare_exchange_n(p, &exp, exp + 10, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    int bad = 12345;
    bool ko = __atomic_compare_exchange_n(p, &bad, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int l = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    __atomic_store_n(p, l + 1, __ATOMIC_RELEASE);
    return old * 1000 + ok * 100 + ko * 10 + __atomic_exchange_n(p, 5, __ATOMIC_SEQ_CST) + bad;
}
int run_goto(const unsigned char *code) {
    static void *const tbl[] = { &&op_inc, &&op_dbl, &&op_neg, &&op_end };
    int acc = 1;
    goto *tbl[*code++];
op_inc: acc++; goto *tbl[*code++];
op_dbl: acc *= 2; goto *tbl[*code++];
op_neg: acc = -acc; goto *tbl[*code++];
op_end: return acc;
}
long list_walk(long n) {
    struct node nodes[8];
    for (int i = 0; i < 8; i++) {
        nodes[i].tag = (int)(n + i);
        nodes[i].next = i + 1 < 8 ? &nodes[i + 1] : NULL;
        nodes[i].s[0] = (short)i; nodes[i].s[1] = (short)(n * i); nodes[i].s[2] = (short)-i;
        nodes[i].c = (signed char)(n - i);
    }
    struct node copy = nodes[3];
    unsigned long k = (unsigned long)copy.tag;
    for (struct node *p = &nodes[0]; p; p = p->next) k = k * 7 + (unsigned long)(p->tag + p->s[1] + p->s[2] + p->c);
    return (long)k;
}
int vec_int(int n) {
    int a[64], b[64];
    for (int i = 0; i < 64; i++) { a[i] = i * n; b[i] = i - n; }
    for (int i = 0; i < 64; i++) a[i] += b[i] * 3 + (a[i] > b[i] ? 1 : -1);
    int s = 0;
    for (int i = 0; i < 64; i++) s ^= a[i] + i;
    return s;
}
float vec_float(int n) {
    float a[32];
    for (int i = 0; i < 32; i++) a[i] = (float)(i * n) * 0.5f;
    float s = 0;
    for (int i = 0; i < 32; i++) s += a[i] * a[i] - (float)i;
    return s;
}
long shorts(int n) {
    short a[32]; unsigned char c[32];
    for (int i = 0; i < 32; i++) { a[i] = (short)(i * n); c[i] = (unsigned char)(i + n); }
    long s = 0;
    for (int i = 0; i < 32; i++) s += a[i] * 3 + c[i];
    return s;
}
typedef long (*binop)(long, long);
static long op_add(long a, long b) { return a + b; }
static long op_sub(long a, long b) { return a - b; }
static long op_mul(long a, long b) { return a * b; }
long call_ptrs(long x) {
    binop ops[3] = { op_add, op_sub, op_mul };
    long r = x;
    for (int i = 0; i < 9; i++) r = ops[((i + x) % 3 + 3) % 3](r, i + 1);
    return r;
}
long select_mix(long a, long b) {
    long m = a > b ? a : b, n = a < b ? a : b;
    unsigned long um = (unsigned long)a > (unsigned long)b ? a : b;
    return m * 3 + n + (long)um + (a == 0 ? 17 : a);
}
/* At -O2 with -fPIC: a relative lookup table (llvm.load.relative). */
const char *color_name(long x) {
    switch (x) { case 0: return "red"; case 1: return "green"; case 2: return "blue"; case 3: return "cyan"; case 4: return "magenta"; case 5: return "yellow"; default: return "?"; }
}
/* A named double before the variadic part; more than 6 integer and 8
   floating-point variadic arguments (the overflow area). */
double vd_named(double base, int n, ...) {
    va_list ap; va_start(ap, n); double s = base;
    for (int i = 0; i < n; i++) { if (i % 2) s += va_arg(ap, double) * (i + 1); else s += (double)va_arg(ap, int) * 3; }
    va_end(ap); return s;
}
long call_vd_named(long x) {
    return (long)vd_named(0.5, 12, 1, 2.0, 3, 4.0, 5, 6.0, 7, 8.0, 9, 10.0, (int)x, 12.5)
        + (long)vd_named(1.0, 20, 1, 1.0, 2, 2.0, 3, 3.0, 4, 4.0, 5, 5.0, 6, 6.0, 7, 7.0, 8, 8.0, 9, 9.0, 10, 10.5 + (double)x);
}
/* A label table read at constant indices too (constant GEP expressions). */
int goto_const(int n) {
    static void *const t[] = { &&a, &&b, &&c };
    int acc = 0;
    goto *t[2];
a: acc += 1; if (--n > 0) goto *t[1]; return acc;
b: acc *= 3; goto *t[0];
c: acc = n; goto *t[n & 1];
}
/* 64-bit vectors and their comparison masks. */
typedef float v2f __attribute__((vector_size(8)));
typedef int v2i __attribute__((vector_size(8)));
typedef short v4s __attribute__((vector_size(8)));
long vec_masks(int n) {
    v2f a = { (float)n, 1.5f }, b = { 2.0f, (float)-n };
    v2i m = a < b;
    v4s x = { (short)n, 2, 3, (short)(n * 2) }, y = { 1, (short)n, 3, 4 };
    v4s k = x > y;
    v2f s = a + b;
    v2i sel = (m & (v2i){ 10, 20 }) | (~m & (v2i){ 30, 40 });
    return m[0] * 3 + m[1] * 5 + k[0] + k[1] * 7 + k[2] * 11 + k[3] * 13 + (long)(s[0] * 4 + s[1]) + sel[0] + sel[1];
}
/* Locals aligned beyond the 16 bytes of the frame. */
long wide_alignment(long n) {
    _Alignas(64) char a[100];
    _Alignas(32) double d[3];
    for (int i = 0; i < 100; i++) a[i] = (char)(i * n);
    d[0] = (double)n; d[1] = 2; d[2] = a[7];
    return ((long)(uintptr_t)a % 64) + ((long)(uintptr_t)d % 32) * 100 + a[99] + (long)(d[0] + d[2]);
}
/* 128-bit division (compiler-rt/libgcc calls). */
long i128_div(long a, long b) {
    __int128 x = ((__int128)a << 64) + b, y = (__int128)(b | 1) * 7;
    unsigned __int128 u = (unsigned __int128)x, v = (unsigned __int128)(a | 3);
    return (long)(x / y) ^ (long)(x % y) ^ (long)(u / v) ^ (long)((u % v) >> 1);
}
/* i128 parameters and results (two registers each). */
__attribute__((noinline)) __int128 mul_add128(__int128 a, __int128 b, long c) { return a * b + c; }
long call128(long x) {
    __int128 r = mul_add128((__int128)x << 40, x + 1, 3);
    return (long)(r >> 50) ^ (long)r;
}
