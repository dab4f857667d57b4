/* A small stack-machine interpreter: a tokenizer and recursive-descent
 * compiler for a tiny language into bytecode, run by a switch dispatch loop.
 * Exercises: switch jump tables, recursion, function-pointer tables, static
 * constructors, globals with initializers, malloc/realloc, printf.
 * Exit status: the sum of all results modulo 251. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

enum op {
    OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
    OP_LT, OP_EQ, OP_NOT, OP_JMP, OP_JZ, OP_PRINT, OP_CALLB, OP_POP,
    OP_DUP, OP_NEG, OP_HALT, N_OPS
};

static const char *const op_names[N_OPS] = {
    "push", "load", "store", "add", "sub", "mul", "div", "mod",
    "lt", "eq", "not", "jmp", "jz", "print", "callb", "pop",
    "dup", "neg", "halt",
};

typedef long (*builtin_fn)(long);

static long b_square(long x) { return x * x; }
static long b_abs(long x) { return x < 0 ? -x : x; }
static long b_collatz(long x) {
    long steps = 0;
    while (x > 1) {
        x = (x % 2) ? 3 * x + 1 : x / 2;
        steps++;
    }
    return steps;
}
static long b_popcount(long x) {
    long n = 0;
    unsigned long u = (unsigned long)x;
    while (u) {
        n += (long)(u & 1);
        u >>= 1;
    }
    return n;
}

struct builtin {
    const char *name;
    builtin_fn fn;
};

/* A table of function pointers in the data: the data unit refers to code. */
static struct builtin builtins[] = {
    {"square", b_square},
    {"abs", b_abs},
    {"collatz", b_collatz},
    {"popcount", b_popcount},
};
#define N_BUILTINS (sizeof builtins / sizeof builtins[0])

static long op_counts[N_OPS];
static int ctor_ran;

__attribute__((constructor)) static void init_counts(void) {
    memset(op_counts, 0, sizeof op_counts);
    ctor_ran = 1;
}

/* ---- bytecode buffer ---- */
struct code {
    long *words;
    int len, cap;
};

static void emit(struct code *c, long w) {
    if (c->len == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->words = realloc(c->words, (size_t)c->cap * sizeof(long));
    }
    c->words[c->len++] = w;
}

/* ---- tokenizer ---- */
enum tok { T_NUM, T_ID, T_OP, T_EOF };
struct lexer {
    const char *p;
    enum tok kind;
    long num;
    char text[32];
};

static void next(struct lexer *lx) {
    while (isspace((unsigned char)*lx->p)) lx->p++;
    if (!*lx->p) { lx->kind = T_EOF; return; }
    if (isdigit((unsigned char)*lx->p)) {
        lx->num = strtol(lx->p, (char **)&lx->p, 10);
        lx->kind = T_NUM;
        return;
    }
    if (isalpha((unsigned char)*lx->p)) {
        int n = 0;
        while (isalnum((unsigned char)*lx->p) && n < 31) lx->text[n++] = *lx->p++;
        lx->text[n] = 0;
        lx->kind = T_ID;
        return;
    }
    lx->text[0] = *lx->p++;
    lx->text[1] = 0;
    if ((lx->text[0] == '=' || lx->text[0] == '<') && *lx->p == '=') {
        lx->text[1] = *lx->p++;
        lx->text[2] = 0;
    }
    lx->kind = T_OP;
}

static int is_op(struct lexer *lx, const char *s) {
    return lx->kind == T_OP && strcmp(lx->text, s) == 0;
}
static int is_kw(struct lexer *lx, const char *s) {
    return lx->kind == T_ID && strcmp(lx->text, s) == 0;
}

static void expect(struct lexer *lx, const char *s) {
    if (!is_op(lx, s) && !is_kw(lx, s)) {
        printf("syntax error: expected '%s' near '%s'\n", s, lx->text);
        exit(2);
    }
    next(lx);
}

/* variables are single letters a..z */
static int var_slot(const char *name) { return name[0] - 'a'; }

static void expr(struct lexer *lx, struct code *c);

