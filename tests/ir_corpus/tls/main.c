/* Thread-local storage from threads: initialized (.tdata) and zeroed
 * (.tbss) variables, a struct and an array, a pointer to a thread's own
 * copy handed to another thread, variables of another file (counters.c)
 * and threads started before and after main first touches them. Every
 * thread's results are printed by main, in order, after it joined. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__thread int hits = 1000;               /* .tdata */
__thread long total;                    /* .tbss */
static __thread char tag[24] = "main";  /* .tdata, static */
static __thread struct {
    int n;
    double scale;
    short hist[16];
} stats = {3, 1.5, {1}};
static __thread unsigned rng;           /* .tbss, static */

extern __thread long shared_sum;        /* counters.c */
extern __thread int shared_calls;
long counters_add(long v);
int counters_calls(void);

static int rounds = 1;

static unsigned next(void) {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) & 0xffff;
}

struct job {
    int id;
    pthread_barrier_t *start;
    int *peer;            /* another thread's `hits` */
    char out[256];
};

static void work(struct job *j) {
    rng = (unsigned)j->id * 7919u + 1;
    snprintf(tag, sizeof tag, "worker-%d", j->id);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 100; i++) {
            unsigned v = next();
            hits++;
            total += v % 97;
            stats.hist[v % 16]++;
            counters_add(v % 13);
        }
        stats.n += j->id;
        stats.scale *= 1.25;
    }
    long h = 0;
    for (int i = 0; i < 16; i++) h = h * 31 + stats.hist[i];
    snprintf(j->out, sizeof j->out,
             "%s hits=%d total=%ld n=%d scale=%.4f hist=%ld sum=%ld calls=%d/%d",
             tag, hits, total, stats.n, stats.scale, h, shared_sum,
             shared_calls, counters_calls());
}

static void *thread_main(void *p) {
    struct job *j = p;
    pthread_barrier_wait(j->start);
    work(j);
    /* Another thread's copy, through a pointer: main's, untouched by it. */
    if (j->peer) *j->peer += 1;
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 1;
    if (rounds < 1) rounds = 1;
    enum { EARLY = 3, LATE = 3 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, EARLY + 1);
    struct job jobs[EARLY + LATE];
    pthread_t threads[EARLY + LATE];
    /* Started before main touches any thread-local. */
    for (int i = 0; i < EARLY; i++) {
        jobs[i] = (struct job){.id = i + 1, .start = &start, .peer = NULL};
        pthread_create(&threads[i], NULL, thread_main, &jobs[i]);
    }
    printf("main first: hits=%d total=%ld tag=%s n=%d\n", hits, total, tag, stats.n);
    hits += 5;
    pthread_barrier_wait(&start);
    for (int i = 0; i < EARLY; i++) pthread_join(threads[i], NULL);
    /* Started after. */
    pthread_barrier_t late;
    pthread_barrier_init(&late, NULL, 1);
    for (int i = EARLY; i < EARLY + LATE; i++) {
        jobs[i] = (struct job){.id = i + 1, .start = &late, .peer = &hits};
        pthread_create(&threads[i], NULL, thread_main, &jobs[i]);
        pthread_join(threads[i], NULL);
    }
    for (int i = 0; i < EARLY + LATE; i++) puts(jobs[i].out);
    /* Main's own copies, untouched by the workers. */
    for (int i = 0; i < 8; i++) printf("main add %d -> %ld\n", i * 3, counters_add(i * 3));
    printf("main last: hits=%d total=%ld tag=%s sum=%ld calls=%d\n", hits, total, tag,
           shared_sum, shared_calls);
    return hits % 64;
}
