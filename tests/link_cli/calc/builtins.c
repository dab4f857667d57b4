/* Built-in functions: a static table of function pointers, some into libm,
 * some defined here. */
#include <math.h>
#include <string.h>

#include "calc.h"

static double b_sqrt(const double *a) { return sqrt(a[0]); }
static double b_pow(const double *a) { return pow(a[0], a[1]); }
static double b_sin(const double *a) { return sin(a[0]); }
static double b_floor(const double *a) { return floor(a[0]); }
static double b_abs(const double *a) { return fabs(a[0]); }
static double b_min(const double *a) { return a[0] < a[1] ? a[0] : a[1]; }
static double b_max(const double *a) { return a[0] > a[1] ? a[0] : a[1]; }
static double b_hypot(const double *a) { return hypot(a[0], a[1]); }
static double b_fact(const double *a) {
    double r = 1;
    for (int i = 2; i <= (int)a[0]; i++)
        r *= i;
    return r;
}
static double b_fib(const double *a) {
    double x = 0, y = 1;
    for (int i = 0; i < (int)a[0]; i++) {
        double t = x + y;
        x = y;
        y = t;
    }
    return x;
}

static const Builtin table[] = {
    {"sqrt", 1, b_sqrt}, {"pow", 2, b_pow},     {"sin", 1, b_sin},
    {"floor", 1, b_floor}, {"abs", 1, b_abs},   {"min", 2, b_min},
    {"max", 2, b_max},   {"hypot", 2, b_hypot}, {"fact", 1, b_fact},
    {"fib", 1, b_fib},
};

int builtin_count(void) { return (int)(sizeof table / sizeof table[0]); }

const Builtin *builtin_at(int idx) {
    return idx >= 0 && idx < builtin_count() ? &table[idx] : NULL;
}

int builtin_index(const char *name) {
    for (int i = 0; i < builtin_count(); i++) {
        if (strcmp(table[i].name, name) == 0)
            return i;
    }
    return -1;
}

const Builtin *builtin_find(const char *name) { return builtin_at(builtin_index(name)); }
