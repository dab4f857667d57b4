/* Thread-local storage: refused with UnsupportedRelocation. */
__thread int tls_counter;
int bump_tls(void) { return ++tls_counter; }
