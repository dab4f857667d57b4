/* An alternative entry point (`--entry alt_entry`) and a main that must not
 * run when it is used; both print their arguments. */
#include <stdio.h>

static int show(const char *who, int argc, char **argv) {
    printf("%s: argc=%d\n", who, argc);
    for (int i = 0; i < argc; i++)
        printf("%s: argv[%d]=%s\n", who, i, argv[i]);
    return argc;
}

int alt_entry(int argc, char **argv) { return 40 + show("alt_entry", argc, argv); }

int main(int argc, char **argv) { return show("main", argc, argv); }
