/* Janus prompt templates: BOS/BOI/EOI placement, placeholder run, target
 * span, overridden strings; on the built-in byte tokenizer (ids = bytes, so
 * the expected sequences are obvious) and on the BPE fixture. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "janus/template.h"
#include "tokenizer/tokenizer.h"

enum { BOS = 256, BOI = 259, EOI = 260, IMG = 261 };

static struct tokenizer *byte_tok(struct th *t) {
    const char *specials[] = {"<bos>", "<eos>", "<pad>", "<boi>", "<eoi>", "<img>"};
    struct tokenizer *tk = NULL;
    struct dsr_err err = {{0}};
    TH_CHECK(t, tokenizer_new_bytes(specials, 6, 256, &tk, &err) == 0, "new_bytes: %s", err.msg);
    return tk;
}

/* out[at ..] holds the bytes of s as ids. */
static int bytes_at(const struct tok_ids *v, size_t at, const char *s) {
    size_t n = strlen(s);
    if (at + n > v->n) return 0;
    for (size_t i = 0; i < n; i++)
        if (v->ids[at + i] != (int32_t)(unsigned char)s[i]) return 0;
    return 1;
}

static const struct janus_template_ids IDS = {.bos = BOS, .boi = BOI, .eoi = EOI, .image = IMG, .n_image_tokens = 16};

static void test_gen_context(struct th *t) {
    struct tokenizer *tk = byte_tok(t);
    if (!tk) return;
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct tok_ids v = {0};
    struct dsr_err err = {{0}};
    const char *full = "<|User|>: a red cube\n\n<|Assistant|>:";
    TH_CHECK(t, janus_gen_context(tk, &tpl, &IDS, "a red cube", 10, &v, &err) == 0, "gen: %s", err.msg);
    TH_CHECK(t, v.n == strlen(full) + 2, "length %zu", v.n);
    TH_CHECK(t, v.ids[0] == BOS && v.ids[v.n - 1] == BOI, "BOS first, BOI last");
    TH_CHECK(t, bytes_at(&v, 1, full), "body");
    /* overridden prefix/suffix */
    v.n = 0;
    tpl.user_prefix = "U: ";
    tpl.assistant_suffix = " A:";
    TH_CHECK(t, janus_gen_context(tk, &tpl, &IDS, "x", 1, &v, &err) == 0 && v.n == 9 && bytes_at(&v, 1, "U: x A:") &&
                    v.ids[8] == BOI, "overridden gen template");
    tok_ids_free(&v);
    tokenizer_free(tk);
}

/* From a sampled caption's ids: the same sequence as from its text, with
 * the special ids (an EOS the sampler kept, say) left out. */
static void test_gen_context_ids(struct th *t) {
    struct tokenizer *tk = byte_tok(t);
    if (!tk) return;
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct tok_ids want = {0}, got = {0};
    struct dsr_err err = {{0}};
    const char *cap = "a red cube";
    int32_t ids[16];
    int n = 0;
    for (const char *c = cap; *c; c++) ids[n++] = (unsigned char)*c;
    ids[n++] = 257; /* EOS */
    const int32_t skip[] = {BOS, 257, BOI, EOI, IMG};
    TH_CHECK(t, janus_gen_context(tk, &tpl, &IDS, cap, strlen(cap), &want, &err) == 0, "gen: %s", err.msg);
    TH_CHECK(t, janus_gen_context_ids(tk, &tpl, &IDS, ids, n, skip, 5, &got, &err) == 0, "gen ids: %s", err.msg);
    TH_CHECK(t, got.n == want.n && memcmp(got.ids, want.ids, want.n * sizeof *want.ids) == 0,
             "gen_context from ids (%zu ids) differs from gen_context from text (%zu)", got.n, want.n);
    tok_ids_free(&want);
    tok_ids_free(&got);
    tokenizer_free(tk);
}

