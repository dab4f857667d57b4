/* The tokenizer: one switch over the next character. */
#include <ctype.h>
#include <stdlib.h>

#include "calc.h"

void lexer_init(Lexer *lx, const char *src) {
    lx->src = src;
    lx->cur = src;
    lx->line = 1;
}

static Token make(Lexer *lx, TokKind k, const char *start) {
    Token t;
    t.kind = k;
    t.start = start;
    t.len = (int)(lx->cur - start);
    t.num = 0;
    t.line = lx->line;
    return t;
}

Token lexer_next(Lexer *lx) {
    for (;;) {
        while (*lx->cur == ' ' || *lx->cur == '\t' || *lx->cur == '\r' || *lx->cur == '\n') {
            if (*lx->cur == '\n')
                lx->line++;
            lx->cur++;
        }
        if (*lx->cur == '#') {
            while (*lx->cur && *lx->cur != '\n')
                lx->cur++;
            continue;
        }
        break;
    }
    const char *start = lx->cur;
    char c = *lx->cur;
    if (c == '\0')
        return make(lx, T_EOF, start);
    lx->cur++;
    switch (c) {
    case '+': return make(lx, T_PLUS, start);
    case '-': return make(lx, T_MINUS, start);
    case '*': return make(lx, T_STAR, start);
    case '/': return make(lx, T_SLASH, start);
    case '%': return make(lx, T_PERCENT, start);
    case '<': return make(lx, T_LT, start);
    case '>': return make(lx, T_GT, start);
    case '(': return make(lx, T_LPAREN, start);
    case ')': return make(lx, T_RPAREN, start);
    case ',': return make(lx, T_COMMA, start);
    case ';': return make(lx, T_SEMI, start);
    case '=':
        if (*lx->cur == '=') {
            lx->cur++;
            return make(lx, T_EQEQ, start);
        }
        return make(lx, T_ASSIGN, start);
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
    case '.': {
        char *end;
        double v = strtod(start, &end);
        lx->cur = end;
        Token t = make(lx, T_NUM, start);
        t.num = v;
        return t;
    }
    default:
        if (isalpha((unsigned char)c) || c == '_') {
            while (isalnum((unsigned char)*lx->cur) || *lx->cur == '_')
                lx->cur++;
            Token t = make(lx, T_IDENT, start);
            t.kind = keyword_kind(start, t.len);
            return t;
        }
        return make(lx, T_ERROR, start);
    }
}

int count_tokens(const char *src) {
    Lexer lx;
    lexer_init(&lx, src);
    int n = 0;
    for (;;) {
        Token t = lexer_next(&lx);
        if (t.kind == T_EOF)
            return n;
        n++;
    }
}
