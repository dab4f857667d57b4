/* A recursive-descent parser with precedence climbing for binary
 * operators. Errors are reported through a longjmp-free flag. */
#include <stdio.h>
#include <string.h>

#include "calc.h"

typedef struct {
    Lexer lx;
    Token tok;
    Arena *ar;
    char *err;
    size_t err_len;
    int failed;
} Parser;

static const signed char precedence[T_COUNT] = {
    [T_EQEQ] = 1, [T_LT] = 2, [T_GT] = 2, [T_PLUS] = 3, [T_MINUS] = 3,
    [T_STAR] = 4, [T_SLASH] = 4, [T_PERCENT] = 4,
};

int binary_precedence(TokKind k) { return (unsigned)k < T_COUNT ? precedence[k] : 0; }

static void advance(Parser *p) { p->tok = lexer_next(&p->lx); }

static void fail(Parser *p, const char *what) {
    if (p->failed)
        return;
    p->failed = 1;
    snprintf(p->err, p->err_len, "line %d: expected %s, found %s", p->tok.line, what,
             token_name(p->tok.kind));
}

static int expect(Parser *p, TokKind k) {
    if (p->tok.kind != k) {
        fail(p, token_name(k));
        return 0;
    }
    advance(p);
    return 1;
}

static Node *expression(Parser *p, int min_prec);

static Node *primary(Parser *p) {
    Token t = p->tok;
    switch (t.kind) {
    case T_NUM: {
        advance(p);
        Node *n = node_new(p->ar, N_NUM);
        n->num = t.num;
        return n;
    }
    case T_MINUS: {
        advance(p);
        Node *n = node_new(p->ar, N_NEG);
        n->a = primary(p);
        return n;
    }
    case T_LPAREN: {
        advance(p);
        Node *n = expression(p, 1);
        expect(p, T_RPAREN);
        return n;
    }
    case T_IDENT: {
        advance(p);
        const char *name = arena_strndup(p->ar, t.start, (size_t)t.len);
        if (p->tok.kind != T_LPAREN) {
            Node *n = node_new(p->ar, N_VAR);
            n->name = name;
            return n;
        }
        advance(p);
        Node *n = node_new(p->ar, N_CALL);
        n->name = name;
        Node *args[8];
        while (p->tok.kind != T_RPAREN && !p->failed) {
            if (n->n_args == 8) {
                fail(p, "at most 8 arguments");
                break;
            }
            args[n->n_args++] = expression(p, 1);
            if (p->tok.kind != T_COMMA)
                break;
            advance(p);
        }
        expect(p, T_RPAREN);
        n->args = arena_alloc(p->ar, sizeof(Node *) * (size_t)(n->n_args ? n->n_args : 1));
        memcpy(n->args, args, sizeof(Node *) * (size_t)n->n_args);
        return n;
    }
    default:
        fail(p, "an expression");
        return node_new(p->ar, N_NUM);
    }
}

static Node *expression(Parser *p, int min_prec) {
    Node *lhs = primary(p);
    for (;;) {
        int prec = binary_precedence(p->tok.kind);
        if (prec < min_prec || prec == 0 || p->failed)
            return lhs;
        int op = p->tok.kind;
        advance(p);
        Node *n = node_new(p->ar, N_BIN);
        n->op = op;
        n->a = lhs;
        n->b = expression(p, prec + 1);
        lhs = n;
    }
}

static Node *statements(Parser *p, TokKind end1, TokKind end2);

static Node *statement(Parser *p) {
    switch (p->tok.kind) {
    case T_LET: {
        advance(p);
        Token name = p->tok;
        if (!expect(p, T_IDENT))
            return NULL;
        expect(p, T_ASSIGN);
        Node *n = node_new(p->ar, N_LET);
        n->name = arena_strndup(p->ar, name.start, (size_t)name.len);
        n->a = expression(p, 1);
        return n;
    }
    case T_PRINT: {
        advance(p);
        Node *n = node_new(p->ar, N_PRINT);
        n->a = expression(p, 1);
        return n;
    }
    case T_WHILE: {
        advance(p);
        Node *n = node_new(p->ar, N_WHILE);
        n->a = expression(p, 1);
        expect(p, T_DO);
        n->b = statements(p, T_END, T_END);
        expect(p, T_END);
        return n;
    }
    case T_IF: {
        advance(p);
        Node *n = node_new(p->ar, N_IF);
        n->a = expression(p, 1);
        expect(p, T_THEN);
        n->b = statements(p, T_ELSE, T_END);
        if (p->tok.kind == T_ELSE) {
            advance(p);
            n->c = statements(p, T_END, T_END);
        }
        expect(p, T_END);
        return n;
    }
    default:
        fail(p, "a statement");
        return NULL;
    }
}

static Node *statements(Parser *p, TokKind end1, TokKind end2) {
    Node *seq = node_new(p->ar, N_SEQ);
    int cap = 4;
    seq->args = arena_alloc(p->ar, sizeof(Node *) * (size_t)cap);
    while (p->tok.kind != end1 && p->tok.kind != end2 && p->tok.kind != T_EOF && !p->failed) {
        Node *s = statement(p);
        if (p->failed)
            break;
        if (seq->n_args == cap) {
            Node **more = arena_alloc(p->ar, sizeof(Node *) * (size_t)cap * 2);
            memcpy(more, seq->args, sizeof(Node *) * (size_t)cap);
            seq->args = more;
            cap *= 2;
        }
        seq->args[seq->n_args++] = s;
        if (p->tok.kind == T_SEMI)
            advance(p);
    }
    return seq;
}

Node *parse_program(Arena *ar, const char *src, char *err, size_t err_len) {
    Parser p;
    memset(&p, 0, sizeof p);
    lexer_init(&p.lx, src);
    p.ar = ar;
    p.err = err;
    p.err_len = err_len;
    advance(&p);
    Node *prog = statements(&p, T_EOF, T_EOF);
    if (!p.failed && p.tok.kind != T_EOF)
        fail(&p, token_name(T_EOF));
    return p.failed ? NULL : prog;
}
