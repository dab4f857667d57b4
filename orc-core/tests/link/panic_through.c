/* Calls a host callback that panics; the panic unwinds through this frame. */
typedef void (*callback_t)(int);

int call_back(callback_t cb, int x) {
    volatile int before = x + 1;
    cb(x);
    return before;
}
