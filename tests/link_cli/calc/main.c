/* calc's driver: runs the built-in scripts (or those named on the command
 * line, plus -e SOURCE ones) through both the evaluator and the VM,
 * checks they agree, and prints statistics. The exit status encodes the
 * number of failed scripts and a checksum of the output.
 *
 * Usage: calc [-v] [-s SEED] [-e SOURCE]... [SCRIPT_NAME]... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calc.h"

typedef struct {
    const char *title;
    const char *source;
} Job;

static int verbose;
static uint32_t output_crc;

static int run_one(const Job *job, Vec *results) {
    char err[160] = "";
    Arena *ar = arena_new();
    printf("== %s (%d tokens)\n", job->title, count_tokens(job->source));
    Node *prog = parse_program(ar, job->source, err, sizeof err);
    if (!prog) {
        calc_error(job->title, err);
        printf("   syntax error: %s\n", err);
        arena_free(ar);
        return 1;
    }
    StrBuf *ast = strbuf_new();
    ast_print(ast, prog);
    printf("   %d nodes, %zu arena bytes\n", ast_count(prog), arena_used(ar));
    if (verbose)
        printf("   ast: %s\n", strbuf_cstr(ast));

    Symtab *st1 = symtab_new(), *st2 = symtab_new();
    StrBuf *out1 = strbuf_new(), *out2 = strbuf_new();
    int e1 = eval_program(prog, st1, out1);
    const char *err1 = e1 ? calc_error_kind(1) : "ok";
    Chunk ch = {0};
    compile_program(prog, st2, &ch);
    long steps = 0;
    int e2 = vm_run(&ch, st2, out2, &steps);
    if (verbose) {
        StrBuf *dis = strbuf_new();
        disassemble(&ch, dis);
        fputs(strbuf_cstr(dis), stdout);
        strbuf_free(dis);
    }
    printf("   eval: %s, vm: %s after %ld steps, %d bytes of code, %d constants\n", err1,
           e2 ? calc_last_error : "ok", steps, ch.len, ch.n_consts);
    fputs(strbuf_cstr(out1), stdout);
    int agree = strcmp(strbuf_cstr(out1), strbuf_cstr(out2)) == 0 && e1 == e2;
    printf("   evaluator and vm %s\n", agree ? "agree" : "DISAGREE");
    output_crc = crc32_update(output_crc, strbuf_cstr(out1), out1->len);

    char *line = out1->data;
    while (*line) {
        vec_push(results, strtod(line, &line));
        while (*line == '\n')
            line++;
    }
    for (int i = 0; i < symtab_count(st1); i++) {
        if (verbose)
            printf("   %s = %g\n", symtab_name(st1, i), symtab_get(st1, i));
    }
    chunk_free(&ch);
    strbuf_free(out1);
    strbuf_free(out2);
    strbuf_free(ast);
    symtab_free(st1);
    symtab_free(st2);
    arena_free(ar);
    return e1 || e2;
}

static int by_value_desc(const void *a, const void *b) {
    const int *x = a, *y = b;
    return (*y > *x) - (*y < *x);
}

static void word_counts(const Job *jobs, int n_jobs) {
    HashMap *counts = hashmap_new(16);
    const char *words[256];
    int n_words = 0;
    for (int j = 0; j < n_jobs; j++) {
        Lexer lx;
        lexer_init(&lx, jobs[j].source);
        for (Token t = lexer_next(&lx); t.kind != T_EOF; t = lexer_next(&lx)) {
            if (t.kind != T_IDENT)
                continue;
            char name[32];
            snprintf(name, sizeof name, "%.*s", t.len, t.start);
            long c = 0;
            if (!hashmap_get(counts, name, &c) && n_words < 256)
                words[n_words++] = strdup(name);
            hashmap_put(counts, name, c + 1);
        }
    }
    qsort(words, (size_t)n_words, sizeof words[0], cmp_strings);
    printf("identifiers: %zu distinct:", hashmap_len(counts));
    for (int i = 0; i < n_words; i++) {
        long c = 0;
        hashmap_get(counts, words[i], &c);
        printf(" %s=%ld", words[i], c);
        free((void *)words[i]);
    }
    printf("\n");
    hashmap_free(counts);
}

int main(int argc, char **argv) {
    Job jobs[64];
    int n_jobs = 0;
    uint64_t seed = 42;
    const char *names[32];
    int n_names = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc && n_jobs < 32) {
            jobs[n_jobs].title = "command-line";
            jobs[n_jobs++].source = argv[++i];
        } else if (n_names < 32) {
            names[n_names++] = argv[i];
        }
    }
    calc_config.verbose = verbose;
    printf("%s\n%d arguments, %d scripts, %d builtins\n", calc_config.banner, argc - 1,
           calc_n_scripts, builtin_count());
    for (int i = 0; i < calc_n_scripts && n_jobs < 64; i++) {
        int wanted = n_names == 0;
        for (int k = 0; k < n_names; k++)
            wanted |= strcmp(names[k], calc_scripts[i].title) == 0;
        if (wanted) {
            jobs[n_jobs].title = calc_scripts[i].title;
            jobs[n_jobs++].source = calc_scripts[i].source;
        }
    }

    Vec results = {0};
    int failed = 0;
    for (int i = 0; i < n_jobs; i++)
        failed += run_one(&jobs[i], &results);

    printf("%d scripts, %d failed, %d errors (last: %s)\n", n_jobs, failed, calc_errors,
           calc_last_error);
    if (results.len) {
        printf("results: n=%zu mean=%.4f stddev=%.4f", results.len,
               stats_mean(results.items, results.len), stats_stddev(results.items, results.len));
        double median = stats_median(results.items, results.len); /* sorts them */
        printf(" median=%.4f min=%g max=%g\n", median, results.items[0],
               results.items[results.len - 1]);
    }

    int order[16];
    for (int i = 0; i < 16; i++)
        order[i] = i * 7 % 16;
    rng_seed(seed);
    rng_shuffle(order, 16);
    printf("shuffled:");
    for (int i = 0; i < 16; i++)
        printf(" %d", order[i]);
    insertion_sort(order, 16, sizeof order[0], by_value_desc);
    printf("\nsorted desc:");
    for (int i = 0; i < 16; i++)
        printf(" %d", order[i]);
    printf("\n");

    const char *titles[64];
    for (int i = 0; i < n_jobs; i++)
        titles[i] = jobs[i].title;
    qsort(titles, (size_t)n_jobs, sizeof titles[0], cmp_strings);
    printf("titles:");
    for (int i = 0; i < n_jobs; i++)
        printf(" %s", titles[i]);
    printf("\n");
    word_counts(jobs, n_jobs);

    char *fact = bigint_factorial(25);
    printf("25! = %s\n", fact);
    free(fact);
    printf("output crc32: %08x, hash(calc) = %08x, precedence(*) = %d\n", output_crc,
           hash_string(calc_config.name), binary_precedence(T_STAR));
    vec_free(&results);
    return failed * 10 + (int)(output_crc & 7) + 1;
}
