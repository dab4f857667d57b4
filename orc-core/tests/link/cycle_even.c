/* Mutually recursive with cycle_odd.c: the two objects reference each other. */
int is_odd(unsigned n);
int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
