/* Constructors with priorities, a destructor, an atexit handler,
   and hand-written .ctors/.dtors arrays. */
#include <stdlib.h>

void log_event(int);

__attribute__((constructor(200))) static void c200(void) { log_event(200); }
__attribute__((constructor(101))) static void c101(void) { log_event(101); }
__attribute__((constructor)) static void cdefault(void) { log_event(300); }
__attribute__((destructor)) static void ddefault(void) { log_event(-300); }

static void on_exit_handler(void) { log_event(-400); }
__attribute__((constructor)) static void register_handler(void) { atexit(on_exit_handler); }

static void ctor1(void) { log_event(1001); }
static void ctor2(void) { log_event(1002); }
static void dtor1(void) { log_event(-1001); }
static void dtor2(void) { log_event(-1002); }
/* crt runs .ctors last to first and .dtors first to last. */
__attribute__((section(".ctors"), used)) static void (*ctors_list[])(void) = {ctor1, ctor2};
__attribute__((section(".dtors"), used)) static void (*dtors_list[])(void) = {dtor1, dtor2};
