/* A size-class allocator and an open-addressing hash table built on it.
 *
 * Exercises what compilers emit for systems code: an `ifunc` that picks
 * the hash function at load time, `alias`es and a weak default, the bit
 * builtins (clz/ctz/popcount/bswap/rotate), overflow-checked arithmetic,
 * `__atomic` operations, variable-length arrays (stacksave/stackrestore),
 * `switch` jump tables and 64-bit multiply-high through __int128.
 * `alloc N` scales the number of operations. Exit status: 0 when every
 * self-check holds, else the number of failed checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocator: power-of-two size classes carved from 64 KiB arenas ---- */
#define ARENA_SIZE (64 * 1024)
#define MIN_SHIFT 4
#define CLASSES 10 /* 16 B .. 8 KiB; larger blocks come from malloc */

typedef struct block { struct block *next; } block;

typedef struct {
    block *free_list[CLASSES];
    char *arena, *arena_end;
    char *arenas[256];
    int narenas;
    unsigned long allocs, frees, carved, large;
    unsigned long in_use[CLASSES];
} allocator;

static allocator heap;
static long atomic_live_bytes;

static int size_class(size_t n) {
    if (n <= (1u << MIN_SHIFT)) return 0;
    int bits = 64 - __builtin_clzll((unsigned long long)(n - 1));
    return bits - MIN_SHIFT;
}

static void *pool_alloc(size_t n) {
    int c = size_class(n);
    if (c >= CLASSES) {
        heap.large++;
        return malloc(n);
    }
    size_t size = (size_t)1 << (c + MIN_SHIFT);
    heap.allocs++;
    heap.in_use[c]++;
    __atomic_fetch_add(&atomic_live_bytes, (long)size, __ATOMIC_SEQ_CST);
    block *b = heap.free_list[c];
    if (b) {
        heap.free_list[c] = b->next;
        return b;
    }
    if (!heap.arena || heap.arena + size > heap.arena_end) {
        if (heap.narenas == 256) return NULL;
        heap.arena = aligned_alloc(64, ARENA_SIZE);
        heap.arena_end = heap.arena + ARENA_SIZE;
        heap.arenas[heap.narenas++] = heap.arena;
    }
    void *p = heap.arena;
    heap.arena += size;
    heap.carved += size;
    return p;
}

static void pool_free(void *p, size_t n) {
    if (!p) return;
    int c = size_class(n);
    if (c >= CLASSES) {
        heap.large--;
        free(p);
        return;
    }
    block *b = p;
    b->next = heap.free_list[c];
    heap.free_list[c] = b;
    heap.frees++;
    heap.in_use[c]--;
    __atomic_fetch_sub(&atomic_live_bytes, (long)((size_t)1 << (c + MIN_SHIFT)), __ATOMIC_SEQ_CST);
}

/* Public names are aliases of the pool functions. */
void *orc_alloc(size_t n) __attribute__((alias("pool_alloc_public")));
void orc_free(void *p, size_t n) __attribute__((alias("pool_free_public")));
void *pool_alloc_public(size_t n) { return pool_alloc(n); }
void pool_free_public(void *p, size_t n) { pool_free(p, n); }

/* ---- hash functions, one picked by an ifunc resolver ---- */
static uint64_t hash_fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}
static uint64_t hash_mix(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        unsigned __int128 m = (unsigned __int128)h * 0xff51afd7ed558ccdull;
        h = (uint64_t)m ^ (uint64_t)(m >> 64);
        h = (h << 23) | (h >> 41);
    }
    return __builtin_bswap64(h);
}
typedef uint64_t (*hash_fn)(const char *, size_t);
/* Resolvers run while the program is being relocated, before libc is
 * set up: they may read plain data but call nothing. */
static volatile int prefer_fnv;
static hash_fn pick_hash(void) { return prefer_fnv ? hash_fnv : hash_mix; }
uint64_t table_hash(const char *s, size_t n) __attribute__((ifunc("pick_hash")));

