/* An open-addressing hash map from strings to longs (FNV-1a, linear
 * probing, doubling at 3/4 load). */
#include <stdlib.h>
#include <string.h>

#include "calc.h"

typedef struct {
    char *key;
    long value;
} Slot;

struct HashMap {
    Slot *slots;
    size_t cap, len;
};

static const uint32_t FNV_OFFSET = 2166136261u;
static const uint32_t FNV_PRIME = 16777619u;

uint32_t hash_string(const char *s) {
    uint32_t h = FNV_OFFSET;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return h;
}

HashMap *hashmap_new(size_t initial) {
    HashMap *m = malloc(sizeof *m);
    size_t cap = 8;
    while (cap < initial)
        cap *= 2;
    m->slots = calloc(cap, sizeof(Slot));
    m->cap = cap;
    m->len = 0;
    return m;
}

void hashmap_free(HashMap *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static Slot *find(Slot *slots, size_t cap, const char *key) {
    size_t i = hash_string(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void grow(HashMap *m) {
    size_t cap = m->cap * 2;
    Slot *slots = calloc(cap, sizeof(Slot));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key)
            *find(slots, cap, m->slots[i].key) = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

int hashmap_get(const HashMap *m, const char *key, long *out) {
    Slot *s = find(m->slots, m->cap, key);
    if (!s->key)
        return 0;
    *out = s->value;
    return 1;
}

void hashmap_put(HashMap *m, const char *key, long value) {
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    Slot *s = find(m->slots, m->cap, key);
    if (!s->key) {
        s->key = strdup(key);
        m->len++;
    }
    s->value = value;
}

size_t hashmap_len(const HashMap *m) { return m->len; }
