/* A stack-based bytecode virtual machine.
 *
 * A small assembler turns text into bytecode; three interpreters run it:
 * a computed-goto loop dispatching through a static table of label
 * addresses (as Lua and CPython do), a direct-threaded one that first
 * rewrites each opcode into its label's address, and a plain switch loop.
 * All three must agree. Builtins are called through a table of function
 * pointers. `vm N` scales the work (the benchmark runs a large N).
 * Exit status: the low 7 bits of the combined checksum, plus 1 (never 0).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op {
    OP_HALT, OP_PUSH, OP_POP, OP_DUP, OP_SWAP, OP_OVER,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_NEG,
    OP_LT, OP_EQ, OP_NOT,
    OP_JMP, OP_JZ, OP_JNZ,
    OP_LOAD, OP_STORE,
    OP_CALL, OP_RET, OP_BUILTIN,
    OP_COUNT
};

static const char *op_names[OP_COUNT] = {
    "halt", "push", "pop", "dup", "swap", "over",
    "add", "sub", "mul", "div", "mod", "neg",
    "lt", "eq", "not",
    "jmp", "jz", "jnz",
    "load", "store",
    "call", "ret", "builtin",
};

static int op_has_arg(int op) {
    return op == OP_PUSH || op == OP_JMP || op == OP_JZ || op == OP_JNZ ||
           op == OP_LOAD || op == OP_STORE || op == OP_CALL || op == OP_BUILTIN;
}

#define MAX_CODE 1024
#define MAX_LABELS 64
#define STACK 256
#define FRAMES 64
#define NVARS 16

typedef struct {
    int64_t code[MAX_CODE];
    int len;
    char labels[MAX_LABELS][16];
    int label_pos[MAX_LABELS];
    int nlabels;
    char fix_name[MAX_LABELS * 4][16];
    int fix_pos[MAX_LABELS * 4];
    int nfix;
} program;

/* ---- builtins, called through a table ---- */
typedef int64_t (*builtin_fn)(int64_t);
static int64_t bi_square(int64_t x) { return x * x; }
static int64_t bi_abs(int64_t x) { return x < 0 ? -x : x; }
static int64_t bi_popcount(int64_t x) {
    int64_t n = 0;
    uint64_t u = (uint64_t)x;
    while (u) { n += u & 1; u >>= 1; }
    return n;
}
static int64_t bi_hash(int64_t x) {
    uint64_t h = (uint64_t)x * 0x9E3779B97F4A7C15ull;
    return (int64_t)(h >> 40);
}
static const builtin_fn builtins[] = { bi_square, bi_abs, bi_popcount, bi_hash };
static const char *builtin_names[] = { "square", "abs", "popcount", "hash" };

/* ---- assembler ---- */
static int find_label(program *p, const char *name) {
    for (int i = 0; i < p->nlabels; i++)
        if (strcmp(p->labels[i], name) == 0) return i;
    return -1;
}

static int assemble(program *p, const char *src) {
    memset(p, 0, sizeof *p);
    char tok[32];
    const char *s = src;
    while (*s) {
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == ';') s++;
        if (!*s) break;
        int n = 0;
        while (*s && *s != ' ' && *s != '\n' && *s != ';' && n < 31) tok[n++] = *s++;
        tok[n] = 0;
        if (tok[n - 1] == ':') {
            tok[n - 1] = 0;
            strcpy(p->labels[p->nlabels], tok);
            p->label_pos[p->nlabels++] = p->len;
            continue;
        }
        int op = -1;
        for (int i = 0; i < OP_COUNT; i++)
            if (strcmp(op_names[i], tok) == 0) op = i;
        if (op < 0) { printf("asm: unknown op '%s'\n", tok); return -1; }
        p->code[p->len++] = op;
        if (op_has_arg(op)) {
            while (*s == ' ') s++;
            n = 0;
            while (*s && *s != ' ' && *s != '\n' && *s != ';' && n < 31) tok[n++] = *s++;
            tok[n] = 0;
            if (op == OP_BUILTIN) {
                int b = -1;
                for (int i = 0; i < 4; i++)
                    if (strcmp(builtin_names[i], tok) == 0) b = i;
                p->code[p->len++] = b;
            } else if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-') {
                p->code[p->len++] = strtoll(tok, NULL, 10);
            } else {
                strcpy(p->fix_name[p->nfix], tok);
                p->fix_pos[p->nfix++] = p->len;
                p->code[p->len++] = 0;
            }
        }
    }
    for (int i = 0; i < p->nfix; i++) {
        int l = find_label(p, p->fix_name[i]);
        if (l < 0) { printf("asm: unknown label '%s'\n", p->fix_name[i]); return -1; }
        p->code[p->fix_pos[i]] = p->label_pos[l];
    }
    return 0;
}

