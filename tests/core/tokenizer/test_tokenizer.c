/* Tokenizer: the HF fixture (tokenizer-bpe), round-trip and robustness
 * properties, and unit tests of every component on small inline
 * tokenizer.json documents. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/rng.h"
#include "tokenizer/tokenizer.h"

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


/* ---- unit tests on inline tokenizer.json documents -------------------- */

/* Builds a tokenizer whose vocab holds the 95 printable ASCII characters
 * (ids 0..94) plus `extra` tokens (ids 95..). With ignore_merges a piece that
 * is a whole vocab token encodes to that one id, so the output shows exactly
 * how the text was split; other pieces fall back to single characters. */
static struct tokenizer *build(struct th *t, const char *extra, const char *merges, const char *model_opts,
                               const char *added, const char *normalizer, const char *pretok, struct dsr_err *err) {
    size_t cap = 1 << 16;
    char *js = malloc(cap);
    size_t n = (size_t)snprintf(js, cap, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[%s],"
                                "\"normalizer\":%s,\"pre_tokenizer\":%s,\"post_processor\":null,\"decoder\":null,"
                                "\"model\":{\"type\":\"BPE\",%s\"vocab\":{",
                                added, normalizer, pretok, model_opts);
    int id = 0;
    for (int c = 0x20; c < 0x7f; c++) {
        if (c == '"' || c == '\\') n += (size_t)snprintf(js + n, cap - n, "\"\\%c\":%d,", c, id++);
        else n += (size_t)snprintf(js + n, cap - n, "\"%c\":%d,", c, id++);
    }
    /* extra: comma-separated JSON strings */
    const char *p = extra;
    while (*p) {
        const char *q = strchr(p + 1, '"');
        while (q && q[-1] == '\\') q = strchr(q + 1, '"');
        n += (size_t)snprintf(js + n, cap - n, "%.*s:%d,", (int)(q - p + 1), p, id++);
        p = q + 1;
        while (*p == ',' || *p == ' ') p++;
    }
    js[n - 1] = '}';
    n += (size_t)snprintf(js + n, cap - n, ",\"merges\":[%s]}}", merges);
    struct tokenizer *tk = NULL;
    int rc = tokenizer_load_json(js, n, &tk, err);
    free(js);
    (void)t;
    return rc == 0 ? tk : NULL;
}

/* Encodes text and compares the tokens, joined by '|', with want. */
static void expect_split(struct th *t, const struct tokenizer *tk, const char *text, const char *want,
                         const char *what) {
    struct tok_ids v = {0};
    struct dsr_err err = {{0}};
    char got[1024] = "";
    if (tokenizer_encode(tk, text, strlen(text), 0, &v, &err) != 0) {
        TH_CHECK(t, 0, "%s: encode failed: %s", what, err.msg);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < v.n && n < sizeof got - 64; i++) {
        const char *s = tokenizer_id_to_token(tk, v.ids[i]);
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", i ? "|" : "", s ? s : "?");
    }
    TH_CHECK(t, strcmp(got, want) == 0, "%s: \"%s\" -> \"%s\", want \"%s\"", what, text, got, want);
    tok_ids_free(&v);
}

#define IM "\"ignore_merges\":true,"

