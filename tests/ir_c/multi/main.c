/* The multi-file program's driver. Exit status: 42 when all checks pass. */
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

int ctors_ok(void);
const char *last_logged(void);

static int helper(int x) { return -x; }

static void bye(void) {
    printf("atexit: %ld events, %d shapes\n", events, shapes_made);
}

int main(void) {
    struct list l = {0, 0};
    struct shape shapes[6];
    int i, failures = 0;
    double total_area = 0.0;
    char label[12];

    atexit(bye);
    if (!ctors_ok()) {
        printf("constructors did not run in order\n");
        failures++;
    }
    log_event(1, "start");
    for (i = 0; i < 50; i++) {
        snprintf(label, sizeof label, "item%d", i);
        list_push(&l, (i * 37) % 101, label);
    }
    printf("list len %zu, checksum %d\n", l.len, list_checksum(&l));
    list_reverse(&l);
    printf("reversed checksum %d\n", list_checksum(&l));
    list_sort(&l);
    printf("sorted: first %d (%s), last key found: %s\n", l.head->key, l.head->label,
           list_find(&l, 100) ? list_find(&l, 100)->label : "none");
    for (i = 0; l.head && i < 5; i++) {
        struct item *it = l.head;
        l.head = it->next;
        l.len--;
        printf("pop %d %s\n", it->key, it->label);
        free(it);
    }
    printf("freed %zu\n", list_free(&l));

    shapes[0] = make_circle(1.5);
    shapes[1] = make_rect(2.0, 3.5);
    shapes[2] = make_triangle(4.0, 3.0);
    shapes[3] = make_circle(0.25);
    shapes[4] = make_rect(1.0, 1.0);
    shapes[5] = make_triangle(1.0, 10.0);
    for (i = 0; i < 6; i++) {
        shapes[i].ops->scale(&shapes[i], 1.0 + i * 0.1);
        total_area += shapes[i].ops->area(&shapes[i]);
        printf("%-8s area %.6f perimeter %.6f\n", shapes[i].ops->kind, shapes[i].ops->area(&shapes[i]),
               shapes[i].ops->perimeter(&shapes[i]));
    }
    printf("total area %.6f\n", total_area);

    printf("ids %d %d %d\n", next_id(), next_id(), next_id());
    printf("hash(orc) = %u, clamp %d %d, helper %d\n", hash_string("orc"), clamp_int(-5, 0, 9),
           clamp_int(50, 0, 9), helper(7));
    printf("tuned %d, total(20) %d\n", tuned_value(), compute_total(20));
    if (tuned_value() != 42) failures++;
    log_event(7, "done");
    printf("last logged: %s, level name %s\n", last_logged(), level_names[2]);
    return failures ? 1 : 42;
}