typedef struct {
    int64_t result;
    long steps;
    int error;
} outcome;

/* ---- interpreter 1: computed goto through a static table ---- */
static outcome run_goto(const program *p, int64_t arg) {
    static void *const table[OP_COUNT] = {
        &&l_halt, &&l_push, &&l_pop, &&l_dup, &&l_swap, &&l_over,
        &&l_add, &&l_sub, &&l_mul, &&l_div, &&l_mod, &&l_neg,
        &&l_lt, &&l_eq, &&l_not,
        &&l_jmp, &&l_jz, &&l_jnz,
        &&l_load, &&l_store,
        &&l_call, &&l_ret, &&l_builtin,
    };
    int64_t stack[STACK];
    int64_t vars[FRAMES][NVARS];
    int rets[FRAMES];
    int sp = 0, fp = 0, pc = 0;
    long steps = 0;
    outcome o = {0, 0, 0};
    memset(vars, 0, sizeof vars);
    stack[sp++] = arg;
#define NEXT do { steps++; goto *table[p->code[pc++]]; } while (0)
    NEXT;
l_halt:
    o.result = sp > 0 ? stack[sp - 1] : 0;
    o.steps = steps;
    return o;
l_push: stack[sp++] = p->code[pc++]; NEXT;
l_pop: sp--; NEXT;
l_dup: stack[sp] = stack[sp - 1]; sp++; NEXT;
l_swap: { int64_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } NEXT;
l_over: stack[sp] = stack[sp - 2]; sp++; NEXT;
l_add: sp--; stack[sp - 1] += stack[sp]; NEXT;
l_sub: sp--; stack[sp - 1] -= stack[sp]; NEXT;
l_mul: sp--; stack[sp - 1] *= stack[sp]; NEXT;
l_div: sp--; if (!stack[sp]) { o.error = 1; o.steps = steps; return o; } stack[sp - 1] /= stack[sp]; NEXT;
l_mod: sp--; if (!stack[sp]) { o.error = 1; o.steps = steps; return o; } stack[sp - 1] %= stack[sp]; NEXT;
l_neg: stack[sp - 1] = -stack[sp - 1]; NEXT;
l_lt: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; NEXT;
l_eq: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; NEXT;
l_not: stack[sp - 1] = !stack[sp - 1]; NEXT;
l_jmp: pc = (int)p->code[pc]; NEXT;
l_jz: sp--; pc = stack[sp] ? pc + 1 : (int)p->code[pc]; NEXT;
l_jnz: sp--; pc = stack[sp] ? (int)p->code[pc] : pc + 1; NEXT;
l_load: stack[sp++] = vars[fp][p->code[pc++]]; NEXT;
l_store: vars[fp][p->code[pc++]] = stack[--sp]; NEXT;
l_call:
    if (fp + 1 >= FRAMES) { o.error = 2; o.steps = steps; return o; }
    rets[fp++] = pc + 1;
    memset(vars[fp], 0, sizeof vars[fp]);
    pc = (int)p->code[pc];
    NEXT;
l_ret: pc = rets[--fp]; NEXT;
l_builtin: stack[sp - 1] = builtins[p->code[pc++]](stack[sp - 1]); NEXT;
#undef NEXT
}

