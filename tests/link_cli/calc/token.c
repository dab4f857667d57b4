/* Token names and the keyword table (static, relocated data). */
#include <string.h>

#include "calc.h"

static const char *const names[T_COUNT] = {
    [T_EOF] = "end of input", [T_NUM] = "number", [T_IDENT] = "identifier",
    [T_LET] = "'let'", [T_PRINT] = "'print'", [T_WHILE] = "'while'",
    [T_DO] = "'do'", [T_END] = "'end'", [T_IF] = "'if'", [T_THEN] = "'then'",
    [T_ELSE] = "'else'", [T_PLUS] = "'+'", [T_MINUS] = "'-'", [T_STAR] = "'*'",
    [T_SLASH] = "'/'", [T_PERCENT] = "'%'", [T_LT] = "'<'", [T_GT] = "'>'",
    [T_EQEQ] = "'=='", [T_ASSIGN] = "'='", [T_LPAREN] = "'('", [T_RPAREN] = "')'",
    [T_COMMA] = "','", [T_SEMI] = "';'", [T_ERROR] = "bad character",
};

static const struct {
    const char *word;
    TokKind kind;
} keywords[] = {
    {"let", T_LET}, {"print", T_PRINT}, {"while", T_WHILE}, {"do", T_DO},
    {"end", T_END}, {"if", T_IF}, {"then", T_THEN}, {"else", T_ELSE},
};

const char *token_name(TokKind k) {
    return (unsigned)k < T_COUNT && names[k] ? names[k] : "?";
}

TokKind keyword_kind(const char *s, int len) {
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if ((int)strlen(keywords[i].word) == len && memcmp(keywords[i].word, s, (size_t)len) == 0)
            return keywords[i].kind;
    }
    return T_IDENT;
}
