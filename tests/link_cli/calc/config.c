/* Settings: initialized global data holding pointers (.data.rel). */
#include "calc.h"

static const char banner_text[] = "calc 1.0 -- expressions, a tree walker and a VM";

Config calc_config = {
    .name = "calc",
    .max_steps = 200000,
    .verbose = 0,
    .scale = 1.5,
    .banner = banner_text,
};
