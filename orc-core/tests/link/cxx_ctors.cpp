// C++ static constructors and destructors (the latter registered with
// __cxa_atexit against __dso_handle), and a function-local static.
extern "C" void log_event(int);

struct Tracker {
    int id;
    explicit Tracker(int i) : id(i) { log_event(i); }
    ~Tracker() { log_event(-id); }
};

Tracker first(1);
Tracker second(2);
static Tracker third(3);

extern "C" int cxx_value() { return first.id + second.id + third.id; }

extern "C" void touch_function_static() {
    static Tracker local(100);
}
