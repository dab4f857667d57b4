#include <cstdio>
#include "inline_goto.h"

int main() {
  const unsigned char code[] = {0, 1, 1, 0, 2};
  int mine = step(code);
  int theirs = run_other();
  std::printf("mine %d theirs %d\n", mine, theirs);
  return mine + theirs;
}
