/* Two weak definitions of one name in one dylib: the first added wins,
   and the other object's own references bind to it too. */
__attribute__((weak)) int which_weak(void) { return 1; }
int call_weak_a(void) { return which_weak(); }
