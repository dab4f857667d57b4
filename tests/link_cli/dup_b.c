/* Defines duplicated_symbol strongly, as dup_a.c does. */
int duplicated_symbol(void) { return 2; }
