/* Factorials as decimal strings (base-10^4 limbs; archive member that
 * pulls in bigfmt.o). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calc.h"

enum { LIMBS = 64, BASE = 10000 };

char *bigint_factorial(int n) {
    unsigned limbs[LIMBS] = {1};
    int used = 1;
    for (int k = 2; k <= n; k++) {
        unsigned carry = 0;
        for (int i = 0; i < used; i++) {
            unsigned v = limbs[i] * (unsigned)k + carry;
            limbs[i] = v % BASE;
            carry = v / BASE;
        }
        while (carry && used < LIMBS) {
            limbs[used++] = carry % BASE;
            carry /= BASE;
        }
    }
    char digits[LIMBS * 4 + 1];
    int len = snprintf(digits, sizeof digits, "%u", limbs[used - 1]);
    for (int i = used - 2; i >= 0; i--)
        len += snprintf(digits + len, sizeof digits - (size_t)len, "%04u", limbs[i]);
    return bigfmt_group(digits);
}
