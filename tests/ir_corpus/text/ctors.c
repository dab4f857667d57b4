#include "text.h"

#include <stdio.h>
#include <string.h>

char startup_log[128];

void note(const char *what) {
    size_t len = strlen(startup_log);
    snprintf(startup_log + len, sizeof startup_log - len, "%s%s", len ? " " : "", what);
}

/* Lower priorities run first; constructors without one run last. */
__attribute__((constructor(300))) static void third(void) { note("c300"); }
__attribute__((constructor(101))) static void first(void) { note("c101"); }
__attribute__((constructor)) static void last(void) { note("c-default"); }
__attribute__((constructor(200))) static void second(void) { note("c200"); }

__attribute__((destructor(200))) static void d200(void) { printf("destructor 200\n"); }
__attribute__((destructor(101))) static void d101(void) { printf("destructor 101 (last)\n"); }
__attribute__((destructor)) static void dlast(void) { printf("destructor default (first)\n"); }
