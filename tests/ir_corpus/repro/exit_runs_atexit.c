#include <stdio.h>
#include <stdlib.h>
static void bye(void) { puts("bye"); }
int main(void) { atexit(bye); puts("hi"); exit(3); }
