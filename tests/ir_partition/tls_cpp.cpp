// C++ thread_local: dynamic initialization (a constructor), destruction at
// thread exit, initialized and zeroed variables, a template's inline
// (linkonce_odr, comdat) thread_local, accessed from threads created before
// and after the main thread first touches them.
#include <cstdio>
#include <pthread.h>

struct Tracer {
  int id;
  int uses = 0;
  explicit Tracer(int id) : id(id) { std::printf("construct %d\n", id); }
  ~Tracer() { std::printf("destroy %d after %d uses\n", id, uses); }
};

static int next_id = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int take_id() {
  pthread_mutex_lock(&lock);
  int id = ++next_id;
  pthread_mutex_unlock(&lock);
  return id;
}

thread_local Tracer tracer(take_id());
thread_local int initialized = 42;
thread_local long zeroed;
static thread_local double scaled = 1.5;

template <typename T> struct Counter {
  static thread_local T value;
};
template <typename T> thread_local T Counter<T>::value = T(7);

static void work(int n) {
  for (int i = 0; i < n; i++) {
    tracer.uses++;
    initialized += i;
    zeroed += 2;
    scaled *= 2;
    Counter<int>::value += 1;
  }
}

static void *thread_main(void *arg) {
  int n = (int)(long)arg;
  tracer.uses++; // constructs this thread's tracer (takes the lock)
  pthread_mutex_lock(&lock);
  work(n);
  std::printf("thread n=%d: initialized=%d zeroed=%ld scaled=%g counter=%d\n", n,
              initialized, zeroed, scaled, Counter<int>::value);
  pthread_mutex_unlock(&lock);
  return nullptr;
}

int main() {
  pthread_t early;
  pthread_create(&early, nullptr, thread_main, (void *)3);
  pthread_join(early, nullptr);
  work(2);
  std::printf("main: initialized=%d zeroed=%ld scaled=%g counter=%d\n", initialized,
              zeroed, scaled, Counter<int>::value);
  pthread_t late[2];
  for (long i = 0; i < 2; i++) {
    pthread_create(&late[i], nullptr, thread_main, (void *)(i + 4));
    pthread_join(late[i], nullptr);
  }
  std::printf("main again: initialized=%d uses=%d\n", initialized, tracer.uses);
  return initialized - 42;
}
