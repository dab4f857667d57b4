/* References a function nothing defines. */
int defined_nowhere(int);
int call_nowhere(int x) { return defined_nowhere(x) + 1; }
