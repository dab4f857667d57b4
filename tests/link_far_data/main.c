/* Built -fno-PIC: every reference to the data of data1..3.c (and to
   libc's `stdout`/`stderr`) is a 32-bit field, and data3.c lies more than
   2 GiB away once linked. */
#include <stdio.h>
extern char pad1[], pad2[], pad3[];
extern int value1, value2, value3;
extern long table1[], table2[], table3[];

static long sum_tables(int n) {
    long s = 0;
    for (int i = 0; i < n; i++) s += table1[i] + table2[i] + table3[i];
    return s;
}

int main(int argc, char **argv) {
    (void)argv;
    value1 += 1;
    value2 *= 7;
    value3 = value3 * 100 + argc;
    pad3[12345] = 'x';
    pad1[(1000 << 20) - 1] = 'y';
    table3[argc] += 5;
    int *p = &value3;
    *p += 1;
    if (value3 > 300) value2++;
    printf("values %d %d %d\n", value1, value2, value3);
    printf("tables %ld pad %c%c\n", sum_tables(4), pad3[12345], pad1[(1000 << 20) - 1]);
    fprintf(stderr, "to stderr\n");
    fputs("done\n", stdout);
    return value3 % 100;
}
