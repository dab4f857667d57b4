/* A xorshift64* generator with static state (archive member). */
#include "calc.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;

void rng_seed(uint64_t seed) { state = seed ? seed : 0x9E3779B97F4A7C15ull; }

uint64_t rng_next(void) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
}

void rng_shuffle(int *xs, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next() % (uint64_t)(i + 1));
        int t = xs[i];
        xs[i] = xs[j];
        xs[j] = t;
    }
}
