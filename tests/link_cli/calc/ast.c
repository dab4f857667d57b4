/* AST nodes (arena-allocated), printing in prefix form, counting. */
#include "calc.h"

Node *node_new(Arena *ar, NodeKind k) {
    Node *n = arena_alloc(ar, sizeof(Node));
    n->kind = k;
    return n;
}

static const char *op_text(int op) {
    switch (op) {
    case T_PLUS: return "+";
    case T_MINUS: return "-";
    case T_STAR: return "*";
    case T_SLASH: return "/";
    case T_PERCENT: return "%";
    case T_LT: return "<";
    case T_GT: return ">";
    case T_EQEQ: return "==";
    default: return "?";
    }
}

void ast_print(StrBuf *sb, const Node *n) {
    if (!n) {
        strbuf_puts(sb, "()");
        return;
    }
    switch (n->kind) {
    case N_NUM:
        format_number(sb, n->num);
        break;
    case N_VAR:
        strbuf_puts(sb, n->name);
        break;
    case N_BIN:
        strbuf_printf(sb, "(%s ", op_text(n->op));
        ast_print(sb, n->a);
        strbuf_putc(sb, ' ');
        ast_print(sb, n->b);
        strbuf_putc(sb, ')');
        break;
    case N_NEG:
        strbuf_puts(sb, "(neg ");
        ast_print(sb, n->a);
        strbuf_putc(sb, ')');
        break;
    case N_CALL:
        strbuf_printf(sb, "(%s", n->name);
        for (int i = 0; i < n->n_args; i++) {
            strbuf_putc(sb, ' ');
            ast_print(sb, n->args[i]);
        }
        strbuf_putc(sb, ')');
        break;
    case N_LET:
        strbuf_printf(sb, "(let %s ", n->name);
        ast_print(sb, n->a);
        strbuf_putc(sb, ')');
        break;
    case N_PRINT:
        strbuf_puts(sb, "(print ");
        ast_print(sb, n->a);
        strbuf_putc(sb, ')');
        break;
    case N_WHILE:
        strbuf_puts(sb, "(while ");
        ast_print(sb, n->a);
        strbuf_putc(sb, ' ');
        ast_print(sb, n->b);
        strbuf_putc(sb, ')');
        break;
    case N_IF:
        strbuf_puts(sb, "(if ");
        ast_print(sb, n->a);
        strbuf_putc(sb, ' ');
        ast_print(sb, n->b);
        strbuf_putc(sb, ' ');
        ast_print(sb, n->c);
        strbuf_putc(sb, ')');
        break;
    case N_SEQ:
        strbuf_puts(sb, "(seq");
        for (int i = 0; i < n->n_args; i++) {
            strbuf_putc(sb, ' ');
            ast_print(sb, n->args[i]);
        }
        strbuf_putc(sb, ')');
        break;
    }
}

int ast_count(const Node *n) {
    if (!n)
        return 0;
    int c = 1 + ast_count(n->a) + ast_count(n->b) + ast_count(n->c);
    for (int i = 0; i < n->n_args; i++)
        c += ast_count(n->args[i]);
    return c;
}
