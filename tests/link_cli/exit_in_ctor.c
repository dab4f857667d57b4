/* Calls exit(7) from a constructor, after registering an exit handler:
 * handlers and the destructors of this and the other object still run. */
#include <stdio.h>
#include <stdlib.h>

static void handler(void) { printf("handler\n"); }

__attribute__((destructor)) static void fini(void) { printf("destructor\n"); }

__attribute__((constructor)) static void init(void) {
    printf("constructor ");
    atexit(handler);
    exit(7);
}

int main(void) {
    printf("main must not run\n");
    return 0;
}