static void test_split_behaviors(struct th *t) {
    struct {
        const char *behavior, *want;
    } cases[] = {
        {"Removed", "How|are|you|doing?"},
        {"Isolated", "How| |are| |you| |doing?"},
        {"MergedWithPrevious", "How |are |you |doing?"},
        {"MergedWithNext", "How| are| you| doing?"},
        {"Contiguous", "How| |are| |you| |doing?"},
    };
    const char *extra = "\"How\",\"are\",\"you\",\"doing?\",\"How \",\"are \",\"you \",\" are\",\" you\",\" doing?\"";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char pre[256];
        snprintf(pre, sizeof pre, "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"%s\",\"invert\":false}",
                 cases[i].behavior);
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, extra, "", IM, "", "null", pre, &err);
        if (!TH_CHECK(t, tk != NULL, "%s: load: %s", cases[i].behavior, err.msg)) continue;
        expect_split(t, tk, "How are you doing?", cases[i].want, cases[i].behavior);
        tokenizer_free(tk);
    }
    /* Consecutive delimiters: Contiguous joins them; MergedWithNext only
     * attaches the last one of a run (HF's fold). */
    const char *extra2 = "\"the\",\"--\",\"final\",\"-final\",\"the-\",\"-\"";
    const char *beh[] = {"Contiguous", "Isolated", "MergedWithNext", "MergedWithPrevious", "Removed"};
    const char *want[] = {"the|--|final", "the|-|-|final", "the|-|-final", "the-|-|final", "the|final"};
    for (int i = 0; i < 5; i++) {
        char pre[256];
        snprintf(pre, sizeof pre, "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"-\"},\"behavior\":\"%s\",\"invert\":false}",
                 beh[i]);
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, extra2, "", IM, "", "null", pre, &err);
        if (!TH_CHECK(t, tk != NULL, "%s: load: %s", beh[i], err.msg)) continue;
        expect_split(t, tk, "the--final", want[i], beh[i]);
        tokenizer_free(tk);
    }
}

static void test_split_invert(struct th *t) {
    /* invert: the letters are the non-delimiters, so the punctuation and
     * spaces between them are what gets merged or removed. */
    const char *extra = "\"ab, \",\"cd.\",\", \",\"ab\",\"cd\"";
    struct {
        const char *behavior, *want;
        int invert;
    } cases[] = {{"MergedWithPrevious", "ab, |cd.", 1}, {"Removed", "ab|cd", 1}, {"Removed", ", |.", 0},
                 {"Isolated", "ab|, |cd|.", 1}};
    for (int i = 0; i < 4; i++) {
        char pre[256];
        snprintf(pre, sizeof pre,
                 "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-z]+\"},\"behavior\":\"%s\",\"invert\":%s}",
                 cases[i].behavior, cases[i].invert ? "true" : "false");
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, extra, "", IM, "", "null", pre, &err);
        if (!TH_CHECK(t, tk != NULL, "invert %s: load: %s", cases[i].behavior, err.msg)) continue;
        expect_split(t, tk, "ab, cd.", cases[i].want, cases[i].behavior);
        tokenizer_free(tk);
    }
}

static void test_digits(struct th *t) {
    struct dsr_err err = {{0}};
    struct tokenizer *tk = build(t, "\"123\",\"ab\"", "", IM, "", "null",
                                 "{\"type\":\"Digits\",\"individual_digits\":true}", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "ab123ab", "ab|1|2|3|ab", "individual digits");
        tokenizer_free(tk);
    }
    tk = build(t, "\"123\",\"ab\"", "", IM, "", "null", "{\"type\":\"Digits\",\"individual_digits\":false}", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "ab123ab", "ab|123|ab", "digit runs");
        tokenizer_free(tk);
    }
}

/* Byte-level tokens: "\u0120" is the byte-level character of a space. */
static void test_bytelevel(struct th *t) {
    const char *extra = "\"\\u0120Hello\",\"\\u0120world\",\"hi\",\"\\u0120\",\"\\u0120there\",\"\\u0120it\",\"'s\","
                        "\"\\u0120ab\\u0120cd\"";
    struct dsr_err err = {{0}};
    struct tokenizer *tk = build(t, extra, "", IM, "", "null",
                                 "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "Hello world", "\xc4\xa0Hello|\xc4\xa0world", "prefix space + regex");
        expect_split(t, tk, "it's", "\xc4\xa0it|'s", "contraction");
        tokenizer_free(tk);
    }
    tk = build(t, extra, "", IM, "", "null", "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}",
               &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        /* \s+(?!\S) takes all but the last space of a run */
        expect_split(t, tk, "hi  there", "hi|\xc4\xa0|\xc4\xa0there", "whitespace run");
        tokenizer_free(tk);
    }
    tk = build(t, extra, "", IM, "", "null", "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":false}",
               &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "ab cd", "\xc4\xa0" "ab\xc4\xa0" "cd", "no regex");
        tokenizer_free(tk);
    }
}

