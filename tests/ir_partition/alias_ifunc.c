// Aliases of functions and of variables, and an ifunc whose resolver picks
// an implementation at load time.
#include <stdio.h>

int counter = 10;
extern int counter_alias __attribute__((alias("counter")));
static int table[4] = {1, 2, 3, 4};
extern int table_alias[4] __attribute__((alias("table")));

int add(int a, int b) { return a + b; }
int plus(int a, int b) __attribute__((alias("add")));
static int twice(int x) { return 2 * x; }
static int doubled(int x) __attribute__((alias("twice")));

static int impl_generic(int x) { return x + 100; }
static int impl_fast(int x) { return x + 1000; }
static int use_fast = 1;
static int (*resolve_pick(void))(int) { return use_fast ? impl_fast : impl_generic; }
int pick(int x) __attribute__((ifunc("resolve_pick")));

int main(void) {
  counter_alias += 5;
  table_alias[2] = 30;
  int (*fp)(int, int) = plus;
  printf("counter %d %d\n", counter, counter_alias);
  printf("table %d %d\n", table[2], table_alias[3]);
  printf("add %d plus %d same %d\n", add(2, 3), fp(4, 5), fp == plus);
  printf("doubled %d twice %d\n", doubled(21), twice(4));
  int (*p)(int) = pick;
  printf("pick %d via pointer %d\n", pick(1), p(2));
  return counter - 15;
}
