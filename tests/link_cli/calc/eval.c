/* The tree-walking evaluator. Returns 0, or 1 on a runtime error. */
#include <math.h>
#include <stdio.h>

#include "calc.h"

typedef struct {
    Symtab *st;
    StrBuf *out;
    int failed;
    long steps;
} Eval;

static double expr(Eval *e, const Node *n) {
    if (e->failed)
        return 0;
    if (++e->steps > calc_config.max_steps) {
        calc_error("eval", "step limit");
        e->failed = 1;
        return 0;
    }
    switch (n->kind) {
    case N_NUM:
        return n->num;
    case N_VAR: {
        int slot = symtab_slot(e->st, n->name, 0);
        if (slot < 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "unknown variable %s", n->name);
            calc_error("eval", msg);
            e->failed = 1;
            return 0;
        }
        return symtab_get(e->st, slot);
    }
    case N_NEG:
        return -expr(e, n->a);
    case N_BIN: {
        double a = expr(e, n->a), b = expr(e, n->b);
        switch (n->op) {
        case T_PLUS: return a + b;
        case T_MINUS: return a - b;
        case T_STAR: return a * b;
        case T_SLASH:
            if (b == 0) {
                calc_error("eval", "division by zero");
                e->failed = 1;
                return 0;
            }
            return a / b;
        case T_PERCENT: return b == 0 ? 0 : fmod(a, b);
        case T_LT: return a < b;
        case T_GT: return a > b;
        case T_EQEQ: return a == b;
        default: return 0;
        }
    }
    case N_CALL: {
        const Builtin *b = builtin_find(n->name);
        if (!b || b->arity != n->n_args) {
            calc_error("eval", b ? "wrong arity" : "unknown function");
            e->failed = 1;
            return 0;
        }
        double args[8];
        for (int i = 0; i < n->n_args; i++)
            args[i] = expr(e, n->args[i]);
        return b->fn(args);
    }
    default:
        return 0;
    }
}

static void stmt(Eval *e, const Node *n) {
    if (!n || e->failed)
        return;
    switch (n->kind) {
    case N_LET:
        symtab_set(e->st, symtab_slot(e->st, n->name, 1), expr(e, n->a));
        break;
    case N_PRINT:
        format_number(e->out, expr(e, n->a));
        strbuf_putc(e->out, '\n');
        break;
    case N_WHILE:
        while (!e->failed && expr(e, n->a) != 0)
            stmt(e, n->b);
        break;
    case N_IF:
        if (expr(e, n->a) != 0)
            stmt(e, n->b);
        else
            stmt(e, n->c);
        break;
    case N_SEQ:
        for (int i = 0; i < n->n_args; i++)
            stmt(e, n->args[i]);
        break;
    default:
        expr(e, n);
    }
}

int eval_program(const Node *prog, Symtab *st, StrBuf *out) {
    Eval e = {st, out, 0, 0};
    stmt(&e, prog);
    return e.failed;
}
