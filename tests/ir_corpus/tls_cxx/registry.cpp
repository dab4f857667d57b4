// Thread-locals of another file with dynamic initialization.
#include <string>
#include <vector>

static thread_local std::vector<int> values(2, 5);
thread_local std::string name = "unnamed";

std::string &registry_name() { return name; }

int registry_add(int v) {
    values.push_back(v);
    int s = 0;
    for (int x : values) s += x;
    return s;
}

// Called for every element of a round: hot enough for tier 1 under
// adaptive tiering.
int registry_mix(int acc, int v) { return (acc * 31 + v + values.back()) % 1000003; }
