/* A gigabyte of zeroed data, then the variable main.c uses: linked as its
   own object, it lands a gigabyte further from main's code. */
char pad3[1000 << 20];
int value3 = 3;
long table3[4] = {3, 3 * 10, 3 * 100, 3 * 1000};