static void primary(struct lexer *lx, struct code *c) {
    if (lx->kind == T_NUM) {
        emit(c, OP_PUSH);
        emit(c, lx->num);
        next(lx);
    } else if (is_op(lx, "(")) {
        next(lx);
        expr(lx, c);
        expect(lx, ")");
    } else if (is_op(lx, "-")) {
        next(lx);
        primary(lx, c);
        emit(c, OP_NEG);
    } else if (is_op(lx, "!")) {
        next(lx);
        primary(lx, c);
        emit(c, OP_NOT);
    } else if (lx->kind == T_ID) {
        char name[32];
        strcpy(name, lx->text);
        next(lx);
        if (is_op(lx, "(")) {
            unsigned i;
            next(lx);
            expr(lx, c);
            expect(lx, ")");
            for (i = 0; i < N_BUILTINS; i++)
                if (strcmp(builtins[i].name, name) == 0) break;
            if (i == N_BUILTINS) {
                printf("unknown builtin %s\n", name);
                exit(3);
            }
            emit(c, OP_CALLB);
            emit(c, (long)i);
        } else {
            emit(c, OP_LOAD);
            emit(c, var_slot(name));
        }
    } else {
        printf("syntax error near '%s'\n", lx->text);
        exit(2);
    }
}

static void term(struct lexer *lx, struct code *c) {
    primary(lx, c);
    for (;;) {
        int op;
        if (is_op(lx, "*")) op = OP_MUL;
        else if (is_op(lx, "/")) op = OP_DIV;
        else if (is_op(lx, "%")) op = OP_MOD;
        else return;
        next(lx);
        primary(lx, c);
        emit(c, op);
    }
}

static void sum(struct lexer *lx, struct code *c) {
    term(lx, c);
    for (;;) {
        int op;
        if (is_op(lx, "+")) op = OP_ADD;
        else if (is_op(lx, "-")) op = OP_SUB;
        else return;
        next(lx);
        term(lx, c);
        emit(c, op);
    }
}

static void expr(struct lexer *lx, struct code *c) {
    sum(lx, c);
    if (is_op(lx, "<")) {
        next(lx);
        sum(lx, c);
        emit(c, OP_LT);
    } else if (is_op(lx, "==")) {
        next(lx);
        sum(lx, c);
        emit(c, OP_EQ);
    }
}

/* statement: x = e; | print e; | while e do stmts end | if e then stmts [else stmts] end */
static void stmts(struct lexer *lx, struct code *c);

static void stmt(struct lexer *lx, struct code *c) {
    if (is_kw(lx, "print")) {
        next(lx);
        expr(lx, c);
        emit(c, OP_PRINT);
        expect(lx, ";");
    } else if (is_kw(lx, "while")) {
        int top, patch;
        next(lx);
        top = c->len;
        expr(lx, c);
        emit(c, OP_JZ);
        patch = c->len;
        emit(c, 0);
        expect(lx, "do");
        stmts(lx, c);
        expect(lx, "end");
        emit(c, OP_JMP);
        emit(c, top);
        c->words[patch] = c->len;
    } else if (is_kw(lx, "if")) {
        int patch_else, patch_end;
        next(lx);
        expr(lx, c);
        emit(c, OP_JZ);
        patch_else = c->len;
        emit(c, 0);
        expect(lx, "then");
        stmts(lx, c);
        if (is_kw(lx, "else")) {
            next(lx);
            emit(c, OP_JMP);
            patch_end = c->len;
            emit(c, 0);
            c->words[patch_else] = c->len;
            stmts(lx, c);
            c->words[patch_end] = c->len;
        } else {
            c->words[patch_else] = c->len;
        }
        expect(lx, "end");
    } else if (lx->kind == T_ID) {
        int slot = var_slot(lx->text);
        next(lx);
        expect(lx, "=");
        expr(lx, c);
        emit(c, OP_STORE);
        emit(c, slot);
        expect(lx, ";");
    } else {
        printf("bad statement near '%s'\n", lx->text);
        exit(2);
    }
}

