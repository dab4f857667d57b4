// A computed-goto interpreter in an inline function: both files define it
// and its static jump table (linkonce_odr, each in a COMDAT group).
inline int step(const unsigned char *code) {
  static void *ops[] = {&&inc, &&twice, &&stop};
  int acc = 1;
  goto *ops[*code++];
inc:
  acc++;
  goto *ops[*code++];
twice:
  acc *= 2;
  goto *ops[*code++];
stop:
  return acc;
}

int run_other(void);
