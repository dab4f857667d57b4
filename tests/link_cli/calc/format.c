/* Number formatting: integers without a fraction, others with %.6g. */
#include <math.h>
#include <stdio.h>

#include "calc.h"

void format_number(StrBuf *sb, double v) {
    if (isnan(v)) {
        strbuf_puts(sb, "nan");
    } else if (isinf(v)) {
        strbuf_puts(sb, v < 0 ? "-inf" : "inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        strbuf_printf(sb, "%lld", (long long)v);
    } else {
        strbuf_printf(sb, "%.6g", v);
    }
}