static void test_normalizers(struct th *t) {
    struct {
        const char *normalizer, *text, *want;
    } cases[] = {
        {"{\"type\":\"Lowercase\"}", "HeLLo", "hello"},
        {"{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}", "a b", "a\xe2\x96\x81" "b"},
        {"{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"_\"}", "a   b", "a_b"},
        {"{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"}", "ab", "\xe2\x96\x81" "ab"},
        {"{\"type\":\"NFC\"}", "caf" "e\xcc\x81", "caf\xc3\xa9"},
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
         "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},{\"type\":\"Lowercase\"}]}",
         "A B", "\xe2\x96\x81" "a\xe2\x96\x81" "b"},
    };
    const char *extra = "\"hello\",\"a\\u2581b\",\"a_b\",\"\\u2581ab\",\"caf\\u00e9\",\"\\u2581a\\u2581b\"";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, extra, "", IM, "", cases[i].normalizer, "null", &err);
        if (!TH_CHECK(t, tk != NULL, "normalizer %zu: load: %s", i, err.msg)) continue;
        expect_split(t, tk, cases[i].text, cases[i].want, cases[i].normalizer);
        tokenizer_free(tk);
    }
}

static void test_added_token_options(struct th *t) {
    const char *extra = "\"I saw\",\" x\",\"a \",\"b\",\"x<mask> \",\"hi\",\"there\",\" world\",\"a\"";
    struct {
        const char *added, *norm, *text, *want;
    } cases[] = {
        {"{\"id\":200,\"content\":\"<mask>\",\"lstrip\":true,\"rstrip\":false,\"single_word\":false,\"normalized\":false,"
         "\"special\":true}", "null", "I saw <mask> x", "I saw|<mask>| x"},
        {"{\"id\":200,\"content\":\"<mask>\",\"lstrip\":false,\"rstrip\":true,\"single_word\":false,\"normalized\":false,"
         "\"special\":true}", "null", "a <mask>  b", "a |<mask>|b"},
        {"{\"id\":200,\"content\":\"<mask>\",\"lstrip\":false,\"rstrip\":false,\"single_word\":true,\"normalized\":false,"
         "\"special\":false}", "null", "x<mask> <mask>", "x<mask> |<mask>"},
        {"{\"id\":200,\"content\":\"<mask>\",\"lstrip\":true,\"rstrip\":true,\"single_word\":false,\"normalized\":false,"
         "\"special\":true}", "null", "hi\t<mask>\tthere", "hi|<mask>|there"},
        /* normalized token: matched after Lowercase */
        {"{\"id\":200,\"content\":\"hello\",\"lstrip\":false,\"rstrip\":false,\"single_word\":false,\"normalized\":true,"
         "\"special\":false}", "{\"type\":\"Lowercase\"}", "HELLO WORLD", "hello| world"},
        /* raw token: matched before the normalizer, content untouched */
        {"{\"id\":200,\"content\":\"<BIG>\",\"lstrip\":false,\"rstrip\":false,\"single_word\":false,\"normalized\":false,"
         "\"special\":true}", "{\"type\":\"Lowercase\"}", "A<BIG>B", "a|<BIG>|b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, extra, "", IM, cases[i].added, cases[i].norm, "null", &err);
        if (!TH_CHECK(t, tk != NULL, "added %zu: load: %s", i, err.msg)) continue;
        expect_split(t, tk, cases[i].text, cases[i].want, cases[i].added);
        tokenizer_free(tk);
    }
}

static void test_merges(struct th *t) {
    struct {
        const char *merges, *opts, *text, *want;
    } cases[] = {
        {"[\"a\",\"b\"],[\"ab\",\"c\"]", "", "abc", "abc"},       /* pair form */
        {"\"a b\",\"ab c\"", "", "abcab", "abc|ab"},               /* string form */
        {"\"b c\",\"a b\"", "", "abc", "a|bc"},                    /* rank order */
        {"\"a b\",\"b c\"", "", "abc", "ab|c"},
        {"\"a b\"", "", "aaabbb", "a|a|ab|b|b"},
        {"", "", "ab", "a|b"},                                     /* no merges */
        {"", IM, "ab", "ab"},                                      /* ignore_merges: whole word */
        {"\"a b\"", "", "a~b", "a|~|b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dsr_err err = {{0}};
        struct tokenizer *tk = build(t, "\"ab\",\"bc\",\"abc\"", cases[i].merges, cases[i].opts, "", "null", "null", &err);
        if (!TH_CHECK(t, tk != NULL, "merges %zu: load: %s", i, err.msg)) continue;
        expect_split(t, tk, cases[i].text, cases[i].want, cases[i].merges);
        tokenizer_free(tk);
    }
}

static void test_unknown_chars(struct th *t) {
    /* "\u00e9" is not in the vocab: unk, fused or not, or dropped without unk. */
    struct dsr_err err = {{0}};
    struct tokenizer *tk = build(t, "\"<unk>\"", "", "\"unk_token\":\"<unk>\",", "", "null", "null", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "a\xc3\xa9\xc3\xa9" "b", "a|<unk>|<unk>|b", "unk");
        tokenizer_free(tk);
    }
    tk = build(t, "\"<unk>\"", "", "\"unk_token\":\"<unk>\",\"fuse_unk\":true,", "", "null", "null", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "a\xc3\xa9\xc3\xa9" "b", "a|<unk>|b", "fused unk");
        tokenizer_free(tk);
    }
    tk = build(t, "", "", "", "", "null", "null", &err);
    if (TH_CHECK(t, tk != NULL, "load: %s", err.msg)) {
        expect_split(t, tk, "a\xc3\xa9" "b", "a|b", "no unk: dropped");
        tokenizer_free(tk);
    }
}

