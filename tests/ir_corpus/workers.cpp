// A work-stealing-free thread pool computing word statistics and primes.
//
// Each worker keeps thread_local state: plain counters (initialized
// statically), a thread_local object with a constructor and destructor
// (initialized on first use through the TLS wrapper) and a thread_local
// cache. Results are gathered under a mutex and printed in a fixed order
// after join, so the output is deterministic. Exceptions thrown in a
// worker cross to main through std::exception_ptr and are rethrown there.
// Global objects with constructors and init_priority set up the tables.
// A bounded queue with condition variables counts its operations in
// static thread_local members; consumers tally in a function-local
// thread_local. `workers N` scales the work. Exit status 0.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<int> tls_objects_made{0};
std::atomic<int> tls_objects_destroyed{0};

struct Journal {
    std::vector<std::string> lines;
    Journal() { lines.push_back("journal constructed"); }
};
Journal journal __attribute__((init_priority(110)));

struct Alphabet {
    int rank[256];
    Alphabet() {
        for (int i = 0; i < 256; i++) rank[i] = -1;
        for (int i = 0; i < 26; i++) rank['a' + i] = rank['A' + i] = i;
        journal.lines.push_back("alphabet constructed");
    }
};
Alphabet alphabet __attribute__((init_priority(120)));

struct Primes {
    std::vector<int> small;
    Primes() {
        for (int n = 2; small.size() < 64; n++) {
            bool prime = true;
            for (int p : small)
                if (n % p == 0) { prime = false; break; }
            if (prime) small.push_back(n);
        }
        journal.lines.push_back("primes constructed: " + std::to_string(small.size()));
    }
};
Primes primes;  // default priority: after the two above

// Per-thread state.
thread_local int words_seen = 0;
thread_local long letters_seen = 0;
thread_local int worker_id = -1;

struct Scratch {
    std::map<std::string, int> counts;
    int id;
    Scratch() : id(++tls_objects_made) {}
    ~Scratch() { ++tls_objects_destroyed; }
};
thread_local Scratch scratch;

thread_local std::vector<int> prime_cache;

bool is_prime(long n) {
    if (n < 2) return false;
    for (int p : primes.small) {
        if ((long)p * p > n) return true;
        if (n % p == 0) return n == p;
    }
    // Primes this thread already found (ascending): a repeated query is a lookup.
    if (std::binary_search(prime_cache.begin(), prime_cache.end(), (int)n)) return true;
    for (long d = primes.small.back() + 2; d * d <= n; d += 2)
        if (n % d == 0) return false;
    return true;
}

struct Result {
    int worker;
    int words;
    long letters;
    std::string top;
    int top_count;
    long primes_found;
    long prime_sum;
    bool scratch_fresh;
};

std::mutex results_lock;
std::vector<Result> results;

const char *const texts[] = {
    "the quick brown fox jumps over the lazy dog the end",
    "a stitch in time saves nine and nine is a square in time",
    "to be or not to be that is the question to ask",
    "all work and no play makes jack a dull boy all day all night",
};

void count_words(const char *text) {
    std::string word;
    for (const char *p = text;; p++) {
        if (*p && alphabet.rank[(unsigned char)*p] >= 0) {
            word += *p;
            letters_seen++;
        } else {
            if (!word.empty()) {
                scratch.counts[word]++;
                words_seen++;
                word.clear();
            }
            if (!*p) break;
        }
    }
}

void worker(int id, long lo, long hi, std::exception_ptr *error) {
    try {
        worker_id = id;
        bool fresh = scratch.counts.empty() && words_seen == 0;
        count_words(texts[id % 4]);
        count_words(texts[(id + 1) % 4]);
        long found = 0, sum = 0;
        for (long n = lo; n < hi; n++) {
            if (is_prime(n)) {
                found++;
                sum += n;
                if (prime_cache.size() < 256 && n > primes.small.back() &&
                    (prime_cache.empty() || prime_cache.back() < n))
                    prime_cache.push_back((int)n);
            }
        }
        if (id == 3) throw std::runtime_error("worker 3 refuses range " + std::to_string(lo));
        std::string top;
        int best = 0;
        for (auto &kv : scratch.counts)
            if (kv.second > best) { best = kv.second; top = kv.first; }
        std::lock_guard<std::mutex> g(results_lock);
        results.push_back({worker_id, words_seen, letters_seen, top, best, found, sum, fresh});
    } catch (...) {
        *error = std::current_exception();
    }
}


