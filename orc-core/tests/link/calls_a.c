/* Cross-object calls and data, function pointers, a switch jump table,
   string literals, static/global/common/bss data. Pairs with calls_b.c. */
#include <string.h>

extern int counter;           /* initialized data in calls_b.c */
int shared_common;            /* common (with -fcommon) here and in calls_b.c */
int bss_array[64];            /* bss */
static int static_counter = 5;

int b_add(int a, int b);
const char *b_name(void);
int (*b_op(int which))(int, int);
int b_get_common(void);

int a_sum(int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s = b_add(s, i);
    return s;
}

int a_switch(int x) {
    switch (x) {
    case 0: return 11;
    case 1: return 22;
    case 2: return 33;
    case 3: return 44;
    case 4: return 55;
    case 5: return 66;
    case 6: return 77;
    case 7: return 88;
    default: return -1;
    }
}

int a_name_len(void) { return (int)strlen(b_name()); }

int a_bump(void) {
    counter += 1;
    static_counter += 2;
    return counter * 100 + static_counter;
}

int a_bss(void) {
    int s = 0;
    for (int i = 0; i < 64; i++)
        bss_array[i] = i;
    for (int i = 0; i < 64; i++)
        s += bss_array[i];
    return s;
}

int a_common(int v) {
    shared_common = v;
    return b_get_common();
}

int a_apply(int which, int x, int y) { return b_op(which)(x, y); }

const char *a_greeting(void) { return "hello from a"; }

int (*a_fn_ptr(void))(int) { return a_switch; }
