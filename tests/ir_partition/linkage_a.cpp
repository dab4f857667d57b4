// Globals of every linkage referenced from several lazy units: C++
// exceptions thrown and caught in different functions (the hidden
// `DW.ref.__gxx_personality_v0` in a comdat, typeinfo), `linkonce_odr`
// inline functions and templates with their comdat groups (also defined by
// linkage_b.cpp: llvm-link merges them), a function-local static of an
// inline function (guard variable), vtables, private string constants,
// internal and hidden globals.
#include <cstdio>
#include <stdexcept>
#include <string>
#include "linkage.h"

static int internal_counter = 0;
__attribute__((visibility("hidden"))) int hidden_total = 0;

struct Shape {
  virtual ~Shape() {}
  virtual int area() const = 0;
  virtual const char *name() const { return "shape"; }
};
struct Square : Shape {
  int side;
  explicit Square(int s) : side(s) {}
  int area() const override { return side * side; }
  const char *name() const override { return "square"; }
};
struct Rect : Shape {
  int w, h;
  Rect(int w, int h) : w(w), h(h) {}
  int area() const override { return w * h; }
};

__attribute__((noinline)) static int checked(int x) {
  internal_counter++;
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  if (x > 100) throw Overflow{x};
  return x;
}

__attribute__((noinline)) int sum_checked(const int *xs, int n) {
  int total = 0;
  for (int i = 0; i < n; i++) {
    try {
      total += checked(xs[i]);
    } catch (const std::invalid_argument &e) {
      std::printf("caught invalid_argument: %s\n", e.what());
    }
  }
  hidden_total += total;
  return total;
}

__attribute__((noinline)) static void report(const Shape &s) {
  std::printf("%s has area %d (max so far %d)\n", s.name(), s.area(), clamp_max(s.area()));
}

int main() {
  const int good[] = {1, 2, -3, 4};
  std::printf("sum %d\n", sum_checked(good, 4));
  const int bad[] = {5, 500};
  try {
    sum_checked(bad, 2);
  } catch (const Overflow &o) {
    std::printf("caught overflow %d\n", o.value);
  }
  Square sq(3);
  Rect r(2, 5);
  report(sq);
  report(r);
  std::printf("twice: %d %g\n", twice(21), twice(1.25));
  std::printf("from b: %d\n", from_b(7));
  std::printf("counter %d hidden %d calls %d\n", internal_counter, hidden_total, clamp_calls());
  return internal_counter;
}
