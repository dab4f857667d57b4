// C thread-locals: an exported initialized __thread variable, a static
// zero-initialized one, a thread-local array and struct, a pointer to
// another thread's copy, accessed from threads created before and after
// main first touches them.
#include <pthread.h>
#include <stdio.h>

__thread int counter = 5;
static __thread int hidden_counter;
static __thread long history[8];
static __thread struct {
  char tag;
  double weight;
} record = {'r', 0.5};

__attribute__((noinline)) static int *counter_address(void) { return &counter; }

static void bump(int by) {
  counter += by;
  hidden_counter++;
  history[hidden_counter % 8] = counter;
  record.weight *= 2;
}

static void *work(void *arg) {
  int by = (int)(long)arg;
  for (int i = 0; i < by; i++) bump(i + 1);
  printf("thread %d: counter %d hidden %d history[1] %ld record %c %g\n", by, counter,
         hidden_counter, history[1], record.tag, record.weight);
  return counter_address();
}

int main(void) {
  pthread_t t;
  void *their_counter;
  pthread_create(&t, 0, work, (void *)3);
  pthread_join(t, &their_counter);
  work((void *)2);
  int mine_differs = their_counter != (void *)counter_address();
  for (long i = 4; i < 6; i++) {
    pthread_create(&t, 0, work, (void *)i);
    pthread_join(t, 0);
  }
  printf("main: counter %d hidden %d, threads have their own copy: %d\n", counter,
         hidden_counter, mine_differs);
  return counter;
}
