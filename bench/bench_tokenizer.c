/* Tokenizer throughput: encodes a large text and prints MB/s.
 *
 *   bench_tokenizer [tokenizer.json] [text file] [repeats]
 * Defaults: the tokenizer-bpe fixture and a ~8 MB text built by repeating
 * mixed English/code/CJK paragraphs (deterministic). Also times decode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *default_text(size_t target, size_t *len) {
    static const char *paras[] = {
        "A red circle on the left of a blue square. The quick brown fox jumps over the lazy dog, "
        "and it's 42 degrees outside; they're sure we've seen 1,234,567 of them.\n",
        "def f(a, b):\n    return a ** b + sum(x for x in range(10))  # comment\n\n",
        "\xe6\x95\xb0\xe5\xad\x97 123 \xe5\x92\x8c\xe4\xb8\xad\xe6\x96\x87\xe3\x80\x82"
        "\xe4\xb8\x80\xe5\x8f\xaa\xe7\xba\xa2\xe8\x89\xb2\xe7\x9a\x84\xe5\x9c\x86\xe5\xbd\xa2\n",
        "\xc3\x9c" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 fa\xc3\xa7" "ade na\xc3\xafve caf\xc3\xa9  \t emoji \xf0\x9f\x98\x80 ok\n",
    };
    char *buf = malloc(target + 512);
    size_t n = 0;
    for (size_t i = 0; n < target; i++) {
        const char *p = paras[(i * 7 + i / 3) % 4];
        size_t k = strlen(p);
        memcpy(buf + n, p, k);
        n += k;
    }
    *len = n;
    return buf;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0 || (size_t)sz > TOKENIZER_MAX_TEXT_BYTES) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)sz + 1);
    *len = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *tok_path = argc > 1 ? argv[1] : "tests/fixtures/tokenizer-bpe/tokenizer.json";
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    if (repeats < 1) repeats = 1;
    struct dsr_err err;
    struct tokenizer *tk = NULL;
    if (tokenizer_load(tok_path, &tk, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    size_t len = 0;
    char *text = argc > 2 ? read_file(argv[2], &len) : default_text((size_t)8 << 20, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", argv[2]);
        tokenizer_free(tk);
        return 1;
    }
    struct tok_ids ids = {0};
    double best_enc = 1e30, best_dec = 1e30;
    for (int r = 0; r < repeats; r++) {
        ids.n = 0;
        double t0 = now_s();
        if (tokenizer_encode(tk, text, len, 0, &ids, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        double t1 = now_s();
        char *out = NULL;
        size_t out_len = 0;
        if (tokenizer_decode(tk, ids.ids, ids.n, 0, &out, &out_len, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        double t2 = now_s();
        if (out_len != len || memcmp(out, text, len) != 0) fprintf(stderr, "bench_tokenizer: round trip differs!\n");
        free(out);
        if (t1 - t0 < best_enc) best_enc = t1 - t0;
        if (t2 - t1 < best_dec) best_dec = t2 - t1;
    }
    double mb = (double)len / 1e6;
    printf("text %.2f MB -> %zu tokens (%.2f bytes/token)\n", mb, ids.n, (double)len / (double)ids.n);
    printf("encode: %.1f MB/s (best of %d, %.3f s)\n", mb / best_enc, repeats, best_enc);
    printf("decode: %.1f MB/s (best of %d, %.3f s)\n", mb / best_dec, repeats, best_dec);
    tok_ids_free(&ids);
    free(text);
    tokenizer_free(tk);
    return 0;
}
