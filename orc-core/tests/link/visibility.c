/* Hidden, protected and internal visibility, weak definitions. */
__attribute__((visibility("hidden"))) int hidden_fn(void) { return 1; }
__attribute__((visibility("protected"))) int protected_fn(void) { return 2; }
__attribute__((visibility("internal"))) int internal_fn(void) { return 3; }
__attribute__((weak)) int weak_fn(void) { return 4; }
extern int weak_missing(void) __attribute__((weak));
int vis_sum(void) { return hidden_fn() + protected_fn() + internal_fn() + weak_fn() + (weak_missing ? 100 : 0); }
