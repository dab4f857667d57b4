__attribute__((weak)) int which_weak(void) { return 2; }
int call_weak_b(void) { return which_weak(); }