static void test_und_context(struct th *t) {
    struct tokenizer *tk = byte_tok(t);
    if (!tk) return;
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct tok_ids v = {0};
    struct dsr_err err = {{0}};
    size_t img = 0;
    TH_CHECK(t, janus_und_context(tk, &tpl, &IDS, NULL, 0, &v, &img, &err) == 0, "und: %s", err.msg);
    size_t pre = strlen("<|User|>: ");
    TH_CHECK(t, v.ids[0] == BOS && bytes_at(&v, 1, "<|User|>: ") && v.ids[1 + pre] == BOI, "prefix and BOI");
    TH_CHECK(t, img == pre + 2, "image_start %zu", img);
    int run = 1;
    for (int i = 0; i < IDS.n_image_tokens; i++) run &= v.ids[img + (size_t)i] == IMG;
    TH_CHECK(t, run, "16 placeholders");
    size_t eoi = img + (size_t)IDS.n_image_tokens;
    TH_CHECK(t, v.ids[eoi] == EOI, "EOI after the placeholders");
    const char *tail = "\nDescribe this image.\n\n<|Assistant|>:";
    TH_CHECK(t, bytes_at(&v, eoi + 1, tail) && v.n == eoi + 1 + strlen(tail), "default dual question tail");
    size_t count = 0;
    for (size_t i = 0; i < v.n; i++) count += v.ids[i] == IMG;
    TH_CHECK(t, count == 16, "placeholder count %zu", count);
    /* explicit question and overridden separator / question */
    v.n = 0;
    tpl.question_prefix = " | ";
    tpl.dual_question = "What is it?";
    TH_CHECK(t, janus_und_context(tk, &tpl, &IDS, NULL, 0, &v, &img, &err) == 0 &&
                    bytes_at(&v, eoi + 1, " | What is it?\n\n<|Assistant|>:"), "overridden dual question");
    v.n = 0;
    TH_CHECK(t, janus_und_context(tk, &tpl, &IDS, "Why?", 4, &v, &img, &err) == 0 &&
                    bytes_at(&v, eoi + 1, " | Why?\n\n<|Assistant|>:"), "explicit question");
    struct janus_template_ids bad = IDS;
    bad.n_image_tokens = 0;
    TH_CHECK(t, janus_und_context(tk, &tpl, &bad, NULL, 0, &v, &img, &err) != 0, "0 image tokens accepted");
    tok_ids_free(&v);
    tokenizer_free(tk);
}

static void test_rg_target(struct th *t) {
    struct tokenizer *tk = byte_tok(t);
    if (!tk) return;
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct tok_ids v = {0};
    struct dsr_err err = {{0}};
    /* appended after a context, the target span starts where the context ends */
    TH_CHECK(t, janus_und_context(tk, &tpl, &IDS, NULL, 0, &v, NULL, &err) == 0, "und");
    size_t start = v.n;
    TH_CHECK(t, janus_rg_target(tk, &tpl, "a cat", 5, &v, &err) == 0 && v.n == start + 6 && bytes_at(&v, start, " a cat"),
             "target span");
    tok_ids_free(&v);
    tokenizer_free(tk);
}

/* On the BPE fixture the template text must be tokenized as one string. */
static void test_bpe_fixture(struct th *t) {
    struct tokenizer *tk = NULL;
    struct dsr_err err = {{0}};
    if (!TH_CHECK(t, tokenizer_load("tests/fixtures/tokenizer-bpe/tokenizer.json", &tk, &err) == 0, "load: %s", err.msg))
        return;
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct janus_template_ids ids = {.bos = 0, .boi = 4, .eoi = 5, .image = 3, .n_image_tokens = 8};
    struct tok_ids v = {0}, body = {0};
    const char *full = "<|User|>: Hello world\n\n<|Assistant|>:";
    TH_CHECK(t, janus_gen_context(tk, &tpl, &ids, "Hello world", 11, &v, &err) == 0, "gen: %s", err.msg);
    TH_CHECK(t, tokenizer_encode(tk, full, strlen(full), 0, &body, &err) == 0, "encode");
    int same = v.n == body.n + 2 && v.ids[0] == 0 && v.ids[v.n - 1] == 4;
    for (size_t i = 0; same && i < body.n; i++) same = v.ids[i + 1] == body.ids[i];
    TH_CHECK(t, same, "gen_context = [BOS] + tok(full) + [BOI]");
    char *out = NULL;
    TH_CHECK(t, tokenizer_decode(tk, v.ids + 1, v.n - 2, 0, &out, NULL, &err) == 0 && strcmp(out, full) == 0,
             "decodes back to the template text");
    free(out);
    v.n = 0;
    TH_CHECK(t, janus_rg_target(tk, &tpl, "Hello world", 11, &v, &err) == 0, "target");
    TH_CHECK(t, tokenizer_decode(tk, v.ids, v.n, 0, &out, NULL, &err) == 0 && strcmp(out, " Hello world") == 0,
             "target decodes to \" Hello world\"");
    free(out);
    tok_ids_free(&v);
    tok_ids_free(&body);
    tokenizer_free(tk);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "gen_context", test_gen_context);
    th_run(&t, "gen_context_ids", test_gen_context_ids);
    th_run(&t, "und_context", test_und_context);
    th_run(&t, "rg_target", test_rg_target);
    th_run(&t, "bpe_fixture", test_bpe_fixture);
    return th_finish(&t, "test_template");
}
