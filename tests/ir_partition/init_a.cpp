// C++ static initialization across two files joined with llvm-link:
// dynamic initializers in file order, init_priority, destructors in
// reverse, a function-local static destroyed with the rest.
#include <cstdio>

struct Noisy {
  const char *name;
  explicit Noisy(const char *n) : name(n) { std::printf("init %s\n", name); }
  ~Noisy() { std::printf("fini %s\n", name); }
};

Noisy a1("a1");
Noisy early __attribute__((init_priority(150)))("a_early");
extern int b_value;
int a_copy_of_b = b_value + 1; // b_value is constant-initialized
Noisy a2("a2");

Noisy &local_static() {
  static Noisy s("local static");
  return s;
}

int main() {
  std::printf("main: a_copy_of_b=%d, %s\n", a_copy_of_b, local_static().name);
  return 0;
}
