// Thread-locals every file that includes this defines in a COMDAT group:
// an inline variable and a template's static member (one copy is kept).
#include <string>
inline thread_local std::string shared_name = "init";
template <class T> struct Counter {
    static thread_local T value;
};
template <class T> thread_local T Counter<T>::value = T(5);
int other();
