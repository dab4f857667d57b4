/* Hash maps: an open-addressing string map (FNV-1a, linear probing,
 * tombstones, resizing) counting words of a generated text, and a chained
 * integer map with a custom allocator pool. Exercises: structs, pointers
 * to pointers, malloc/calloc/free, string functions, qsort over the
 * entries, static state, a destructor and an atexit handler printing
 * totals after main returns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

/* ---- deterministic text ---- */
static uint32_t rng_state = 12345u;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static const char *const syllables[] = {
    "ka", "lo", "mi", "ne", "ru", "to", "shi", "va", "zen", "qua", "bo", "ir",
};
#define N_SYLL (sizeof syllables / sizeof syllables[0])

static void make_word(char *out) {
    int n = 1 + (int)(rng() % 3), i;
    out[0] = 0;
    for (i = 0; i < n; i++) {
        /* Skewed choice: low syllables are more frequent. */
        uint32_t r = rng() % 100;
        unsigned s = r < 40 ? r % 3 : r < 70 ? 3 + r % 4 : 7 + r % 5;
        strcat(out, syllables[s % N_SYLL]);
    }
}

/* ---- open addressing string map ---- */
struct entry {
    char *key; /* NULL: empty; TOMBSTONE: deleted */
    long value;
};

static char tombstone_marker;
#define TOMBSTONE (&tombstone_marker)

