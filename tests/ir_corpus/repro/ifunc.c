static int one(void) { return 1; }
static int two(void) { return 2; }
static volatile int pick_two;
static int (*resolve(void))(void) { return pick_two ? two : one; }
int value(void) __attribute__((ifunc("resolve")));
int main(void) { return value() + 40; }
