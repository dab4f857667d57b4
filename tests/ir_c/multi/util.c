/* Logging, hashing, ids, and the program's constructor. */
#include <stdio.h>
#include <string.h>
#include "common.h"

static int helper(int x) { return x * x; }

long events;
const char *const level_names[] = {"debug", "info", "warn", "error"};
static int id_counter = 100;
static char last_message[64] = "none";
static int ctor_order[4];
static int n_ctors;

void log_event(int level, const char *what) {
    static int calls; /* a static local: an internal global */
    calls++;
    events++;
    snprintf(last_message, sizeof last_message, "%s", what);
    printf("[%s #%d] %s\n", level_names[clamp_int(level, 0, 3)], calls, what);
}

unsigned hash_string(const char *s) {
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

int next_id(void) { return id_counter++ + helper(0); }

int clamp_int(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

int sum_to(int n) {
    int s = 0, i;
    for (i = 1; i <= n; i++) s += helper(i) % 7;
    return s;
}
int compute_total(int n) __attribute__((alias("sum_to")));

/* Overrides the weak default in shapes.c. */
int tuned_value(void) { return 42; }

__attribute__((constructor(101))) static void first_ctor(void) { ctor_order[n_ctors++] = 1; }
__attribute__((constructor(102))) static void second_ctor(void) {
    ctor_order[n_ctors++] = 2;
    id_counter += 900;
}

int ctors_ok(void) { return n_ctors == 2 && ctor_order[0] == 1 && ctor_order[1] == 2; }

const char *last_logged(void) { return last_message; }
