/* Tokenizer: the HF fixture (tokenizer-bpe), round-trip and robustness
 * properties, and unit tests of every component on small inline
 * tokenizer.json documents. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rng.h"
#include "tokenizer.h"

#define FIXTURE "tests/fixtures/tokenizer-bpe/"

static struct tokenizer *load_fixture(struct th *t) {
    struct tokenizer *tk = NULL;
    struct dsr_err err = {{0}};
    int rc = tokenizer_load(FIXTURE "tokenizer.json", &tk, &err);
    TH_CHECK(t, rc == 0, "load failed: %s", err.msg);
    return rc == 0 ? tk : NULL;
}

static int ids_equal(const struct tok_ids *v, const int32_t *want, size_t n) {
    if (v->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (v->ids[i] != want[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void test_fixture_cases(struct th *t) {
    struct tokenizer *tk = load_fixture(t);
    if (!tk) return;
    json_error_t jerr;
    json_t *cases = json_load_file(FIXTURE "cases.json", 0, &jerr);
    if (!TH_CHECK(t, json_is_array(cases), "cases.json: %s", jerr.text)) {
        tokenizer_free(tk);
        return;
    }
    TH_CHECK(t, json_array_size(cases) == 16, "expected 16 cases, got %zu", json_array_size(cases));
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        json_t *text = json_object_get(c, "text"), *ids = json_object_get(c, "ids");
        const char *decoded = json_string_value(json_object_get(c, "decoded"));
        size_t n = json_array_size(ids);
        int32_t *want = malloc((n + 1) * sizeof *want);
        for (size_t k = 0; k < n; k++) want[k] = (int32_t)json_integer_value(json_array_get(ids, k));
        struct tok_ids got = {0};
        struct dsr_err err = {{0}};
        int rc = tokenizer_encode(tk, json_string_value(text), json_string_length(text), 0, &got, &err);
        if (!TH_CHECK(t, rc == 0 && ids_equal(&got, want, n), "case %zu \"%s\": ids differ (%s)", i,
                      json_string_value(text), err.msg)) {
            print_ids("want", want, n);
            print_ids("got ", got.ids, got.n);
        }
        char *out = NULL;
        size_t out_len = 0;
        rc = tokenizer_decode(tk, want, n, 0, &out, &out_len, &err);
        TH_CHECK(t, rc == 0 && out && strlen(decoded) == out_len && strcmp(out, decoded) == 0,
                 "case %zu: decoded \"%s\", want \"%s\"", i, out ? out : err.msg, decoded);
        free(out);
        free(want);
        tok_ids_free(&got);
    }
    json_decref(cases);
    tokenizer_free(tk);
}

static void test_fixture_lookups(struct th *t) {
    struct tokenizer *tk = load_fixture(t);
    if (!tk) return;
    TH_CHECK(t, tokenizer_token_to_id(tk, "<begin_of_image>") == 4, "<begin_of_image>");
    TH_CHECK(t, tokenizer_token_to_id(tk, "<end_of_image>") == 5, "<end_of_image>");
    TH_CHECK(t, tokenizer_token_to_id(tk, "<image_placeholder>") == 3, "<image_placeholder>");
    TH_CHECK(t, tokenizer_token_to_id(tk, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>") == 0,
             "BOS");
    TH_CHECK(t, tokenizer_token_to_id(tk, "no such token") == -1, "absent token");
    TH_CHECK(t, tokenizer_vocab_size(tk) == 3000, "vocab size %d", tokenizer_vocab_size(tk));
    const char *s = tokenizer_id_to_token(tk, 3);
    TH_CHECK(t, s && strcmp(s, "<image_placeholder>") == 0, "id_to_token(3)");
    TH_CHECK(t, tokenizer_id_to_token(tk, 3000) == NULL && tokenizer_id_to_token(tk, -1) == NULL, "out of range");
    TH_CHECK(t, tokenizer_is_special(tk, 4) && !tokenizer_is_special(tk, 100), "is_special");
    /* skip_special drops the special tokens when decoding */
    int32_t ids[] = {0, 82, 1016, 466, 3, 522, 1};
    char *out = NULL;
    struct dsr_err err;
    int rc = tokenizer_decode(tk, ids, 7, 1, &out, NULL, &err);
    TH_CHECK(t, rc == 0 && strcmp(out, "mixedtext") == 0, "skip_special: \"%s\"", out ? out : err.msg);
    free(out);
    int32_t bad[] = {5, 3000};
    TH_CHECK(t, tokenizer_decode(tk, bad, 2, 0, &out, NULL, &err) != 0 && out == NULL, "bad id accepted");
    tokenizer_free(tk);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "fixture_cases", test_fixture_cases);
    th_run(&t, "fixture_lookups", test_fixture_lookups);
    return th_finish(&t, "test_tokenizer");
}