static int err_names(struct th *t, const char *what, const char *normalizer, const char *pretok, const char *opts,
                     const char *name) {
    struct dsr_err err = {{0}};
    struct tokenizer *tk = build(t, "", "", opts, "", normalizer, pretok, &err);
    int ok = tk == NULL && strstr(err.msg, name) != NULL;
    TH_CHECK(t, ok, "%s: expected a load error naming \"%s\", got \"%s\"", what, name, tk ? "(loaded)" : err.msg);
    tokenizer_free(tk);
    return ok;
}

static void test_unsupported_components(struct th *t) {
    err_names(t, "normalizer", "{\"type\":\"BertNormalizer\"}", "null", "", "BertNormalizer");
    err_names(t, "nested normalizer", "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Precompiled\"}]}",
              "null", "", "Precompiled");
    err_names(t, "pre_tokenizer", "null", "{\"type\":\"Whitespace\"}", "", "Whitespace");
    err_names(t, "split behavior", "null",
              "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Sideways\",\"invert\":false}", "",
              "Sideways");
    err_names(t, "regex", "null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-z&&[^aeiou]]\"},\"behavior\":\"Isolated\"}",
              "", "not supported");
    err_names(t, "bad regex", "null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(ab\"},\"behavior\":\"Isolated\"}", "",
              "does not compile");
    err_names(t, "suffix", "null", "null", "\"end_of_word_suffix\":\"</w>\",", "end_of_word_suffix");
    err_names(t, "dropout", "null", "null", "\"dropout\":0.1,", "dropout");
    err_names(t, "unk", "null", "null", "\"unk_token\":\"<nope>\",", "<nope>");
    struct dsr_err err = {{0}};
    struct tokenizer *tk = NULL;
    const char *wp = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}";
    TH_CHECK(t, tokenizer_load_json(wp, strlen(wp), &tk, &err) != 0 && strstr(err.msg, "WordPiece"), "model: %s",
             err.msg);
    const char *dec = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"decoder\":{\"type\":\"WordPiece\"}}";
    TH_CHECK(t, tokenizer_load_json(dec, strlen(dec), &tk, &err) != 0 && strstr(err.msg, "WordPiece"), "decoder: %s",
             err.msg);
    const char *pp = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"post_processor\":{\"type\":\"Fancy\"}}";
    TH_CHECK(t, tokenizer_load_json(pp, strlen(pp), &tk, &err) != 0 && strstr(err.msg, "Fancy"), "post: %s", err.msg);
    const char *mm = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\"]}}";
    TH_CHECK(t, tokenizer_load_json(mm, strlen(mm), &tk, &err) != 0 && strstr(err.msg, "merge 0"), "merge: %s", err.msg);
    TH_CHECK(t, tokenizer_load_json("{", 1, &tk, &err) != 0, "truncated JSON accepted");
    TH_CHECK(t, tokenizer_load("/nonexistent/tokenizer.json", &tk, &err) != 0 && strstr(err.msg, "/nonexistent"),
             "missing file: %s", err.msg);
}