struct strmap {
    struct entry *slots;
    size_t cap, len, tombstones;
    size_t probes, resizes;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static void sm_init(struct strmap *m, size_t cap) {
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->len = m->tombstones = m->probes = m->resizes = 0;
}

static struct entry *sm_find_slot(struct strmap *m, const char *key, int for_insert) {
    size_t i = (size_t)(fnv1a(key) & (m->cap - 1));
    struct entry *first_tomb = NULL;
    for (;;) {
        struct entry *e = &m->slots[i];
        m->probes++;
        if (e->key == NULL) return for_insert && first_tomb ? first_tomb : e;
        if (e->key == TOMBSTONE) {
            if (!first_tomb) first_tomb = e;
        } else if (strcmp(e->key, key) == 0) {
            return e;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

static void sm_resize(struct strmap *m, size_t cap) {
    struct entry *old = m->slots;
    size_t old_cap = m->cap, i;
    sm_init(m, cap);
    m->resizes++;
    for (i = 0; i < old_cap; i++) {
        if (old[i].key && old[i].key != TOMBSTONE) {
            struct entry *e = sm_find_slot(m, old[i].key, 1);
            *e = old[i];
            m->len++;
        }
    }
    free(old);
}

static long *sm_upsert(struct strmap *m, const char *key) {
    struct entry *e;
    if ((m->len + m->tombstones + 1) * 4 > m->cap * 3) {
        size_t probes = m->probes, resizes = m->resizes;
        sm_resize(m, m->cap * 2);
        m->probes += probes;
        m->resizes += resizes;
    }
    e = sm_find_slot(m, key, 1);
    if (e->key == NULL || e->key == TOMBSTONE) {
        if (e->key == TOMBSTONE) m->tombstones--;
        e->key = strdup(key);
        e->value = 0;
        m->len++;
    }
    return &e->value;
}

static long sm_get(struct strmap *m, const char *key, long dflt) {
    struct entry *e = sm_find_slot(m, key, 0);
    return e->key && e->key != TOMBSTONE ? e->value : dflt;
}

static int sm_remove(struct strmap *m, const char *key) {
    struct entry *e = sm_find_slot(m, key, 0);
    if (!e->key || e->key == TOMBSTONE) return 0;
    free(e->key);
    e->key = TOMBSTONE;
    m->len--;
    m->tombstones++;
    return 1;
}

static void sm_free(struct strmap *m) {
    size_t i;
    for (i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE) free(m->slots[i].key);
    free(m->slots);
}

static int by_count_then_key(const void *a, const void *b) {
    const struct entry *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* ---- chained integer map with a node pool ---- */
struct node {
    long key, value;
    struct node *next;
};

struct pool {
    struct node *blocks[64];
    int n_blocks, used_in_last;
    struct node *free_list;
    long allocated;
};

#define BLOCK 256
static struct pool node_pool;

static struct node *node_alloc(void) {
    struct node *n;
    if (node_pool.free_list) {
        n = node_pool.free_list;
        node_pool.free_list = n->next;
        return n;
    }
    if (node_pool.n_blocks == 0 || node_pool.used_in_last == BLOCK) {
        node_pool.blocks[node_pool.n_blocks++] = malloc(BLOCK * sizeof(struct node));
        node_pool.used_in_last = 0;
    }
    node_pool.allocated++;
    return &node_pool.blocks[node_pool.n_blocks - 1][node_pool.used_in_last++];
}

static void node_free(struct node *n) {
    n->next = node_pool.free_list;
    node_pool.free_list = n;
}

struct intmap {
    struct node **buckets;
    size_t n_buckets, len;
};

static size_t mix(long k) {
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static void im_put(struct intmap *m, long key, long value) {
    size_t b = mix(key) % m->n_buckets;
    struct node *n;
    for (n = m->buckets[b]; n; n = n->next)
        if (n->key == key) {
            n->value = value;
            return;
        }
    n = node_alloc();
    n->key = key;
    n->value = value;
    n->next = m->buckets[b];
    m->buckets[b] = n;
    m->len++;
}

static int im_get(const struct intmap *m, long key, long *out) {
    const struct node *n;
    for (n = m->buckets[mix(key) % m->n_buckets]; n; n = n->next)
        if (n->key == key) {
            *out = n->value;
            return 1;
        }
    return 0;
}

static int im_del(struct intmap *m, long key) {
    struct node **p = &m->buckets[mix(key) % m->n_buckets];
    while (*p) {
        if ((*p)->key == key) {
            struct node *dead = *p;
            *p = dead->next;
            node_free(dead);
            m->len--;
            return 1;
        }
        p = &(*p)->next;
    }
    return 0;
}

static size_t longest_chain(const struct intmap *m) {
    size_t best = 0, i;
    for (i = 0; i < m->n_buckets; i++) {
        size_t n = 0;
        const struct node *x;
        for (x = m->buckets[i]; x; x = x->next) n++;
        if (n > best) best = n;
    }
    return best;
}

static long total_words;

static void report_at_exit(void) {
    printf("atexit: %ld words counted, %ld pool nodes\n", total_words, node_pool.allocated);
}

__attribute__((destructor)) static void goodbye(void) {
    printf("destructor: pool had %d blocks\n", node_pool.n_blocks);
}

int main(void) {
    struct strmap words;
    struct intmap squares;
    struct entry *sorted;
    char buf[64];
    size_t i, n;
    long v, sum = 0;
    int k;

    atexit(report_at_exit);
    sm_init(&words, 8);
    for (k = 0; k < 20000; k++) {
        make_word(buf);
        (*sm_upsert(&words, buf))++;
        total_words++;
    }
    printf("distinct words: %zu (cap %zu, %zu resizes)\n", words.len, words.cap, words.resizes);
    printf("count(ka)=%ld count(kaka)=%ld count(nothing)=%ld\n", sm_get(&words, "ka", 0),
           sm_get(&words, "kaka", 0), sm_get(&words, "nothing", -1));

    sorted = malloc(words.len * sizeof *sorted);
    for (i = n = 0; i < words.cap; i++)
        if (words.slots[i].key && words.slots[i].key != TOMBSTONE) sorted[n++] = words.slots[i];
    qsort(sorted, n, sizeof *sorted, by_count_then_key);
    printf("top words:\n");
    for (i = 0; i < 12 && i < n; i++) printf("  %-12s %5ld\n", sorted[i].key, sorted[i].value);
    printf("rarest: %s (%ld)\n", sorted[n - 1].key, sorted[n - 1].value);
    free(sorted);

    /* Remove every word with an odd count, then reinsert some. */
    {
        size_t removed = 0;
        for (i = 0; i < words.cap; i++) {
            struct entry *e = &words.slots[i];
            if (e->key && e->key != TOMBSTONE && (e->value & 1)) {
                char key[64];
                strcpy(key, e->key);
                removed += (size_t)sm_remove(&words, key);
            }
        }
        printf("removed %zu, left %zu, tombstones %zu\n", removed, words.len, words.tombstones);
        for (k = 0; k < 500; k++) {
            make_word(buf);
            (*sm_upsert(&words, buf)) += 2;
        }
        printf("after reinsert: %zu words, %zu tombstones\n", words.len, words.tombstones);
    }
    printf("probes: %zu\n", words.probes);
    sm_free(&words);

    squares.n_buckets = 97;
    squares.len = 0;
    squares.buckets = calloc(squares.n_buckets, sizeof *squares.buckets);
    for (k = -3000; k < 3000; k += 3) im_put(&squares, k, (long)k * k);
    for (k = -3000; k < 3000; k += 6) im_del(&squares, k);
    for (k = -3000; k < 3000; k++)
        if (im_get(&squares, k, &v)) sum += v % 1000;
    printf("intmap: %zu entries, longest chain %zu, sum %ld\n", squares.len, longest_chain(&squares), sum);
    for (k = 0; k < 1000; k++) im_put(&squares, k * 7919L, k);
    printf("intmap: %zu entries, longest chain %zu, pool %ld nodes\n", squares.len,
           longest_chain(&squares), node_pool.allocated);
    free(squares.buckets);
    return 0;
}
