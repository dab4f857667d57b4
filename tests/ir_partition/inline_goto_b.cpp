#include "inline_goto.h"

int run_other(void) {
  const unsigned char code[] = {1, 1, 0, 1, 2};
  return step(code);
}
