/* Compiles the AST to stack bytecode: 1-byte opcodes, 2-byte operands. */
#include <stdlib.h>

#include "calc.h"

typedef struct {
    Chunk *ch;
    Symtab *st;
    int failed;
} Compiler;

static void emit(Chunk *ch, uint8_t b) {
    if (ch->len == ch->cap) {
        ch->cap = ch->cap ? ch->cap * 2 : 64;
        ch->code = realloc(ch->code, (size_t)ch->cap);
    }
    ch->code[ch->len++] = b;
}

static void emit16(Chunk *ch, int v) {
    emit(ch, (uint8_t)(v & 0xff));
    emit(ch, (uint8_t)((v >> 8) & 0xff));
}

static void patch16(Chunk *ch, int at, int v) {
    ch->code[at] = (uint8_t)(v & 0xff);
    ch->code[at + 1] = (uint8_t)((v >> 8) & 0xff);
}

static int add_const(Chunk *ch, double v) {
    for (int i = 0; i < ch->n_consts; i++) {
        if (ch->consts[i] == v)
            return i;
    }
    if (ch->n_consts == ch->cap_consts) {
        ch->cap_consts = ch->cap_consts ? ch->cap_consts * 2 : 16;
        ch->consts = realloc(ch->consts, sizeof(double) * (size_t)ch->cap_consts);
    }
    ch->consts[ch->n_consts] = v;
    return ch->n_consts++;
}

static const Opcode binary_ops[T_COUNT] = {
    [T_PLUS] = OP_ADD, [T_MINUS] = OP_SUB, [T_STAR] = OP_MUL, [T_SLASH] = OP_DIV,
    [T_PERCENT] = OP_MOD, [T_LT] = OP_LT, [T_GT] = OP_GT, [T_EQEQ] = OP_EQ,
};

static void node(Compiler *c, const Node *n) {
    Chunk *ch = c->ch;
    if (!n || c->failed)
        return;
    switch (n->kind) {
    case N_NUM:
        emit(ch, OP_CONST);
        emit16(ch, add_const(ch, n->num));
        break;
    case N_VAR: {
        /* Unknown variables get a slot; the VM reports the read. */
        int slot = symtab_slot(c->st, n->name, 1);
        emit(ch, OP_LOAD);
        emit16(ch, slot);
        break;
    }
    case N_NEG:
        node(c, n->a);
        emit(ch, OP_NEG);
        break;
    case N_BIN:
        node(c, n->a);
        node(c, n->b);
        emit(ch, (uint8_t)binary_ops[n->op]);
        break;
    case N_CALL: {
        for (int i = 0; i < n->n_args; i++)
            node(c, n->args[i]);
        emit(ch, OP_CALL);
        emit(ch, (uint8_t)(builtin_index(n->name) & 0xff));
        emit(ch, (uint8_t)n->n_args);
        break;
    }
    case N_LET:
        node(c, n->a);
        emit(ch, OP_STORE);
        emit16(ch, symtab_slot(c->st, n->name, 1));
        break;
    case N_PRINT:
        node(c, n->a);
        emit(ch, OP_PRINT);
        break;
    case N_WHILE: {
        int top = ch->len;
        node(c, n->a);
        emit(ch, OP_JZ);
        int exit_at = ch->len;
        emit16(ch, 0);
        node(c, n->b);
        emit(ch, OP_JMP);
        emit16(ch, top);
        patch16(ch, exit_at, ch->len);
        break;
    }
    case N_IF: {
        node(c, n->a);
        emit(ch, OP_JZ);
        int else_at = ch->len;
        emit16(ch, 0);
        node(c, n->b);
        emit(ch, OP_JMP);
        int end_at = ch->len;
        emit16(ch, 0);
        patch16(ch, else_at, ch->len);
        node(c, n->c);
        patch16(ch, end_at, ch->len);
        break;
    }
    case N_SEQ:
        for (int i = 0; i < n->n_args; i++)
            node(c, n->args[i]);
        break;
    }
}

int compile_program(const Node *prog, Symtab *st, Chunk *ch) {
    Compiler c = {ch, st, 0};
    node(&c, prog);
    emit(ch, OP_HALT);
    return c.failed;
}

void chunk_free(Chunk *ch) {
    free(ch->code);
    free(ch->consts);
    ch->code = NULL;
    ch->consts = NULL;
    ch->len = ch->cap = ch->n_consts = ch->cap_consts = 0;
}
