// A registry filled by static constructors in this object.
#include <numeric>

#include "cxx_shared.h"

namespace {
std::vector<std::string> &registry() {
    static std::vector<std::string> words;
    return words;
}

struct Register {
    explicit Register(const char *w) { registry().push_back(w); }
};

Register r1("alpha");
Register r2("beta");
Tracer registry_global("registry.cpp global");
} // namespace

std::vector<std::string> registry_words() { return registry(); }

std::size_t total_length(const std::vector<std::string> &words) {
    return std::accumulate(words.begin(), words.end(), std::size_t{0},
                           [](std::size_t n, const std::string &w) { return n + w.size(); });
}
