struct Overflow {
  int value;
};

template <typename T> T twice(T x) { return x + x; }

inline int &clamp_calls_ref() {
  static int calls = 0; // a linkonce_odr global with its guard
  return calls;
}

inline int clamp_max(int x) {
  static int max = 0;
  clamp_calls_ref()++;
  if (x > max) max = x;
  return max;
}

inline int clamp_calls() { return clamp_calls_ref(); }

int from_b(int x);
