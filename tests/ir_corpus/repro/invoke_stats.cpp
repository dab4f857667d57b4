#include <cstdio>
#include <stdexcept>
static int risky(int x) {
    if (x > 2) throw std::runtime_error("too big");
    return x;
}
int main() {
    int sum = 0;
    for (int i = 0; i < 5; i++) {
        try {
            sum += risky(i);
        } catch (const std::exception &e) {
            std::printf("caught %s\n", e.what());
        }
    }
    std::printf("%d\n", sum);
    return 0;
}
