/* Initialized before exit_in_ctor.c's constructor exits; finalized after. */
#include <stdio.h>

__attribute__((constructor)) static void init(void) { printf("other constructor "); }
__attribute__((destructor)) static void fini(void) { printf("other destructor\n"); }
