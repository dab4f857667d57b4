#include <stdio.h>
static long run(const int *code, long n) {
    static void *const table[] = {&&inc, &&dec, &&loop, &&halt};
    long acc = 0, i = 0;
    int pc = 0;
    goto *table[code[pc++]];
inc: acc += 2; goto *table[code[pc++]];
dec: acc -= 1; goto *table[code[pc++]];
loop: if (++i < n) pc = 0; goto *table[code[pc++]];
halt: return acc;
}
int main(void) {
    static const int code[] = {0, 1, 2, 3};
    long total = 0;
    for (int k = 0; k < 2000; k++) total += run(code, 10);
    printf("%ld\n", total);
    return 0;
}