/* A weak hook a program may override; this one has none. */
__attribute__((weak)) void on_resize(size_t from, size_t to) {
    printf("  resize %zu -> %zu\n", from, to);
}

/* ---- open addressing with linear probing and tombstones ---- */
typedef struct {
    char *key;
    size_t len;
    long value;
    uint64_t hash;
    int state; /* 0 empty, 1 full, 2 deleted */
} slot;

typedef struct {
    slot *slots;
    size_t cap, count, tombstones;
    unsigned long probes;
} table;

static void table_init(table *t, size_t cap) {
    t->slots = orc_alloc(cap * sizeof(slot));
    memset(t->slots, 0, cap * sizeof(slot));
    t->cap = cap;
    t->count = t->tombstones = 0;
    t->probes = 0;
}

static slot *find_slot(table *t, const char *key, size_t len, uint64_t h, int for_insert) {
    size_t mask = t->cap - 1, i = h & mask;
    slot *grave = NULL;
    for (;;) {
        t->probes++;
        slot *s = &t->slots[i];
        switch (s->state) {
        case 0: return for_insert && grave ? grave : (for_insert ? s : NULL);
        case 2: if (!grave) grave = s; break;
        case 1:
            if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
            break;
        default: abort();
        }
        i = (i + 1) & mask;
    }
}

static void table_put(table *t, const char *key, long value);

static void grow(table *t) {
    table bigger;
    table_init(&bigger, t->cap * 2);
    on_resize(t->cap, bigger.cap);
    for (size_t i = 0; i < t->cap; i++) {
        slot *s = &t->slots[i];
        if (s->state != 1) continue;
        slot *d = find_slot(&bigger, s->key, s->len, s->hash, 1);
        *d = *s;
        bigger.count++;
    }
    bigger.probes += t->probes;
    orc_free(t->slots, t->cap * sizeof(slot));
    *t = bigger;
}

static void table_put(table *t, const char *key, long value) {
    if ((t->count + t->tombstones + 1) * 4 > t->cap * 3) grow(t);
    size_t len = strlen(key);
    uint64_t h = table_hash(key, len);
    slot *s = find_slot(t, key, len, h, 1);
    if (s->state == 1) {
        s->value = value;
        return;
    }
    if (s->state == 2) t->tombstones--;
    s->key = orc_alloc(len + 1);
    memcpy(s->key, key, len + 1);
    s->len = len;
    s->hash = h;
    s->value = value;
    s->state = 1;
    t->count++;
}

static int table_get(table *t, const char *key, long *out) {
    size_t len = strlen(key);
    slot *s = find_slot(t, key, len, table_hash(key, len), 0);
    if (!s) return 0;
    *out = s->value;
    return 1;
}

static int table_del(table *t, const char *key) {
    size_t len = strlen(key);
    slot *s = find_slot(t, key, len, table_hash(key, len), 0);
    if (!s) return 0;
    orc_free(s->key, s->len + 1);
    s->state = 2;
    t->count--;
    t->tombstones++;
    return 1;
}

static int failed;
static void check(int ok, const char *what) {
    if (!ok) {
        failed++;
        printf("CHECK FAILED: %s\n", what);
    }
}

/* Sums with overflow detection; saturates and counts what overflowed. */
static long checked_sum(const long *v, int n, int *overflows) {
    long acc = 0;
    for (int i = 0; i < n; i++) {
        long next;
        if (__builtin_add_overflow(acc, v[i], &next)) {
            (*overflows)++;
            acc = v[i] > 0 ? INT64_MAX : INT64_MIN;
        } else {
            acc = next;
        }
    }
    return acc;
}

/* A variable-length array per call: the stack grows and shrinks. */
static unsigned long histogram_digest(const table *t, int buckets) {
    unsigned long counts[buckets];
    memset(counts, 0, sizeof counts);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].state == 1) counts[t->slots[i].hash % (unsigned)buckets]++;
    unsigned long d = 0;
    for (int b = 0; b < buckets; b++) d = d * 131 + counts[b] * (unsigned long)__builtin_popcountll(counts[b] + 1);
    return d;
}