static void test_post_processor(struct th *t) {
    const char *js = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"<s>\":1,\"</s>\":2},\"merges\":[]},"
                     "\"added_tokens\":[{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
                     "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
                     "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],"
                     "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},"
                     "\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]}}}}";
    struct tokenizer *tk = NULL;
    struct dsr_err err = {{0}};
    if (!TH_CHECK(t, tokenizer_load_json(js, strlen(js), &tk, &err) == 0, "load: %s", err.msg)) return;
    struct tok_ids v = {0};
    TH_CHECK(t, tokenizer_encode(tk, "aa", 2, 1, &v, &err) == 0 && v.n == 4 && v.ids[0] == 1 && v.ids[1] == 0 &&
                    v.ids[3] == 2, "add_special");
    v.n = 0;
    TH_CHECK(t, tokenizer_encode(tk, "aa", 2, 0, &v, &err) == 0 && v.n == 2, "no add_special");
    /* no decoder: tokens joined by spaces */
    char *out = NULL;
    int32_t ids[] = {1, 0, 0, 2};
    TH_CHECK(t, tokenizer_decode(tk, ids, 4, 0, &out, NULL, &err) == 0 && strcmp(out, "<s> a a </s>") == 0,
             "decode without decoder: \"%s\"", out ? out : err.msg);
    free(out);
    tok_ids_free(&v);
    tokenizer_free(tk);
}

/* ---- properties on the fixture tokenizer ------------------------------ */

