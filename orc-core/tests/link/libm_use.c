/* Needs -lm. */
#include <math.h>
double use_libm(double x) { return sqrt(x) + cos(0.0); }
