#include <cstdio>
#include <thread>

#include "inline.h"

int main() {
    shared_name += "-a";
    Counter<int>::value += 1;
    std::thread t([] {
        shared_name += "-t";
        Counter<int>::value += 100;
        std::printf("thread %s %d %d\n", shared_name.c_str(), Counter<int>::value, other());
    });
    t.join();
    std::printf("main %s %d %d\n", shared_name.c_str(), Counter<int>::value, other());
    return Counter<int>::value;
}
