struct MyError {
    int code;
};

void thrower(int x);

extern "C" int catch_it(int x) {
    try {
        thrower(x);
        return 0;
    } catch (const MyError &e) {
        return e.code;
    } catch (...) {
        return -2;
    }
}

extern "C" int catch_int() {
    try {
        throw 5;
    } catch (int v) {
        return v;
    }
}