static uint32_t random_cp(struct dsr_rng *r) {
    static const uint32_t ascii_pool[] = {' ', ' ', ' ', '\n', '\t', '\r', 'a', 'Z', '0', '7', '.', ',', '\'', '(', '-'};
    switch (rng_next_u64(r) % 8) {
    case 0: return ascii_pool[rng_next_u64(r) % (sizeof ascii_pool / sizeof ascii_pool[0])];
    case 1: return 0x20 + (uint32_t)(rng_next_u64(r) % 95);                  /* printable ASCII */
    case 2: return 0xA0 + (uint32_t)(rng_next_u64(r) % 0x160);               /* Latin-1, Latin Ext */
    case 3: return 0x300 + (uint32_t)(rng_next_u64(r) % 0x70);               /* combining marks */
    case 4: return 0x4E00 + (uint32_t)(rng_next_u64(r) % 0x5200);            /* CJK */
    case 5: return 0x1F300 + (uint32_t)(rng_next_u64(r) % 0x300);            /* emoji */
    case 6: return 0x3000 + (uint32_t)(rng_next_u64(r) % 0x100);             /* CJK punctuation, kana */
    default: {
        uint32_t cp = (uint32_t)(rng_next_u64(r) % 0x110000);                /* anything valid */
        return (cp >= 0xD800 && cp < 0xE000) ? 'x' : cp;
    }
    }
}

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_roundtrip_random_utf8(struct th *t) {
    struct tokenizer *tk = load_fixture(t);
    if (!tk) return;
    struct dsr_rng r;
    rng_seed(&r, 20240611);
    static const char *specials[] = {"<image_placeholder>", "<begin_of_image>", " 123 ", "  \n\n  "};
    int failures = 0;
    for (int iter = 0; iter < 400 && failures < 5; iter++) {
        char text[1024];
        size_t n = 0, want_chars = rng_next_u64(&r) % 120;
        for (size_t k = 0; k < want_chars; k++) {
            if (rng_next_u64(&r) % 40 == 0) {
                const char *s = specials[rng_next_u64(&r) % 4];
                memcpy(text + n, s, strlen(s));
                n += strlen(s);
            } else {
                n += put_utf8(random_cp(&r), text + n);
            }
        }
        struct tok_ids v = {0};
        struct dsr_err err = {{0}};
        char *out = NULL;
        size_t out_len = 0;
        int ok = tokenizer_encode(tk, text, n, 0, &v, &err) == 0 &&
                 tokenizer_decode(tk, v.ids, v.n, 0, &out, &out_len, &err) == 0 && out_len == n &&
                 memcmp(out, text, n) == 0;
        if (!TH_CHECK(t, ok, "round trip failed at iteration %d (%zu bytes): %s", iter, n, err.msg)) failures++;
        free(out);
        tok_ids_free(&v);
    }
    tokenizer_free(tk);
}

static void test_random_bytes(struct th *t) {
    struct tokenizer *tk = load_fixture(t);
    if (!tk) return;
    struct dsr_rng r;
    rng_seed(&r, 7);
    int invalid = 0, valid = 0;
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + rng_next_u64(&r) % 64;
        char *buf = malloc(n); /* exact size: ASan catches any over-read */
        int ascii_heavy = iter % 2;
        for (size_t k = 0; k < n; k++) {
            uint64_t x = rng_next_u64(&r);
            buf[k] = (char)(ascii_heavy && (x & 0x300) ? (x & 0x7F) : (x & 0xFF));
        }
        struct tok_ids v = {0};
        struct dsr_err err = {{0}};
        int rc = tokenizer_encode(tk, buf, n, 0, &v, &err);
        if (rc != 0) {
            invalid++;
            TH_CHECK(t, strstr(err.msg, "UTF-8") != NULL, "unexpected error: %s", err.msg);
        } else {
            valid++;
            char *out = NULL;
            size_t out_len = 0;
            TH_CHECK(t, tokenizer_decode(tk, v.ids, v.n, 0, &out, &out_len, &err) == 0 && out_len == n &&
                            memcmp(out, buf, n) == 0, "valid random bytes did not round-trip");
            free(out);
        }
        tok_ids_free(&v);
        free(buf);
    }
    TH_CHECK(t, invalid > 0 && valid > 0, "generator should give both kinds (%d invalid, %d valid)", invalid, valid);
    /* Specific invalid forms: overlong, surrogate, above U+10FFFF, truncated. */
    const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ab\xe4\xb8", "\xff"};
    for (int i = 0; i < 5; i++) {
        struct tok_ids v = {0};
        struct dsr_err err = {{0}};
        TH_CHECK(t, tokenizer_encode(tk, bad[i], strlen(bad[i]), 0, &v, &err) != 0, "invalid UTF-8 %d accepted", i);
        tok_ids_free(&v);
    }
    /* Lossy decode: lone byte tokens that do not form UTF-8 become U+FFFD. */
    int32_t lone[] = {tokenizer_token_to_id(tk, "\xc3\xa3")}; /* byte 0xE3 alone */
    char *out = NULL;
    struct dsr_err err;
    TH_CHECK(t, lone[0] >= 0 && tokenizer_decode(tk, lone, 1, 0, &out, NULL, &err) == 0 &&
                    strcmp(out, "\xef\xbf\xbd") == 0, "lossy decode");
    free(out);
    tokenizer_free(tk);
}

