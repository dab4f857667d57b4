// C++ static constructors and destructors across objects, iostream, and a
// function-local static; `exit` is called when an argument asks for it.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cxx_shared.h"

namespace {
Tracer main_global("main.cpp global");
}

int main(int argc, char **argv) {
    std::cout << "main: start, " << argc - 1 << " arguments" << std::endl;
    static Tracer local("function-local static");
    std::vector<std::string> words = registry_words();
    for (const auto &w : words)
        std::cout << "registry: " << w << '\n';
    std::cout << "sum of lengths: " << total_length(words) << '\n';
    if (argc > 1 && std::string(argv[1]) == "exit") {
        std::cout << "main: calling exit(5)" << '\n';
        std::exit(5);
    }
    std::cout << "main: returning 4" << '\n';
    return 4;
}
