#include "inline.h"

int other() {
    shared_name += "-b";
    return Counter<int>::value * 2 + static_cast<int>(shared_name.size());
}
