// Computed goto: two interpreters with static jump tables of label
// addresses (`blockaddress`), one table exported through a pointer that
// other functions read, and a label address kept in a local variable.
#include <stdio.h>
#include <string.h>

enum { PUSH, ADD, MUL, DUP, SWAP, PRINT, JNZ, DEC, HALT };

static long stack[64];

long run(const unsigned char *code) {
  static void *table[] = {&&op_push, &&op_add, &&op_mul, &&op_dup, &&op_swap,
                          &&op_print, &&op_jnz, &&op_dec, &&op_halt};
  long *sp = stack;
  const unsigned char *pc = code;
#define NEXT goto *table[*pc++]
  NEXT;
op_push: *sp++ = *pc++; NEXT;
op_add: sp--; sp[-1] += sp[0]; NEXT;
op_mul: sp--; sp[-1] *= sp[0]; NEXT;
op_dup: sp[0] = sp[-1]; sp++; NEXT;
op_swap: { long t = sp[-1]; sp[-1] = sp[-2]; sp[-2] = t; } NEXT;
op_print: printf("%ld\n", sp[-1]); NEXT;
op_jnz: { unsigned char target = *pc++; if (sp[-1]) pc = code + target; } NEXT;
op_dec: sp[-1]--; NEXT;
op_halt: return sp[-1];
#undef NEXT
}

// A second interpreter, whose table another function exposes.
static const void *const *exported_table;

static int count_words(const char *s) {
  static const void *const classes[] = {&&space, &&letter, &&end};
  if (!s) {
    exported_table = classes;
    return -1;
  }
  int words = 0, in_word = 0;
  void *next;
  for (;;) {
    unsigned char c = (unsigned char)*s++;
    next = (void *)classes[c == 0 ? 2 : (c == ' ' ? 0 : 1)];
    goto *next;
  space:
    in_word = 0;
    continue;
  letter:
    if (!in_word) words++;
    in_word = 1;
    continue;
  end:
    return words;
  }
}

static int table_entries_differ(void) {
  return exported_table[0] != exported_table[1] && exported_table[1] != exported_table[2];
}

int main(int argc, char **argv) {
  const unsigned char prog[] = {PUSH, 6, PUSH, 7, MUL, PRINT, PUSH, 3, DEC, PRINT, JNZ, 8,
                                ADD, PRINT, HALT};
  long r = run(prog);
  printf("run: %ld\n", r);
  printf("words: %d\n", count_words("computed  goto in a lazy   jit"));
  count_words(NULL);
  printf("distinct labels: %d\n", table_entries_differ());
  return (int)(r % 256) + argc - 1;
}
