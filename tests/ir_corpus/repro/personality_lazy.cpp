#include <cstdio>
#include <string>
int main(int argc, char **) {
    std::string s("a string long enough to allocate on the heap");
    std::printf("%zu\n", s.size() + argc);
    return 0;
}
