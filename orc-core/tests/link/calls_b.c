/* The other half of calls_a.c. */
int counter = 41;
int shared_common;

static int mul(int a, int b) { return a * b; }
static int sub(int a, int b) { return a - b; }
int b_add(int a, int b) { return a + b; }

const char *b_name(void) { return "object b"; }

static int (*const ops[])(int, int) = {b_add, sub, mul};
int (*b_op(int which))(int, int) { return ops[which % 3]; }

int b_get_common(void) { return shared_common; }
int b_counter(void) { return counter; }
