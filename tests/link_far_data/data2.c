/* A gigabyte of zeroed data, then the variable main.c uses: linked as its
   own object, it lands a gigabyte further from main's code. */
char pad2[1000 << 20];
int value2 = 2;
long table2[4] = {2, 2 * 10, 2 * 100, 2 * 1000};