/* ---- interpreter 2: direct threading (labels written into the code) ---- */
static outcome run_threaded(const program *p, int64_t arg) {
    void *const table[OP_COUNT] = {
        &&t_halt, &&t_push, &&t_pop, &&t_dup, &&t_swap, &&t_over,
        &&t_add, &&t_sub, &&t_mul, &&t_div, &&t_mod, &&t_neg,
        &&t_lt, &&t_eq, &&t_not,
        &&t_jmp, &&t_jz, &&t_jnz,
        &&t_load, &&t_store,
        &&t_call, &&t_ret, &&t_builtin,
    };
    void **code = malloc(sizeof(void *) * (size_t)p->len);
    for (int i = 0; i < p->len; i++) {
        code[i] = table[p->code[i]];
        if (op_has_arg((int)p->code[i])) {
            code[i + 1] = (void *)(intptr_t)p->code[i + 1];
            i++;
        }
    }
    int64_t stack[STACK];
    int64_t vars[FRAMES][NVARS];
    void **rets[FRAMES];
    int sp = 0, fp = 0;
    void **ip = code;
    long steps = 0;
    outcome o = {0, 0, 0};
    memset(vars, 0, sizeof vars);
    stack[sp++] = arg;
#define ARG ((int64_t)(intptr_t)*ip)
#define NEXT do { steps++; goto **ip++; } while (0)
    NEXT;
t_halt:
    o.result = sp > 0 ? stack[sp - 1] : 0;
    o.steps = steps;
    free(code);
    return o;
t_push: stack[sp++] = ARG; ip++; NEXT;
t_pop: sp--; NEXT;
t_dup: stack[sp] = stack[sp - 1]; sp++; NEXT;
t_swap: { int64_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } NEXT;
t_over: stack[sp] = stack[sp - 2]; sp++; NEXT;
t_add: sp--; stack[sp - 1] += stack[sp]; NEXT;
t_sub: sp--; stack[sp - 1] -= stack[sp]; NEXT;
t_mul: sp--; stack[sp - 1] *= stack[sp]; NEXT;
t_div: sp--; if (!stack[sp]) { o.error = 1; goto t_fail; } stack[sp - 1] /= stack[sp]; NEXT;
t_mod: sp--; if (!stack[sp]) { o.error = 1; goto t_fail; } stack[sp - 1] %= stack[sp]; NEXT;
t_neg: stack[sp - 1] = -stack[sp - 1]; NEXT;
t_lt: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; NEXT;
t_eq: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; NEXT;
t_not: stack[sp - 1] = !stack[sp - 1]; NEXT;
t_jmp: ip = code + ARG; NEXT;
t_jz: sp--; ip = stack[sp] ? ip + 1 : code + ARG; NEXT;
t_jnz: sp--; ip = stack[sp] ? code + ARG : ip + 1; NEXT;
t_load: stack[sp++] = vars[fp][ARG]; ip++; NEXT;
t_store: vars[fp][ARG] = stack[--sp]; ip++; NEXT;
t_call:
    if (fp + 1 >= FRAMES) { o.error = 2; goto t_fail; }
    rets[fp++] = ip + 1;
    memset(vars[fp], 0, sizeof vars[fp]);
    ip = code + ARG;
    NEXT;
t_ret: ip = rets[--fp]; NEXT;
t_builtin: stack[sp - 1] = builtins[ARG](stack[sp - 1]); ip++; NEXT;
t_fail:
    o.steps = steps;
    free(code);
    return o;
#undef NEXT
#undef ARG
}

