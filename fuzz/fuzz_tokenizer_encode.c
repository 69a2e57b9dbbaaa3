/* Encoding arbitrary bytes as text: with the built-in byte tokenizer (which
 * must decode valid UTF-8 back exactly) and with the byte-level BPE of
 * tests/fixtures/tokenizer-bpe (ids in range, decode succeeds).  The first
 * byte chooses add_special.  Both tokenizers are built once per process. */
#include <string.h>

#include "fuzz_targets.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#define BPE_FIXTURE "tests/fixtures/tokenizer-bpe/tokenizer.json"

static struct tokenizer *g_bytes, *g_bpe;

static void free_tokenizers(void) {
    tokenizer_free(g_bytes);
    tokenizer_free(g_bpe);
}

static int load(void) {
    if (g_bytes) return 0;
    struct dsr_err err;
    static const char *const specials[] = {"<|begin_of_sentence|>", "<|end_of_sentence|>", "<begin_of_image>"};
    if (tokenizer_new_bytes(specials, 3, 256, &g_bytes, &err) || tokenizer_load(BPE_FIXTURE, &g_bpe, &err)) {
        fprintf(stderr, "fuzz_tokenizer_encode: %s (run from the repository root)\n", err.msg);
        abort();
    }
    atexit(free_tokenizers);
    return 0;
}

static void encode_decode(const struct tokenizer *t, const char *text, size_t len, int add_special, int exact) {
    struct tok_ids ids = {0};
    struct dsr_err err;
    size_t bad;
    int valid = utf8_valid(text, len, &bad);
    int rc = tokenizer_encode(t, text, len, add_special, &ids, &err);
    FUZZ_CHECK((rc == 0) == valid); /* only invalid UTF-8 is refused */
    if (rc == 0) {
        int32_t v = tokenizer_vocab_size(t);
        for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(ids.ids[i] >= 0 && ids.ids[i] < v);
        char *out = NULL;
        size_t out_len = 0;
        FUZZ_CHECK(tokenizer_decode(t, ids.ids, ids.n, 0, &out, &out_len, &err) == 0);
        if (exact && !add_special) FUZZ_CHECK(out_len == len && memcmp(out, text, len) == 0);
        free(out);
    }
    tok_ids_free(&ids);
}

int fuzz_tokenizer_encode(const uint8_t *data, size_t size) {
    if (size < 1 || load()) return 0;
    const char *text = (const char *)data + 1;
    encode_decode(g_bytes, text, size - 1, data[0] & 1, 1);
    encode_decode(g_bpe, text, size - 1, data[0] & 1, 0);
    return 0;
}

FUZZ_ENTRY(fuzz_tokenizer_encode)
