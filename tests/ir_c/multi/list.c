/* Singly linked lists: push, find, reverse, merge sort, free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

/* Same name as helpers in the other files: local to each after linking. */
static int helper(int x) { return x * 3 + 1; }

static int pushes;

void list_push(struct list *l, int key, const char *label) {
    struct item *it = malloc(sizeof *it);
    it->key = key;
    snprintf(it->label, sizeof it->label, "%s", label);
    it->next = l->head;
    l->head = it;
    l->len++;
    pushes++;
    events += helper(0) - 1 + 1;
}

struct item *list_find(const struct list *l, int key) {
    struct item *it;
    for (it = l->head; it; it = it->next)
        if (it->key == key) return it;
    return NULL;
}

void list_reverse(struct list *l) {
    struct item *prev = NULL, *cur = l->head;
    while (cur) {
        struct item *next = cur->next;
        cur->next = prev;
        prev = cur;
        cur = next;
    }
    l->head = prev;
}

static struct item *merge(struct item *a, struct item *b) {
    struct item head, *tail = &head;
    while (a && b) {
        if (a->key <= b->key) {
            tail->next = a;
            a = a->next;
        } else {
            tail->next = b;
            b = b->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

static struct item *sort_items(struct item *h, size_t n) {
    struct item *mid, *rest;
    size_t i;
    if (n < 2) return h;
    mid = h;
    for (i = 1; i < n / 2; i++) mid = mid->next;
    rest = mid->next;
    mid->next = NULL;
    return merge(sort_items(h, n / 2), sort_items(rest, n - n / 2));
}

void list_sort(struct list *l) { l->head = sort_items(l->head, l->len); }

size_t list_free(struct list *l) {
    size_t n = 0;
    while (l->head) {
        struct item *next = l->head->next;
        free(l->head);
        l->head = next;
        n++;
    }
    l->len = 0;
    return n;
}

int list_checksum(const struct list *l) {
    int h = 17;
    const struct item *it;
    for (it = l->head; it; it = it->next) h = helper(h) ^ it->key ^ (int)hash_string(it->label);
    return h & 0x7fffffff;
}

__attribute__((destructor)) static void list_report(void) {
    printf("list.c destructor: %d pushes\n", pushes);
}
