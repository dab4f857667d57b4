/* Calls exit(3) from JIT'd code (through exit_helper.c) with output still
 * buffered: atexit handlers, destructors and the stdio flush must all
 * happen, in the order a gcc-linked program shows. */
#include <stdio.h>
#include <stdlib.h>

void leave(int status);

static void first_handler(void) { printf("atexit handler registered first\n"); }
static void second_handler(void) { printf("atexit handler registered second\n"); }

__attribute__((constructor)) static void init(void) { printf("constructor\n"); }
__attribute__((destructor)) static void fini(void) { printf("destructor\n"); }

int main(int argc, char **argv) {
    (void)argv;
    atexit(first_handler);
    atexit(second_handler);
    printf("main: %d arguments, output not yet flushed", argc - 1);
    leave(3);
    printf("not reached\n");
    return 0;
}
