/* Shapes with hand-written vtables: tables of function pointers in
 * constant data, referring to static functions. */
#include <math.h>
#include <stdio.h>
#include "common.h"

static int helper(int x) { return x + 1000; }

int shapes_made;

static double circle_area(const struct shape *s) { return M_PI * s->a * s->a; }
static double circle_perimeter(const struct shape *s) { return 2.0 * M_PI * s->a; }
static void scale_a(struct shape *s, double k) { s->a *= k; }
static double rect_area(const struct shape *s) { return s->a * s->b; }
static double rect_perimeter(const struct shape *s) { return 2.0 * (s->a + s->b); }
static void scale_ab(struct shape *s, double k) {
    s->a *= k;
    s->b *= k;
}
static double tri_area(const struct shape *s) { return 0.5 * s->a * s->b; }
static double tri_perimeter(const struct shape *s) {
    /* isosceles: base a, height b */
    return s->a + 2.0 * sqrt(s->b * s->b + s->a * s->a / 4.0);
}

static const struct shape_ops circle_ops = {"circle", circle_area, circle_perimeter, scale_a};
static const struct shape_ops rect_ops = {"rect", rect_area, rect_perimeter, scale_ab};
static const struct shape_ops tri_ops = {"triangle", tri_area, tri_perimeter, scale_ab};

static struct shape made(const struct shape_ops *ops, double a, double b) {
    struct shape s;
    s.ops = ops;
    s.a = a;
    s.b = b;
    shapes_made++;
    events += helper(0) - 999;
    return s;
}

struct shape make_circle(double r) { return made(&circle_ops, r, 0.0); }
struct shape make_rect(double w, double h) { return made(&rect_ops, w, h); }
struct shape make_triangle(double base, double height) { return made(&tri_ops, base, height); }

/* A weak default another file may override. */
__attribute__((weak)) int tuned_value(void) { return 1; }
