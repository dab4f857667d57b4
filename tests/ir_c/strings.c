/* String processing: tokenizing, reversing words, ROT13, run-length
 * encoding, palindromes, KMP search, a template expander, number parsing
 * and formatting, and the program's own arguments (argc/argv/envp, which a
 * JIT must pass like a C runtime). Exit status: argc + 10. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

static const char text[] =
    "It was the best of times, it was the worst of times, it was the age of "
    "wisdom, it was the age of foolishness, it was the epoch of belief, it was "
    "the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair.";

static char *dup_range(const char *s, size_t n) {
    char *out = malloc(n + 1);
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

static size_t split_words(const char *s, char **out, size_t max) {
    size_t n = 0;
    while (*s && n < max) {
        const char *start;
        while (*s && !isalpha((unsigned char)*s)) s++;
        start = s;
        while (isalpha((unsigned char)*s)) s++;
        if (s > start) out[n++] = dup_range(start, (size_t)(s - start));
    }
    return n;
}

static void reverse(char *s, size_t n) {
    size_t i;
    for (i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

static void reverse_words(char *s) {
    char *p = s, *start;
    reverse(s, strlen(s));
    while (*p) {
        while (*p == ' ') p++;
        start = p;
        while (*p && *p != ' ') p++;
        reverse(start, (size_t)(p - start));
    }
}

static void rot13(char *s) {
    for (; *s; s++) {
        if (islower((unsigned char)*s)) *s = (char)('a' + (*s - 'a' + 13) % 26);
        else if (isupper((unsigned char)*s)) *s = (char)('A' + (*s - 'A' + 13) % 26);
    }
}

static char *rle_encode(const char *s) {
    size_t n = strlen(s), i = 0, o = 0;
    char *out = malloc(n * 4 + 1);
    while (i < n) {
        size_t run = 1;
        while (i + run < n && s[i + run] == s[i] && run < 99) run++;
        if (run > 2) o += (size_t)sprintf(out + o, "%zu%c", run, s[i]);
        else {
            size_t k;
            for (k = 0; k < run; k++) out[o++] = s[i];
        }
        i += run;
    }
    out[o] = 0;
    return out;
}

static char *rle_decode(const char *s) {
    size_t cap = 64, o = 0;
    char *out = malloc(cap);
    while (*s) {
        long run = 1;
        if (isdigit((unsigned char)*s)) run = strtol(s, (char **)&s, 10);
        while (o + (size_t)run + 1 > cap) out = realloc(out, cap *= 2);
        memset(out + o, *s, (size_t)run);
        o += (size_t)run;
        s++;
    }
    out[o] = 0;
    return out;
}

static int is_palindrome(const char *s) {
    const char *e = s + strlen(s);
    while (s < e) {
        while (s < e && !isalnum((unsigned char)*s)) s++;
        while (s < e && !isalnum((unsigned char)e[-1])) e--;
        if (s < e && tolower((unsigned char)*s) != tolower((unsigned char)e[-1])) return 0;
        s++;
        e--;
    }
    return 1;
}

static int kmp_count(const char *hay, const char *needle) {
    size_t m = strlen(needle), i, k = 0;
    int *fail, count = 0;
    if (m == 0) return 0;
    fail = malloc(m * sizeof *fail);
    fail[0] = 0;
    for (i = 1; i < m; i++) {
        while (k > 0 && needle[i] != needle[k]) k = (size_t)fail[k - 1];
        if (needle[i] == needle[k]) k++;
        fail[i] = (int)k;
    }
    k = 0;
    for (i = 0; hay[i]; i++) {
        while (k > 0 && hay[i] != needle[k]) k = (size_t)fail[k - 1];
        if (hay[i] == needle[k]) k++;
        if (k == m) {
            count++;
            k = (size_t)fail[k - 1];
        }
    }
    free(fail);
    return count;
}

struct binding {
    const char *key;
    const char *value;
};

static char *expand(const char *tmpl, const struct binding *b, size_t n_b) {
    size_t cap = strlen(tmpl) + 1, o = 0;
    char *out = malloc(cap);
    while (*tmpl) {
        const char *val = NULL;
        size_t len = 1;
        if (tmpl[0] == '$' && tmpl[1] == '{') {
            const char *end = strchr(tmpl, '}');
            size_t i;
            if (end) {
                for (i = 0; i < n_b; i++)
                    if (strlen(b[i].key) == (size_t)(end - tmpl - 2) &&
                        strncmp(b[i].key, tmpl + 2, (size_t)(end - tmpl - 2)) == 0)
                        val = b[i].value;
                len = (size_t)(end - tmpl + 1);
                if (!val) val = "?";
            }
        }
        if (!val) {
            if (o + 2 > cap) out = realloc(out, cap *= 2);
            out[o++] = *tmpl;
        } else {
            size_t vl = strlen(val);
            while (o + vl + 1 > cap) out = realloc(out, cap *= 2);
            memcpy(out + o, val, vl);
            o += vl;
        }
        tmpl += len;
    }
    out[o] = 0;
    return out;
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv, char **envp) {
    char *words[128];
    size_t n = split_words(text, words, 128), i, distinct = 0;
    char line[256];
    int j;
    long total = 0;
    (void)envp;

    printf("argc=%d\n", argc);
    for (j = 1; j < argc; j++) printf("argv[%d]=%s (%zu bytes)\n", j, argv[j], strlen(argv[j]));
    printf("argv[argc] is %s\n", argv[argc] ? "set" : "NULL");

    printf("%zu words\n", n);
    qsort(words, n, sizeof words[0], cmp_cstr);
    for (i = 0; i < n; i++) {
        if (i == 0 || strcmp(words[i], words[i - 1]) != 0) distinct++;
        total += (long)strlen(words[i]);
    }
    printf("%zu distinct, average length %.3f\n", distinct, (double)total / (double)n);
    printf("first %s, last %s\n", words[0], words[n - 1]);
    for (i = 0; i < n; i++) free(words[i]);

    strcpy(line, "the quick brown fox jumps over the lazy dog");
    reverse_words(line);
    printf("reversed: %s\n", line);
    rot13(line);
    printf("rot13: %s\n", line);
    rot13(line);
    for (i = 0; line[i]; i++) line[i] = (char)toupper((unsigned char)line[i]);
    printf("upper: %s\n", line);

    {
        const char *samples[] = {"aaaabbbcccd", "abcabcabc", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzy", ""};
        for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
            char *enc = rle_encode(samples[i]);
            char *dec = rle_decode(enc);
            printf("rle '%s' -> '%s' -> %s\n", samples[i], enc, strcmp(dec, samples[i]) == 0 ? "ok" : "MISMATCH");
            free(enc);
            free(dec);
        }
    }

    {
        const char *cands[] = {"A man, a plan, a canal: Panama", "racecar", "hello", "Was it a car or a cat I saw?", "ab"};
        for (i = 0; i < sizeof cands / sizeof cands[0]; i++)
            printf("palindrome(\"%s\") = %d\n", cands[i], is_palindrome(cands[i]));
    }

    printf("kmp 'it was' = %d, 'of' = %d, 'the' = %d, 'xyz' = %d\n", kmp_count(text, "it was"),
           kmp_count(text, "of"), kmp_count(text, "the"), kmp_count(text, "xyz"));

    {
        struct binding b[] = {{"name", "orc"}, {"what", "a JIT"}, {"lang", "Rust"}};
        char *s = expand("${name} is ${what} written in ${lang}; ${missing} stays ${name}.", b, 3);
        printf("%s\n", s);
        free(s);
    }

    {
        const char *nums = "  42 -17 0x1F 0755 +8 junk 99";
        const char *p = nums;
        char *end;
        long sum = 0;
        for (;;) {
            long v = strtol(p, &end, 0);
            if (end == p) break;
            sum += v;
            printf("parsed %ld\n", v);
            p = end;
        }
        printf("sum %ld, rest '%s'\n", sum, p);
        printf("%08.3f|%-8d|%+d|%x|%o|%e|%g|%5.2s|\n", 3.14159, 42, 7, 255, 8, 12345.678, 0.0001234, "abcdef");
    }
    return argc + 10;
}