// ---- a bounded queue: producers and consumers with condition variables ----
class Queue {
  public:
    explicit Queue(size_t cap) : cap_(cap) {}
    void push(long v) {
        std::unique_lock<std::mutex> l(m_);
        not_full_.wait(l, [&] { return items_.size() < cap_; });
        items_.push_back(v);
        pushes++;
        not_empty_.notify_one();
    }
    // Returns false once the queue is closed and drained.
    bool pop(long &v) {
        std::unique_lock<std::mutex> l(m_);
        not_empty_.wait(l, [&] { return !items_.empty() || closed_; });
        if (items_.empty()) return false;
        v = items_.front();
        items_.pop_front();
        pops++;
        not_full_.notify_one();
        return true;
    }
    void close() {
        std::lock_guard<std::mutex> l(m_);
        closed_ = true;
        not_empty_.notify_all();
    }
    // Per-thread counts of this class's operations: a static thread_local
    // member.
    static thread_local long pushes;
    static thread_local long pops;

  private:
    std::mutex m_;
    std::condition_variable not_full_, not_empty_;
    std::deque<long> items_;
    size_t cap_;
    bool closed_ = false;
};
thread_local long Queue::pushes = 0;
thread_local long Queue::pops = 0;

// A function-local thread_local with a constructor: one per thread that
// calls it, built on its first call there.
struct Tally {
    long sum = 0, count = 0;
    Tally() { ++tls_objects_made; }
    ~Tally() { ++tls_objects_destroyed; }
};
Tally &tally() {
    thread_local Tally t;
    return t;
}

struct QueueReport {
    long produced_sum = 0, consumed_sum = 0, consumed_count = 0;
    long pushes_seen = 0, pops_seen = 0;
};

QueueReport run_queue(int producers, int consumers, long per_producer) {
    Queue q(8);
    QueueReport rep;
    std::mutex rep_lock;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; p++)
        threads.emplace_back([&, p] {
            long sum = 0;
            for (long i = 0; i < per_producer; i++) {
                long v = (p + 1) * 1000003L + i * i % 9973;
                q.push(v);
                sum += v;
            }
            std::lock_guard<std::mutex> g(rep_lock);
            rep.produced_sum += sum;
            rep.pushes_seen += Queue::pushes;
        });
    std::vector<std::thread> eaters;
    for (int c = 0; c < consumers; c++)
        eaters.emplace_back([&] {
            long v;
            while (q.pop(v)) {
                tally().sum += v;
                tally().count++;
            }
            std::lock_guard<std::mutex> g(rep_lock);
            rep.consumed_sum += tally().sum;
            rep.consumed_count += tally().count;
            rep.pops_seen += Queue::pops;
        });
    for (auto &t : threads) t.join();
    q.close();
    for (auto &t : eaters) t.join();
    return rep;
}

}  // namespace

int main(int argc, char **argv) {
    for (auto &l : journal.lines) std::printf("init: %s\n", l.c_str());
    long span = argc > 1 ? std::atol(argv[1]) : 20000;
    // The main thread has its own copies.
    worker_id = 99;
    count_words("main thread words only");
    std::printf("main: words=%d letters=%ld scratch=%zu entries\n", words_seen, letters_seen,
                scratch.counts.size());

    const int nthreads = 5;
    for (int round = 0; round < 2; round++) {
        std::vector<std::thread> pool;
        std::vector<std::exception_ptr> errors(nthreads);
        for (int i = 0; i < nthreads; i++)
            pool.emplace_back(worker, i, span * i + round * 7, span * (i + 1), &errors[i]);
        for (auto &t : pool) t.join();
        std::sort(results.begin(), results.end(),
                  [](const Result &a, const Result &b) { return a.worker < b.worker; });
        std::printf("round %d:\n", round);
        for (auto &r : results)
            std::printf("  worker %d: words=%d letters=%ld top='%s'x%d primes=%ld sum=%ld fresh=%d\n",
                        r.worker, r.words, r.letters, r.top.c_str(), r.top_count, r.primes_found,
                        r.prime_sum, r.scratch_fresh);
        for (int i = 0; i < nthreads; i++) {
            if (!errors[i]) continue;
            try {
                std::rethrow_exception(errors[i]);
            } catch (const std::runtime_error &e) {
                std::printf("  worker %d failed: %s\n", i, e.what());
            }
        }
        results.clear();
    }
    long per = span / 50 + 10;
    QueueReport qr = run_queue(3, 2, per);
    std::printf("queue: produced %ld, consumed %ld in %ld pops (%ld expected); pushes %ld, pops %ld\n",
                qr.produced_sum, qr.consumed_sum, qr.consumed_count, 3 * per, qr.pushes_seen,
                qr.pops_seen);
    std::printf("queue balanced: %d; main pushed %ld, popped %ld\n",
                qr.produced_sum == qr.consumed_sum && qr.consumed_count == 3 * per &&
                    qr.pushes_seen == 3 * per && qr.pops_seen == 3 * per,
                Queue::pushes, Queue::pops);
    // Main's thread_local values were untouched by the workers.
    std::printf("main again: id=%d words=%d letters=%ld\n", worker_id, words_seen, letters_seen);
    std::printf("tls objects: made=%d destroyed=%d\n", tls_objects_made.load(),
                tls_objects_destroyed.load());
    return tls_objects_made.load() == 13 && tls_objects_destroyed.load() == 12 ? 0 : 1;
}
