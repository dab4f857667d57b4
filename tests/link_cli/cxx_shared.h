// Shared declarations of the C++ test program.
#pragma once
#include <iostream>
#include <string>
#include <vector>

struct Tracer {
    explicit Tracer(const char *name) : name_(name) { std::cout << "construct " << name_ << '\n'; }
    ~Tracer() { std::cout << "destroy " << name_ << '\n'; }
    std::string name_;
};

std::vector<std::string> registry_words();
std::size_t total_length(const std::vector<std::string> &words);
