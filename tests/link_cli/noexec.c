/* A program with visible side effects at every stage: under --noexec none
 * of them may happen. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void init(void) { printf("constructor ran\n"); }
__attribute__((destructor)) static void fini(void) { printf("destructor ran\n"); }

int main(void) {
    printf("main ran\n");
    return 9;
}
