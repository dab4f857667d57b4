/* Pulls arch_one.o from an archive, which pulls arch_two.o. */
int arch_one(int);
int archive_entry(int x) { return arch_one(x); }
