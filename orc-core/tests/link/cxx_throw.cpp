// Throws; cxx_catch.cpp catches. The exception type is ours (its typeinfo
// is in a COMDAT group both objects carry) so this also links -fno-PIC.
extern "C" void log_event(int);

struct MyError {
    int code;
};

struct Guard {
    ~Guard() { log_event(7); }
};

void thrower(int x) {
    Guard g;
    if (x > 0)
        throw MyError{x * 2};
}

int inline_shared(int x) { return x + 1; }
