/* Thread-locals of another file, defined here and used from main.c. */
__thread long shared_sum = 100;
__thread int shared_calls;
static __thread int local_calls;

long counters_add(long v) {
    shared_calls++;
    local_calls++;
    return shared_sum += v;
}

int counters_calls(void) { return local_calls; }
