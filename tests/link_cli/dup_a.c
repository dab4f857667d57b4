/* Defines duplicated_symbol strongly, as dup_b.c does. */
int duplicated_symbol(void) { return 1; }

int main(void) { return duplicated_symbol(); }
