/* Thread-locals of another object (tls.c). */
extern __thread int tls_counter;
extern __thread long tls_zero;

int use_counter(void) { return tls_counter * 2; }

long use_zero_add(long v) { return tls_zero += v; }
