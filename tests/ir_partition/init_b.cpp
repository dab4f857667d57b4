#include <cstdio>

struct Noisy2 {
  const char *name;
  explicit Noisy2(const char *n) : name(n) { std::printf("init %s\n", name); }
  ~Noisy2() { std::printf("fini %s\n", name); }
};

int b_value = 41;
Noisy2 b1("b1");
Noisy2 late __attribute__((init_priority(65000)))("b_late");
Noisy2 b_early __attribute__((init_priority(120)))("b_early");
