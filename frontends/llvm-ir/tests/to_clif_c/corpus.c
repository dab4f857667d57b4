/* Constructs the tier-0 translation covers; each function is translated
   at -O0 and -O2 and must verify. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdbool.h>

struct pair { long a, b; };
struct dpair { double x, y; };
struct mixed { long n; double d; };
struct fpair { float x, y; };
struct big { long v[6]; };
struct node { int tag; struct node *next; short s[3]; char c; };

long add_l(long a, long b) { return a + b; }
int int_ops(int a, int b) {
    return (a * b) ^ (a / (b | 1)) ^ (a % (b | 1)) ^ (a << (b & 7)) ^ (a >> 3) ^ ((unsigned)a >> 5) ^ (a & b) ^ (a | b) ^ (a - b);
}
unsigned long uops(unsigned long a, unsigned long b) { return a / (b | 1) + a % (b | 1); }
short narrow(short a, signed char b, unsigned char c) { return (short)(a * b + c); }
bool is_less(int a, int b) { return a < b; }
int from_bool(bool x, bool y) { return x + y * 2; }
__int128 wide_mul(__int128 a, __int128 b) { return a * b + (a >> 3) - (b << 7); }
unsigned __int128 wide_cmp(unsigned __int128 a, unsigned __int128 b) { return a < b ? a ^ b : a | b; }
double fops(double a, double b) { return a * b + a / b - (a - b); }
float fopsf(float a, float b) { return -a * b + a / b; }
double frem_d(double a, double b) { return __builtin_fmod(a, b) ; }
int fcmp_all(double a, double b) {
    return (a < b) | (a <= b) << 1 | (a > b) << 2 | (a >= b) << 3 | (a == b) << 4 | (a != b) << 5
        | __builtin_isunordered(a, b) << 6 | __builtin_islessgreater(a, b) << 7;
}
long conv(double d, float f, int i, unsigned u, long l, unsigned long ul) {
    return (long)d + (int)f + (long)(double)i + (long)(float)u + (long)(double)l
        + (long)(double)ul + (long)(unsigned long)d + (long)(unsigned)f + (long)(float)d;
}
double conv_back(long l, unsigned long ul, short s, unsigned char c) { return (double)l + (double)ul + (float)s + c; }
long sum_array(const long *p, int n) { long s = 0; for (int i = 0; i < n; i++) s += p[i]; return s; }
int node_len(const struct node *n) { int k = 0; while (n) { k += n->tag + n->s[2] + n->c; n = n->next; } return k; }
int local_array(int n) { int a[16]; for (int i = 0; i < 16; i++) a[i] = i * n; return a[n & 15] + a[3]; }
int sw(int x) {
    switch (x) { case 0: return 10; case 1: return 20; case 5: return 7; case 100: return -1; case -3: return 3; default: return x * 2; }
}
int sw_phi(int x, int y) {
    int r;
    switch (x) { case 1: r = y; break; case 2: r = y * 3; break; case 7: case 8: r = 4; break; default: r = 0; }
    return r + 1;
}
struct pair make_pair(long a, long b) { struct pair p = { a + 1, b * 2 }; return p; }
struct dpair make_dpair(double a) { struct dpair p = { a, a * 2 }; return p; }
struct mixed make_mixed(long n, double d) { struct mixed m = { n, d }; return m; }
struct fpair make_fpair(float a) { struct fpair p = { a, -a }; return p; }
struct big make_big(long s) { struct big b; for (int i = 0; i < 6; i++) b.v[i] = s + i; return b; }
long use_pair(struct pair p) { return p.a * 3 + p.b; }
double use_dpair(struct dpair p) { return p.x - p.y; }
long use_big(struct big b) { return b.v[0] + b.v[5] * 10; }
long call_big(long s) { return use_big(make_big(s)) + use_pair(make_pair(s, s)); }
long sum_va(int n, ...) {
    va_list ap; va_start(ap, n); long s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, long);
    va_end(ap); return s;
}
double sum_vd(int n, ...) {
    va_list ap, aq; va_start(ap, n); va_copy(aq, ap); double s = 0;
    for (int i = 0; i < n; i++) s += va_arg(ap, double);
    for (int i = 0; i < n; i++) s += va_arg(aq, double);
    va_end(aq); va_end(ap); return s;
}
long many_va(long a, long b, long c, long d, long e, long f, long g, ...) {
    va_list ap; va_start(ap, g); long x = va_arg(ap, long); double y = va_arg(ap, double); va_end(ap);
    return a + b + c + d + e + f + g * 2 + x * 3 + (long)y;
}
long call_va(long x) { return sum_va(3, x, x + 1, x + 2) + (long)sum_vd(2, 1.5, (double)x); }
int call_printf(int x) { char buf[64]; return snprintf(buf, sizeof buf, "%d %f %s", x, x * 0.5, "s"); }
long apply(long (*f)(long, long), long a, long b) { return f(a, b); }
long use_apply(long a) { return apply(add_l, a, 2); }
int atomics(int *p, int v) {
    int old = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    __atomic_fetch_sub(p, 1, __ATOMIC_RELAXED);
    __atomic_fetch_and(p, ~0, __ATOMIC_ACQ_REL);
    __atomic_fetch_or(p, 0, __ATOMIC_ACQUIRE);
    __atomic_fetch_xor(p, 0, __ATOMIC_RELEASE);
    int exp = old + v - 1;
    bool ok = __atomic_compare_exchange_n(p, &exp, exp + 10, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int l = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    __atomic_store_n(p, l + 1, __ATOMIC_RELEASE);
    return old * 100 + ok * 10 + __atomic_exchange_n(p, 5, __ATOMIC_SEQ_CST);
}
int computed_goto(const unsigned char *code) {
    static void *const tbl[] = { &&op_inc, &&op_dbl, &&op_end };
    int acc = 0;
    goto *tbl[*code++];
op_inc: acc++; goto *tbl[*code++];
op_dbl: acc *= 2; goto *tbl[*code++];
op_end: return acc;
}
void vec_add(int *restrict a, const int *restrict b, int n) { for (int i = 0; i < n; i++) a[i] += b[i] * 3; }
float vec_sum(const float *a, int n) { float s = 0; for (int i = 0; i < n; i++) s += a[i] * a[i]; return s; }
long select_ptr(int c, long *a, long *b) { return *(c ? a : b); }
void copy_struct(struct node *d, const struct node *s) { *d = *s; }
__attribute__((noinline)) long twice(long x) { return x * 2; }
long call_twice(long x) { return twice(x) + 1; }
