/* The other object of exit_main.c: the exit call happens here. */
#include <stdio.h>
#include <stdlib.h>

static void helper_handler(void) { printf("\natexit handler of the helper\n"); }

__attribute__((destructor)) static void helper_fini(void) { printf("helper destructor\n"); }

void leave(int status) {
    atexit(helper_handler);
    exit(status);
}
