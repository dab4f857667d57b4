// The second file of linkage_a.cpp's program: the same inline functions
// and template instances (linkonce_odr, merged by llvm-link), and an
// exception thrown here and caught in the other file.
#include <cstdio>
#include "linkage.h"

int from_b(int x) {
  try {
    if (x > 5) throw Overflow{x * 10};
  } catch (const Overflow &o) {
    std::printf("from_b caught %d, max %d\n", o.value, clamp_max(o.value));
    return twice(o.value);
  }
  return twice(x);
}
