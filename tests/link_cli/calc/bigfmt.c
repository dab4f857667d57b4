/* Digit grouping with thousands separators (archive member, pulled in
 * only through bigint.o). */
#include <stdlib.h>
#include <string.h>

#include "calc.h"

static const char separator = ',';

char *bigfmt_group(const char *digits) {
    size_t n = strlen(digits);
    char *out = malloc(n + n / 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = separator;
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return out;
}
