/* A growable array of doubles. */
#include <stdlib.h>

#include "calc.h"

void vec_push(Vec *v, double x) {
    if (v->len == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->items = realloc(v->items, sizeof(double) * v->cap);
    }
    v->items[v->len++] = x;
}

void vec_free(Vec *v) {
    free(v->items);
    v->items = NULL;
    v->len = v->cap = 0;
}
