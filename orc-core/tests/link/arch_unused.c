/* Must not be pulled in: it would clash with archive_main.c. */
int archive_entry(int x) { return -x; }
int arch_unused(void) { return 0; }
