// C++ constructs: exceptions (invoke/landingpad stay out of tier 0),
// templates, virtual calls, static constructors, thread_local.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
};
struct Square : Shape {
    double s;
    explicit Square(double s) : s(s) {}
    double area() const override { return s * s; }
};
struct Circle : Shape {
    double r;
    explicit Circle(double r) : r(r) {}
    double area() const override { return 3.14159 * r * r; }
};

template <typename T> T sum(const std::vector<T> &v) {
    T s{};
    for (const T &x : v) s += x;
    return s;
}

static int counter = [] { return 42; }();
thread_local int tls_count = 0;

int may_throw(int x) {
    if (x < 0) throw std::runtime_error("negative");
    return x * 2;
}

int catches(int x) {
    try {
        return may_throw(x);
    } catch (const std::exception &e) {
        return -1;
    }
}

double areas(int n) {
    std::vector<Shape *> shapes;
    for (int i = 0; i < n; i++) {
        if (i % 2) shapes.push_back(new Square(i));
        else shapes.push_back(new Circle(i));
    }
    double a = 0;
    for (Shape *s : shapes) { a += s->area(); delete s; }
    return a;
}

int main() {
    std::vector<int> v{1, 2, 3};
    tls_count++;
    std::printf("%d %d %d %f %d\n", sum(v), catches(3), catches(-3), areas(5), counter + tls_count);
    return 0;
}
