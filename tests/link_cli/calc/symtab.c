/* Variables: names to slots through the hash map, values in an array. */
#include <stdlib.h>
#include <string.h>

#include "calc.h"

struct Symtab {
    HashMap *slots;
    double *values;
    char **names;
    int count, cap;
};

Symtab *symtab_new(void) {
    Symtab *st = calloc(1, sizeof *st);
    st->slots = hashmap_new(4);
    return st;
}

void symtab_free(Symtab *st) {
    hashmap_free(st->slots);
    for (int i = 0; i < st->count; i++)
        free(st->names[i]);
    free(st->names);
    free(st->values);
    free(st);
}

int symtab_slot(Symtab *st, const char *name, int create) {
    long slot;
    if (hashmap_get(st->slots, name, &slot))
        return (int)slot;
    if (!create)
        return -1;
    if (st->count == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 8;
        st->values = realloc(st->values, sizeof(double) * (size_t)st->cap);
        st->names = realloc(st->names, sizeof(char *) * (size_t)st->cap);
    }
    st->values[st->count] = 0.0;
    st->names[st->count] = strdup(name);
    hashmap_put(st->slots, name, st->count);
    return st->count++;
}

double symtab_get(const Symtab *st, int slot) { return st->values[slot]; }
void symtab_set(Symtab *st, int slot, double v) { st->values[slot] = v; }
int symtab_count(const Symtab *st) { return st->count; }
const char *symtab_name(const Symtab *st, int slot) { return st->names[slot]; }
