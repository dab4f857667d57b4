/* A gigabyte of zeroed data, then the variable main.c uses: linked as its
   own object, it lands a gigabyte further from main's code. */
char pad1[1000 << 20];
int value1 = 1;
long table1[4] = {1, 1 * 10, 1 * 100, 1 * 1000};
