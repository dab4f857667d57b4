/* A bump allocator: AST nodes and names live until the arena is freed. */
#include <stdlib.h>
#include <string.h>

#include "calc.h"

typedef struct Block {
    struct Block *next;
    size_t used, size;
    unsigned char data[];
} Block;

struct Arena {
    Block *head;
    size_t total;
};

enum { BLOCK_SIZE = 4096 };

Arena *arena_new(void) { return calloc(1, sizeof(Arena)); }

void *arena_alloc(Arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->size) {
        size_t size = n > BLOCK_SIZE ? n : BLOCK_SIZE;
        Block *b = malloc(sizeof(Block) + size);
        b->next = a->head;
        b->used = 0;
        b->size = size;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t arena_used(const Arena *a) { return a->total; }

void arena_free(Arena *a) {
    Block *b = a->head;
    while (b) {
        Block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
