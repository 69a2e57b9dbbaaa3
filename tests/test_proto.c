/* proto/ unit tests: strict base64 and request decoding without a server. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "harness.h"
#include "proto_request.h"

static void test_base64(struct th *t) {
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"}; /* RFC 4648 §10 */
    for (int i = 0; i < 7; i++) {
        char *e = base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        TH_CHECK(t, e && strcmp(e, enc[i]) == 0, "encode '%s' -> '%s'", plain[i], e ? e : "(null)");
        free(e);
        uint8_t *d;
        size_t n, bad;
        TH_CHECK(t, base64_decode(enc[i], strlen(enc[i]), &d, &n, &bad) == 0 && n == strlen(plain[i]) &&
                        memcmp(d, plain[i], n) == 0,
                 "decode '%s'", enc[i]);
        free(d);
    }
    const char *reject[] = {"Zg=", "Zh==", "Zm9=", "Z===", "Zg==Zg==", "Zm9v\n", "Zm 9", "Zm-v", "=Zm9"};
    for (size_t i = 0; i < sizeof reject / sizeof reject[0]; i++) {
        uint8_t *d;
        size_t n, bad;
        TH_CHECK(t, base64_decode(reject[i], strlen(reject[i]), &d, &n, &bad) == -1 && d == NULL,
                 "accepted non-canonical '%s'", reject[i]);
    }
}

static void limits(struct proto_limits *lim) {
    memset(lim, 0, sizeof *lim);
    lim->vocab_size = 100;
    lim->codebook_size = 16;
    lim->n_image_codes = 4;
    lim->max_items = 3;
    lim->max_span_tokens = 8;
    lim->max_text_bytes = 32;
    lim->max_group = 8;
    lim->max_new_tokens = 16;
    lim->max_png_bytes = 1 << 20;
    png_limits_default(&lim->png);
}

/* Decodes body; returns the error param ("" on success). */
static const char *decode_score(const char *body, struct proto_error *e) {
    struct proto_limits lim;
    limits(&lim);
    json_t *j = json_loads(body, 0, NULL);
    struct proto_score_req r;
    e->param[0] = 0;
    int rc = j ? proto_decode_score(j, &lim, &r, e) : -1;
    if (rc == 0) proto_score_free(&r);
    json_decref(j);
    return rc == 0 ? "" : e->param;
}

static void test_score_decoding(struct th *t) {
    struct proto_error e;
    const char *ok = "{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [1, 2]}, \"image\": {\"codes\": [0, 1, 2, 15]}}]}";
    TH_CHECK(t, strcmp(decode_score(ok, &e), "") == 0, "valid body rejected: %s", e.message);
    struct {
        const char *body, *param;
    } bad[] = {
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [1, 2]}, \"image\": {\"codes\": [0, 1, 2, 16]}}]}",
         "items[0].image.codes[3]"},
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [1, 2]}, \"image\": {\"codes\": [0, 1, 2]}}]}",
         "items[0].image.codes"},
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [100]}, \"image\": {\"codes\": [0, 1, 2, 3]}}]}",
         "items[0].prompt.tokens[0]"},
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"text\": \"x\", \"tokens\": [1]}, \"image\": {\"codes\": [0, 1, 2, 3]}}]}",
         "items[0].prompt"},
        {"{\"items\": [{\"task\": \"understanding\", \"prompt\": {\"text\": \"x\"}, \"image\": {\"codes\": [0, 1, 2, 3]}}]}",
         "items[0].prompt"},
        {"{\"items\": [{\"task\": \"understanding\", \"response\": {\"text\": \"this text is longer than thirty-two bytes\"}, \"image\": {\"codes\": [0, 1, 2, 3]}}]}",
         "items[0].response.text"},
        {"{\"items\": [{}, {}, {}, {}]}", "items"},
        {"{\"items\": [], \"token_logprobs\": true}", "items"},
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [1]}, \"image\": {\"codes\": [0, 1, 2, 3]}}], \"token_logprobs\": 1}",
         "token_logprobs"},
        {"{\"items\": [{\"task\": \"generation\", \"prompt\": {\"tokens\": [1]}, \"image\": {\"path\": \"a.png\"}}]}",
         "items[0].image.path"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = decode_score(bad[i].body, &e);
        TH_CHECK(t, strcmp(p, bad[i].param) == 0 && e.code == 400, "case %zu: param '%s' (want '%s'), %s", i, p,
                 bad[i].param, e.message);
    }
}

int main(void) {
    struct th t = {0};
    th_run(&t, "base64", test_base64);
    th_run(&t, "score_decoding", test_score_decoding);
    return th_finish(&t, "test_proto");
}
