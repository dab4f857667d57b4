/* Calls two objects one of which calls the other (arch_one.c calls
   arch_two.c): linking it starts both at once. */
int arch_one(int);
int arch_two(int);
int fan_out(int x) { return arch_one(x) + arch_two(x); }
