int arch_two(int x) { return x + 3; }
