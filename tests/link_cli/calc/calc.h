/* calc: a small expression language with a tree-walking evaluator and a
 * bytecode VM, spread over many files to exercise `orc link`. */
#ifndef CALC_H
#define CALC_H

#include <stddef.h>
#include <stdint.h>

/* strbuf.c */
typedef struct {
    char *data;
    size_t len, cap;
} StrBuf;
StrBuf *strbuf_new(void);
void strbuf_free(StrBuf *sb);
void strbuf_putc(StrBuf *sb, char c);
void strbuf_puts(StrBuf *sb, const char *s);
void strbuf_printf(StrBuf *sb, const char *fmt, ...);
const char *strbuf_cstr(StrBuf *sb);
void strbuf_clear(StrBuf *sb);

/* format.c */
void format_number(StrBuf *sb, double v);

/* hashmap.c */
typedef struct HashMap HashMap;
HashMap *hashmap_new(size_t initial);
void hashmap_free(HashMap *m);
int hashmap_get(const HashMap *m, const char *key, long *out);
void hashmap_put(HashMap *m, const char *key, long value);
size_t hashmap_len(const HashMap *m);
uint32_t hash_string(const char *s);

/* arena.c */
typedef struct Arena Arena;
Arena *arena_new(void);
void *arena_alloc(Arena *a, size_t n);
char *arena_strndup(Arena *a, const char *s, size_t n);
size_t arena_used(const Arena *a);
void arena_free(Arena *a);

/* token.c, lexer.c */
typedef enum {
    T_EOF, T_NUM, T_IDENT, T_LET, T_PRINT, T_WHILE, T_DO, T_END, T_IF, T_THEN,
    T_ELSE, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT, T_LT, T_GT, T_EQEQ,
    T_ASSIGN, T_LPAREN, T_RPAREN, T_COMMA, T_SEMI, T_ERROR, T_COUNT
} TokKind;
typedef struct {
    TokKind kind;
    const char *start;
    int len;
    double num;
    int line;
} Token;
const char *token_name(TokKind k);
TokKind keyword_kind(const char *s, int len);
typedef struct {
    const char *src, *cur;
    int line;
} Lexer;
void lexer_init(Lexer *lx, const char *src);
Token lexer_next(Lexer *lx);
int count_tokens(const char *src);

/* ast.c */
typedef enum { N_NUM, N_VAR, N_BIN, N_NEG, N_CALL, N_LET, N_PRINT, N_WHILE, N_IF, N_SEQ } NodeKind;
typedef struct Node Node;
struct Node {
    NodeKind kind;
    int op; /* TokKind for N_BIN */
    double num;
    const char *name;
    Node *a, *b, *c;
    Node **args;
    int n_args;
};
Node *node_new(Arena *ar, NodeKind k);
void ast_print(StrBuf *sb, const Node *n);
int ast_count(const Node *n);

/* parser.c */
Node *parse_program(Arena *ar, const char *src, char *err, size_t err_len);
int binary_precedence(TokKind k);

/* symtab.c */
typedef struct Symtab Symtab;
Symtab *symtab_new(void);
void symtab_free(Symtab *st);
int symtab_slot(Symtab *st, const char *name, int create);
double symtab_get(const Symtab *st, int slot);
void symtab_set(Symtab *st, int slot, double v);
int symtab_count(const Symtab *st);
const char *symtab_name(const Symtab *st, int slot);

/* builtins.c */
typedef double (*BuiltinFn)(const double *args);
typedef struct {
    const char *name;
    int arity;
    BuiltinFn fn;
} Builtin;
const Builtin *builtin_find(const char *name);
int builtin_index(const char *name);
const Builtin *builtin_at(int idx);
int builtin_count(void);

/* errors.c */
extern int calc_errors;
extern char calc_last_error[128];
void calc_error(const char *where, const char *msg);
const char *calc_error_kind(int code);

/* eval.c */
int eval_program(const Node *prog, Symtab *st, StrBuf *out);

/* compiler.c, vm.c, disasm.c */
typedef enum {
    OP_CONST, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
    OP_LT, OP_GT, OP_EQ, OP_NEG, OP_CALL, OP_PRINT, OP_JMP, OP_JZ, OP_POP,
    OP_HALT, OP_COUNT
} Opcode;
typedef struct {
    uint8_t *code;
    int len, cap;
    double *consts;
    int n_consts, cap_consts;
} Chunk;
int compile_program(const Node *prog, Symtab *st, Chunk *ch);
void chunk_free(Chunk *ch);
int vm_run(const Chunk *ch, Symtab *st, StrBuf *out, long *steps);
const char *opcode_name(Opcode op);
int opcode_operand_bytes(Opcode op);
void disassemble(const Chunk *ch, StrBuf *sb);

/* vec.c */
typedef struct {
    double *items;
    size_t len, cap;
} Vec;
void vec_push(Vec *v, double x);
void vec_free(Vec *v);

/* sort.c */
typedef int (*CmpFn)(const void *, const void *);
void sort_doubles(double *xs, size_t n);
void insertion_sort(void *base, size_t n, size_t size, CmpFn cmp);
int cmp_strings(const void *a, const void *b);

/* stats.c */
double stats_mean(const double *xs, size_t n);
double stats_stddev(const double *xs, size_t n);
double stats_median(double *xs, size_t n);

/* config.c */
typedef struct {
    const char *name;
    int max_steps;
    int verbose;
    double scale;
    const char *banner;
} Config;
extern Config calc_config;

/* scripts.c */
typedef struct {
    const char *title;
    const char *source;
} Script;
extern const Script calc_scripts[];
extern const int calc_n_scripts;

/* libsupport.a: rng.c, crc32.c, bigint.c, bigfmt.c */
void rng_seed(uint64_t seed);
uint64_t rng_next(void);
void rng_shuffle(int *xs, int n);
uint32_t crc32_update(uint32_t crc, const void *data, size_t n);
char *bigint_factorial(int n);
char *bigfmt_group(const char *digits);

#endif
