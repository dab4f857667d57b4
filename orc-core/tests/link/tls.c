/* Thread-local storage: initialized (.tdata), zeroed (.tbss), a static
   struct and array, the address of a thread's own copy; used here and
   from tls_use.c. */
__thread int tls_counter = 41;
__thread long tls_zero;
static __thread struct {
    int a;
    char name[12];
    double d;
} tls_rec = {7, "tdata", 0.5};
static __thread int tls_array[64];

int tls_bump(int by) {
    tls_counter += by;
    tls_zero += 2 * by;
    tls_array[by & 63] += by;
    return tls_counter;
}

long tls_zeroed(void) { return tls_zero; }

int tls_rec_sum(void) {
    tls_rec.a++;
    tls_rec.d *= 2;
    return tls_rec.a + (int)(tls_rec.d * 4) + tls_rec.name[0];
}

int *tls_counter_addr(void) { return &tls_counter; }

int tls_array_sum(void) {
    int s = 0;
    for (int i = 0; i < 64; i++) s += tls_array[i];
    return s;
}
