int arch_two(int);
int arch_one(int x) { return arch_two(x) * 2; }
