// Code that first runs while the program ends: a global's destructor, an
// atexit handler and a thread_local's destructor (at each thread's exit,
// and at the main thread's) call functions nothing called before, which a
// lazy JIT has not compiled yet; a std::map destroyed at exit.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <pthread.h>
#include <string>

__attribute__((noinline)) static int checksum(const std::string &s) {
  int h = 7;
  for (char c : s) h = h * 31 + c;
  return h & 0xffff;
}

__attribute__((noinline)) static void report_global(const char *what, int n) {
  std::printf("global %s destroyed with %d entries\n", what, n);
}

__attribute__((noinline)) static void report_thread(int id, int uses) {
  std::printf("thread object %d destroyed after %d uses\n", id, uses);
}

__attribute__((noinline)) static void goodbye(void) {
  std::printf("atexit: checksum %d\n", checksum("goodbye"));
}

struct Registry {
  std::map<std::string, int> names;
  ~Registry() { report_global("registry", (int)names.size()); }
};

static Registry registry;
static std::map<int, std::string> numbers;

struct PerThread {
  int id = 0;
  int uses = 0;
  ~PerThread() { report_thread(id, uses); }
};

thread_local PerThread per_thread;

static void *worker(void *arg) {
  per_thread.id = (int)(long)arg;
  per_thread.uses += 3;
  return nullptr;
}

int main() {
  std::atexit(goodbye);
  registry.names["alpha"] = 1;
  registry.names["beta"] = 2;
  numbers[1] = "one";
  per_thread.id = 100;
  per_thread.uses = 1;
  for (long i = 1; i <= 2; i++) {
    pthread_t t;
    pthread_create(&t, nullptr, worker, (void *)i);
    pthread_join(t, nullptr);
  }
  std::printf("main returns\n");
  return 0;
}
