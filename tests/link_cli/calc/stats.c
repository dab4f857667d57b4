/* Summary statistics over doubles (libm's sqrt). */
#include <math.h>

#include "calc.h"

double stats_mean(const double *xs, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += xs[i];
    return n ? s / (double)n : 0;
}

double stats_stddev(const double *xs, size_t n) {
    if (n < 2)
        return 0;
    double m = stats_mean(xs, n), s = 0;
    for (size_t i = 0; i < n; i++)
        s += (xs[i] - m) * (xs[i] - m);
    return sqrt(s / (double)(n - 1));
}

double stats_median(double *xs, size_t n) {
    if (!n)
        return 0;
    sort_doubles(xs, n);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}