static void test_byte_tokenizer(struct th *t) {
    const char *specials[] = {"<bos>", "<eos>", "<pad>", "<begin_of_image>", "<end_of_image>", "<image>"};
    struct tokenizer *tk = NULL;
    struct dsr_err err = {{0}};
    if (!TH_CHECK(t, tokenizer_new_bytes(specials, 6, 256, &tk, &err) == 0, "new_bytes: %s", err.msg)) return;
    TH_CHECK(t, tokenizer_vocab_size(tk) == 262, "vocab size %d", tokenizer_vocab_size(tk));
    TH_CHECK(t, tokenizer_token_to_id(tk, "<begin_of_image>") == 259 && tokenizer_token_to_id(tk, "<image>") == 261,
             "special lookups");
    TH_CHECK(t, tokenizer_is_special(tk, 256) && !tokenizer_is_special(tk, 65), "is_special");
    const char *text = "A\xc3\xa9<image>\n\xf0\x9f\x98\x80";
    struct tok_ids v = {0};
    int rc = tokenizer_encode(tk, text, strlen(text), 0, &v, &err);
    int32_t want[] = {65, 0xC3, 0xA9, 261, 10, 0xF0, 0x9F, 0x98, 0x80};
    TH_CHECK(t, rc == 0 && ids_equal(&v, want, 9), "raw byte ids");
    char *out = NULL;
    TH_CHECK(t, tokenizer_decode(tk, v.ids, v.n, 0, &out, NULL, &err) == 0 && strcmp(out, text) == 0, "round trip");
    free(out);
    TH_CHECK(t, tokenizer_decode(tk, v.ids, v.n, 1, &out, NULL, &err) == 0 && strcmp(out, "A\xc3\xa9\n\xf0\x9f\x98\x80") == 0,
             "skip special");
    free(out);
    struct dsr_rng r;
    rng_seed(&r, 99);
    for (int iter = 0; iter < 100; iter++) {
        char s[512];
        size_t n = 0, k = rng_next_u64(&r) % 100;
        for (size_t i = 0; i < k; i++) n += put_utf8(random_cp(&r), s + n);
        v.n = 0;
        out = NULL;
        size_t out_len = 0;
        int ok = tokenizer_encode(tk, s, n, 0, &v, &err) == 0 && v.n == n &&
                 tokenizer_decode(tk, v.ids, v.n, 0, &out, &out_len, &err) == 0 && out_len == n && memcmp(out, s, n) == 0;
        TH_CHECK(t, ok, "byte round trip %d", iter);
        free(out);
    }
    tok_ids_free(&v);
    tokenizer_free(tk);
    TH_CHECK(t, tokenizer_new_bytes(specials, 6, 100, &tk, &err) != 0, "special id below 256 accepted");
}

int main(void) {
    struct th t = {0};
    th_run(&t, "fixture_cases", test_fixture_cases);
    th_run(&t, "fixture_lookups", test_fixture_lookups);
    th_run(&t, "split_behaviors", test_split_behaviors);
    th_run(&t, "split_invert", test_split_invert);
    th_run(&t, "digits", test_digits);
    th_run(&t, "bytelevel", test_bytelevel);
    th_run(&t, "normalizers", test_normalizers);
    th_run(&t, "added_token_options", test_added_token_options);
    th_run(&t, "merges", test_merges);
    th_run(&t, "unknown_chars", test_unknown_chars);
    th_run(&t, "unsupported_components", test_unsupported_components);
    th_run(&t, "post_processor", test_post_processor);
    th_run(&t, "roundtrip_random_utf8", test_roundtrip_random_utf8);
    th_run(&t, "random_bytes", test_random_bytes);
    th_run(&t, "byte_tokenizer", test_byte_tokenizer);
    return th_finish(&t, "test_tokenizer");
}
