/* tokenizer.json loading; a tokenizer that loads must encode and decode a
 * fixed text mixing ASCII, multi-byte UTF-8, digits, whitespace and
 * DeepSeek's special-token spellings. */
#include <string.h>

#include "fuzz_targets.h"
#include "tokenizer/tokenizer.h"

int fuzz_tokenizer_load(const uint8_t *data, size_t size) {
    struct tokenizer *t = NULL;
    struct dsr_err err;
    if (tokenizer_load_json((const char *)data, size, &t, &err) != 0) return 0;
    static const char text[] = "Hello w\xc3\xb6rld 12345  \n\t<begin_of_image><|User|>: \xe6\x97\xa5\xe6\x9c\xac!";
    struct tok_ids ids = {0};
    if (tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &err) == 0) {
        int32_t v = tokenizer_vocab_size(t);
        for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(ids.ids[i] >= 0 && ids.ids[i] < v);
        char *out = NULL;
        size_t len = 0;
        /* NUL-terminated at len; interior NULs are text (the byte-level
         * token for 0x00, or, with ids shared by two vocab strings, a
         * string other than the one encoded: the first is kept, as HF) */
        if (tokenizer_decode(t, ids.ids, ids.n, 0, &out, &len, &err) == 0) FUZZ_CHECK(out && out[len] == '\0');
        free(out);
    }
    tok_ids_free(&ids);
    (void)tokenizer_token_to_id(t, "<begin_of_image>");
    for (int32_t id = -1; id < 300; id++) (void)tokenizer_id_to_token(t, id);
    tokenizer_free(t);
    return 0;
}

FUZZ_ENTRY(fuzz_tokenizer_load)
