// Constructors and destructors with priorities, mixed with atexit handlers
// registered from constructors and from main, and exit() from a nested
// call or from a constructor (with CTORS_EXIT set): the order must be the
// native one.
#include <stdio.h>
#include <stdlib.h>

static int step = 0;
static void say(const char *what) { printf("%2d %s\n", ++step, what); }

static void handler_from_ctor(void) { say("atexit handler registered by ctor 200"); }
static void handler_from_main(void) { say("atexit handler registered by main"); }

__attribute__((constructor(300))) static void c300(void) {
  say("ctor 300");
  if (getenv("CTORS_EXIT")) {
    say("exit from a constructor");
    fflush(stdout);
    exit(5);
  }
}
__attribute__((constructor(101))) static void c101(void) { say("ctor 101"); }
__attribute__((constructor)) static void cdefault(void) { say("ctor default"); }
__attribute__((constructor(200))) static void c200(void) {
  say("ctor 200");
  atexit(handler_from_ctor);
}
__attribute__((destructor(101))) static void d101(void) { say("dtor 101"); }
__attribute__((destructor(300))) static void d300(void) { say("dtor 300"); }
__attribute__((destructor)) static void ddefault(void) { say("dtor default"); }

__attribute__((noinline)) static void finish(int code) {
  say("exit from a nested call");
  fflush(stdout);
  exit(code);
}

int main(int argc, char **argv) {
  say("main");
  atexit(handler_from_main);
  if (argc > 1) finish(atoi(argv[1]));
  return 3;
}
