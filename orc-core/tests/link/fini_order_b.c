/* One of three objects whose destructors must run in reverse add order
   (fini_order_a.c uses fini_order_c.c, so c links before a). */
void log_event(int);
__attribute__((constructor)) static void init_b(void) { log_event(2); }
__attribute__((destructor)) static void fini_b(void) { log_event(-2); }
