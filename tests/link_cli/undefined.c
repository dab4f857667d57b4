/* References a function defined nowhere. */
int function_defined_nowhere(int);

int main(void) { return function_defined_nowhere(1); }