static void stmts(struct lexer *lx, struct code *c) {
    while (lx->kind != T_EOF && !is_kw(lx, "end") && !is_kw(lx, "else")) stmt(lx, c);
}

/* ---- the dispatch loop ---- */
static long run(const struct code *c, long *acc) {
    long stack[256];
    long vars[26] = {0};
    int sp = 0, pc = 0;
    long printed = 0;
    for (;;) {
        long op = c->words[pc++];
        op_counts[op]++;
        switch (op) {
        case OP_PUSH: stack[sp++] = c->words[pc++]; break;
        case OP_LOAD: stack[sp++] = vars[c->words[pc++]]; break;
        case OP_STORE: vars[c->words[pc++]] = stack[--sp]; break;
        case OP_ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case OP_SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case OP_MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case OP_DIV: sp--; stack[sp - 1] = stack[sp] ? stack[sp - 1] / stack[sp] : 0; break;
        case OP_MOD: sp--; stack[sp - 1] = stack[sp] ? stack[sp - 1] % stack[sp] : 0; break;
        case OP_LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case OP_EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case OP_NOT: stack[sp - 1] = !stack[sp - 1]; break;
        case OP_NEG: stack[sp - 1] = -stack[sp - 1]; break;
        case OP_JMP: pc = (int)c->words[pc]; break;
        case OP_JZ: if (stack[--sp] == 0) pc = (int)c->words[pc]; else pc++; break;
        case OP_PRINT:
            printf("  %ld\n", stack[--sp]);
            *acc += stack[sp];
            printed++;
            break;
        case OP_CALLB: stack[sp - 1] = builtins[c->words[pc++]].fn(stack[sp - 1]); break;
        case OP_POP: sp--; break;
        case OP_DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case OP_HALT: return printed;
        default:
            printf("bad opcode %ld at %d\n", op, pc - 1);
            exit(4);
        }
    }
}

static void disassemble(const struct code *c, int limit) {
    int pc = 0;
    while (pc < c->len && limit-- > 0) {
        long op = c->words[pc];
        switch (op) {
        case OP_PUSH: case OP_LOAD: case OP_STORE: case OP_JMP: case OP_JZ: case OP_CALLB:
            printf("    %3d %-6s %ld\n", pc, op_names[op], c->words[pc + 1]);
            pc += 2;
            break;
        default:
            printf("    %3d %s\n", pc, op_names[op]);
            pc += 1;
        }
    }
}

static const char *programs[] = {
    "a = 0; b = 1; n = 0; while n < 30 do print a; t = a + b; a = b; b = t; n = n + 1; end",
    "n = 2; c = 0; while n < 200 do d = 2; p = 1; while d * d < n + 1 do if n % d == 0 then p = 0; end d = d + 1; end if p then c = c + 1; print n; end n = n + 1; end print c;",
    "x = 1071; y = 462; while !(y == 0) do t = x % y; x = y; y = t; end print x;",
    "i = 1; s = 0; while i < 28 do s = s + collatz(i); i = i + 1; end print s; print square(-12) + abs(-7); print popcount(255 * 257);",
    "i = 0; while i < 10 do if i % 3 == 0 then print i * 100; else if i % 3 == 1 then print -i; else print square(i); end end i = i + 1; end",
};

int main(void) {
    long acc = 0, printed = 0;
    unsigned i;
    int op;
    if (!ctor_ran) {
        printf("constructor did not run\n");
        return 99;
    }
    for (i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        struct code c = {0};
        struct lexer lx;
        lx.p = programs[i];
        next(&lx);
        stmts(&lx, &c);
        emit(&c, OP_HALT);
        printf("program %u (%d words):\n", i, c.len);
        disassemble(&c, 6);
        printed += run(&c, &acc);
        free(c.words);
    }
    printf("printed %ld values, sum %ld\n", printed, acc);
    for (op = 0; op < N_OPS; op++)
        if (op_counts[op]) printf("%-6s %ld\n", op_names[op], op_counts[op]);
    return (int)(acc % 251);
}
