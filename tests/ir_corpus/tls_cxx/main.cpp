// C++ thread_local objects with constructors and destructors: a
// function-local one, namespace-scope ones of this file and of
// registry.cpp (dynamic initialization through the TLS wrapper), in the
// main thread and in std::threads run one after another.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

struct Noisy {
    std::string name;
    int uses = 0;
    explicit Noisy(const char *n) : name(n) { std::printf("construct %s\n", name.c_str()); }
    ~Noisy() { std::printf("destroy %s uses=%d\n", name.c_str(), uses); std::fflush(stdout); }
};

thread_local Noisy global_noisy("global");
thread_local int plain_counter = 7;
thread_local std::vector<int> history;

std::string &registry_name();   // registry.cpp
int registry_add(int v);
int registry_mix(int acc, int v);

static Noisy &local_noisy() {
    thread_local Noisy n("local");
    return n;
}

static void round(int id, int size) {
    int acc = 0;
    for (int i = 0; i < size; i++) {
        acc = registry_mix(acc, plain_counter);
        global_noisy.uses++;
        plain_counter += id;
        history.push_back(i * id);
        local_noisy().uses += 2;
    }
    registry_name() = "thread-" + std::to_string(id);
    int s = registry_add(id * size);
    std::printf("round %d: plain=%d history=%zu global=%d local=%d registry=%s/%d mix=%d\n",
                id, plain_counter, history.size(), global_noisy.uses, local_noisy().uses,
                registry_name().c_str(), s, acc);
    std::fflush(stdout);
}

int main(int argc, char **argv) {
    int size = argc > 1 ? std::atoi(argv[1]) : 3;
    round(0, size);
    for (int id = 1; id <= 3; id++) {
        std::thread t(round, id, size);
        t.join();
    }
    round(9, size);
    return plain_counter % 50;
}
