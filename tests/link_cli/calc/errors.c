/* Error reporting: a global count (bss) and the last message. */
#include <stdio.h>

#include "calc.h"

int calc_errors;
char calc_last_error[128];

static const char *const kinds[] = {"syntax", "runtime", "arity", "unknown"};

const char *calc_error_kind(int code) {
    return code >= 0 && code < 4 ? kinds[code] : kinds[3];
}

void calc_error(const char *where, const char *msg) {
    calc_errors++;
    snprintf(calc_last_error, sizeof calc_last_error, "%s: %s", where, msg);
}
