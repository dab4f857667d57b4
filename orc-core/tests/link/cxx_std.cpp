// std::runtime_error: typeinfo and constructors live in libstdc++.
#include <stdexcept>
#include <string>
#include <cstring>

static void thrower() { throw std::runtime_error("boom"); }

extern "C" int catch_std() {
    try {
        thrower();
    } catch (const std::exception &e) {
        return std::strcmp(e.what(), "boom") == 0 ? 42 : -1;
    }
    return 0;
}

extern "C" int string_len(const char *s) { return static_cast<int>(std::string(s).size()); }
