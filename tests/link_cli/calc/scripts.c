/* The built-in scripts (string literals in .rodata, pointed to from a
 * relocated table). */
#include "calc.h"

const Script calc_scripts[] = {
    {"arith", "print 1 + 2 * 3; print (1 + 2) * 3; print 7 % 4; print -2 * -3; print 10 / 4"},
    {"vars", "let x = 5; let y = x * x + 1; print y; let x = x + y; print x"},
    {"loop", "let i = 0; let s = 0; while i < 100 do let s = s + i * i; let i = i + 1 end; print s"},
    {"branch", "let n = 27; let steps = 0; while n > 1 do if n % 2 == 0 then let n = n / 2 "
               "else let n = 3 * n + 1 end; let steps = steps + 1 end; print steps"},
    {"libm", "print sqrt(2); print pow(2, 10); print floor(sin(1) * 1000); print hypot(3, 4)"},
    {"builtins", "print fact(10); print fib(30); print min(3, max(1, 2)); print abs(-7.25)"},
    {"primes", "let n = 2; let c = 0; while n < 200 do let d = 2; let p = 1; "
               "while d * d < n + 1 do if n % d == 0 then let p = 0 end; let d = d + 1 end; "
               "let c = c + p; let n = n + 1 end; print c"},
    {"divzero", "let a = 1; print a; print a / (a - 1)"},
    {"unknown", "print nothing_here + 1"},
    {"syntax", "let = 4"},
    {"arity", "print pow(2)"},
    {"newton", "let x = 1; let i = 0; while i < 20 do let x = (x + 10 / x) / 2; let i = i + 1 end; "
               "print x * 1000000"},
};

const int calc_n_scripts = sizeof calc_scripts / sizeof calc_scripts[0];
