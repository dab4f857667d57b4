/* Shared declarations of the multi-file program (joined with llvm-link). */
#ifndef COMMON_H
#define COMMON_H
#include <stddef.h>

/* list.c */
struct item {
    int key;
    char label[12];
    struct item *next;
};
struct list {
    struct item *head;
    size_t len;
};
void list_push(struct list *l, int key, const char *label);
struct item *list_find(const struct list *l, int key);
void list_reverse(struct list *l);
void list_sort(struct list *l);
size_t list_free(struct list *l);
int list_checksum(const struct list *l);

/* shapes.c */
struct shape;
struct shape_ops {
    const char *kind;
    double (*area)(const struct shape *);
    double (*perimeter)(const struct shape *);
    void (*scale)(struct shape *, double);
};
struct shape {
    const struct shape_ops *ops;
    double a, b;
};
struct shape make_circle(double r);
struct shape make_rect(double w, double h);
struct shape make_triangle(double base, double height);
extern int shapes_made;

/* util.c */
extern long events;
extern const char *const level_names[];
void log_event(int level, const char *what);
unsigned hash_string(const char *s);
int next_id(void);
int clamp_int(int x, int lo, int hi);
int tuned_value(void);
int compute_total(int n); /* an alias of sum_to in util.c */
#endif
