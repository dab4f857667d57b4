/* One of three objects whose destructors must run in reverse add order
   (fini_order_a.c uses fini_order_c.c, so c links before a). */
void log_event(int);
__attribute__((constructor)) static void init_a(void) { log_event(1); }
__attribute__((destructor)) static void fini_a(void) { log_event(-1); }
int fini_order_c_value(void);
int fini_order_a(void) { return fini_order_c_value(); }