int main(int argc, char **argv) {
    long ops = argc > 1 ? atol(argv[1]) : 2000;
    printf("size classes: 1->%d 16->%d 17->%d 100->%d 4096->%d 4097->%d\n", size_class(1),
           size_class(16), size_class(17), size_class(100), size_class(4096), size_class(4097));
    printf("hash('orc') = %016llx, ctz=%d clz=%d\n", (unsigned long long)table_hash("orc", 3),
           __builtin_ctzll(table_hash("orc", 3) | 1ull << 63), __builtin_clzll(table_hash("orc", 3) | 1));

    table t;
    table_init(&t, 8);
    char key[32];
    for (long i = 0; i < ops; i++) {
        snprintf(key, sizeof key, "key-%ld", (i * 7919) % (ops / 2 + 1));
        long old;
        if (table_get(&t, key, &old)) table_put(&t, key, old + i);
        else table_put(&t, key, i);
        if (i % 3 == 0) {
            snprintf(key, sizeof key, "key-%ld", (i * 31) % (ops / 2 + 1));
            table_del(&t, key);
        }
        if (i % (ops / 8 + 1) == 0)
            printf("op %5ld: count=%zu cap=%zu tombstones=%zu probes=%lu live=%ld\n", i, t.count,
                   t.cap, t.tombstones,
                   t.probes, __atomic_load_n(&atomic_live_bytes, __ATOMIC_SEQ_CST));
    }
    long sum = 0, value;
    size_t seen = 0;
    for (long k = 0; k <= ops / 2; k++) {
        snprintf(key, sizeof key, "key-%ld", k);
        if (table_get(&t, key, &value)) {
            sum += value;
            seen++;
        }
    }
    printf("lookups: %zu found, values sum %ld\n", seen, sum);
    check(seen == t.count, "every counted key is found");

    long big[] = {INT64_MAX - 5, 3, 4, -10, INT64_MIN + 1, INT64_MIN + 2, -7, 42};
    int overflows = 0;
    long s = checked_sum(big, 8, &overflows);
    printf("checked sum: %ld with %d overflows\n", s, overflows);
    check(overflows == 3 && s == INT64_MIN + 42, "three overflows, saturated");

    for (int b = 3; b <= 17; b += 7) printf("histogram digest /%d: %lu\n", b, histogram_digest(&t, b));
    printf("allocator: %lu allocs, %lu frees, %lu bytes carved from %d arenas, %lu large\n",
           heap.allocs, heap.frees, heap.carved, heap.narenas, heap.large);
    for (int c = 0; c < CLASSES; c++)
        if (heap.in_use[c]) printf("  class %2d (%5u B): %lu in use\n", c, 1u << (c + MIN_SHIFT), heap.in_use[c]);
    long expected_live = 0;
    for (int c = 0; c < CLASSES; c++) expected_live += (long)heap.in_use[c] << (c + MIN_SHIFT);
    check(expected_live == __atomic_load_n(&atomic_live_bytes, __ATOMIC_SEQ_CST), "live bytes agree");
    long exchanged = __atomic_exchange_n(&atomic_live_bytes, 0, __ATOMIC_SEQ_CST);
    long expect = 0;
    int swapped = __atomic_compare_exchange_n(&atomic_live_bytes, &expect, 7, 0, __ATOMIC_SEQ_CST,
                                              __ATOMIC_SEQ_CST);
    printf("atomics: exchanged %ld, cas %d -> %ld\n", exchanged, swapped, atomic_live_bytes);
    orc_free(t.slots, t.cap * sizeof(slot));
    check(heap.large == 0, "large blocks freed");
    for (int i = 0; i < heap.narenas; i++) free(heap.arenas[i]);
    printf("failed checks: %d\n", failed);
    return failed;
}