/* ---- interpreter 3: a switch loop, the reference ---- */
static outcome run_switch(const program *p, int64_t arg) {
    int64_t stack[STACK];
    int64_t vars[FRAMES][NVARS];
    int rets[FRAMES];
    int sp = 0, fp = 0, pc = 0;
    outcome o = {0, 0, 0};
    memset(vars, 0, sizeof vars);
    stack[sp++] = arg;
    for (;;) {
        o.steps++;
        int64_t op = p->code[pc++];
        switch (op) {
        case OP_HALT: o.result = sp > 0 ? stack[sp - 1] : 0; return o;
        case OP_PUSH: stack[sp++] = p->code[pc++]; break;
        case OP_POP: sp--; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_SWAP: { int64_t t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
        case OP_OVER: stack[sp] = stack[sp - 2]; sp++; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV: sp--; if (!stack[sp]) { o.error = 1; return o; } stack[sp - 1] /= stack[sp]; break;
        case OP_MOD: sp--; if (!stack[sp]) { o.error = 1; return o; } stack[sp - 1] %= stack[sp]; break;
        case OP_NEG: stack[sp - 1] = -stack[sp - 1]; break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case OP_NOT: stack[sp - 1] = !stack[sp - 1]; break;
        case OP_JMP: pc = (int)p->code[pc]; break;
        case OP_JZ: sp--; pc = stack[sp] ? pc + 1 : (int)p->code[pc]; break;
        case OP_JNZ: sp--; pc = stack[sp] ? (int)p->code[pc] : pc + 1; break;
        case OP_LOAD: stack[sp++] = vars[fp][p->code[pc++]]; break;
        case OP_STORE: vars[fp][p->code[pc++]] = stack[--sp]; break;
        case OP_CALL:
            if (fp + 1 >= FRAMES) { o.error = 2; return o; }
            rets[fp++] = pc + 1;
            memset(vars[fp], 0, sizeof vars[fp]);
            pc = (int)p->code[pc];
            break;
        case OP_RET: pc = rets[--fp]; break;
        case OP_BUILTIN: stack[sp - 1] = builtins[p->code[pc++]](stack[sp - 1]); break;
        default: o.error = 3; return o;
        }
    }
}

/* ---- the programs ---- */
static const char *const sources[] = {
    /* sum of i*i for i < n */
    "store 0; push 0; store 1;"
    "loop: load 1; load 0; lt; jz done;"
    "load 2; load 1; builtin square; add; store 2;"
    "load 1; push 1; add; store 1; jmp loop;"
    "done: load 2; halt",
    /* iterative fibonacci mod 1000003 */
    "store 0; push 0; store 1; push 1; store 2;"
    "loop: load 0; jz done; load 1; load 2; dup; store 1; add; push 1000003; mod; store 2;"
    "load 0; push 1; sub; store 0; jmp loop;"
    "done: load 1; halt",
    /* collatz steps summed over 1..n */
    "store 0; push 1; store 1; push 0; store 3;"
    "outer: load 1; load 0; lt; jz done; load 1; store 2;"
    "inner: load 2; push 1; eq; jnz next; load 2; push 2; mod; jz even;"
    "load 2; push 3; mul; push 1; add; store 2; load 3; push 1; add; store 3; jmp inner;"
    "even: load 2; push 2; div; store 2; load 3; push 1; add; store 3; jmp inner;"
    "next: load 1; push 1; add; store 1; jmp outer;"
    "done: load 3; halt",
    /* recursive gcd sum via calls: sum gcd(i, n) for i < n/4 */
    "store 0; push 1; store 1;"
    "loop: load 1; load 0; push 4; div; lt; jz done;"
    "load 1; load 0; call gcd; load 2; add; store 2;"
    "load 1; push 1; add; store 1; jmp loop;"
    "done: load 2; halt;"
    "gcd: store 1; store 0; load 1; jz base; load 1; load 0; load 1; mod; call gcd; ret;"
    "base: load 0; ret",
    /* hash chain with popcount and abs */
    "store 0; push 7; store 1;"
    "loop: load 0; jz done; load 1; builtin hash; load 0; sub; builtin abs; dup; store 1;"
    "builtin popcount; load 2; add; store 2; load 0; push 1; sub; store 0; jmp loop;"
    "done: load 2; load 1; push 1000; mod; add; halt",
    /* a division by zero the machine reports */
    "push 0; div; halt",
};
static const char *const names[] = {
    "sum-squares", "fibonacci", "collatz", "gcd-calls", "hash-chain", "div-zero",
};

int main(int argc, char **argv) {
    long scale = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
    if (scale < 1) scale = 1;
    uint64_t checksum = 0;
    program *p = malloc(sizeof *p);
    int nprog = (int)(sizeof sources / sizeof sources[0]);
    for (int i = 0; i < nprog; i++) {
        if (assemble(p, sources[i]) != 0) return 100;
        printf("%-12s %3d words:", names[i], p->len);
        for (int j = 0; j < p->len && j < 10; j++) printf(" %lld", (long long)p->code[j]);
        printf("%s\n", p->len > 10 ? " ..." : "");
        for (int n = 1; n <= 9; n += 4) {
            int64_t arg = (int64_t)n * 37 * scale;
            outcome a = run_goto(p, arg);
            outcome b = run_threaded(p, arg);
            outcome c = run_switch(p, arg);
            printf("  n=%-6lld goto=%lld/%ld/%d threaded=%lld/%ld/%d switch=%lld/%ld/%d\n",
                   (long long)arg, (long long)a.result, a.steps, a.error,
                   (long long)b.result, b.steps, b.error,
                   (long long)c.result, c.steps, c.error);
            if (a.result != c.result || b.result != c.result || a.error != c.error ||
                b.error != c.error || a.steps != c.steps || b.steps != c.steps) {
                printf("MISMATCH in %s\n", names[i]);
                return 101;
            }
            checksum = checksum * 31 + (uint64_t)c.result + (uint64_t)c.steps + (uint64_t)c.error;
        }
    }
    free(p);
    printf("checksum %llu\n", (unsigned long long)checksum);
    return (int)(checksum & 0x7f) + 1;
}
