/* proto/ unit tests: strict base64, request decoding without a server, and
 * error envelopes for messages that are not valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "harness.h"
#include "printable.h"
#include "proto_error.h"
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

/* printable_ascii escapes exactly the unsafe bytes and never cuts an escape. */
static void test_printable(struct th *t) {
    char out[64];
    printable_ascii("GET /a\\b\x1b[1m\n\xc3\xa9", out, sizeof out);
    TH_CHECK(t, strcmp(out, "GET /a\\x5cb\\x1b[1m\\x0a\\xc3\\xa9") == 0, "escaped: %s", out);
    printable_ascii("ab\x01", out, 6); /* "ab" + a 4-byte escape does not fit in 5 */
    TH_CHECK(t, strcmp(out, "ab") == 0, "cut: %s", out);
    printable_ascii("abcdef", out, 4);
    TH_CHECK(t, strcmp(out, "abc") == 0, "cut plain: %s", out);
}

/* A message cut inside a multi-byte character (proto_fail truncates at
 * PROTO_MSG_MAX - 1 bytes), or quoting raw bytes, still gives an envelope. */
static void test_error_envelope_bad_utf8(struct th *t) {
    char quote[2 * PROTO_MSG_MAX];
    for (size_t i = 0; i + 2 < sizeof quote; i += 2) quote[i] = '\xc3', quote[i + 1] = '\xa9'; /* é… */
    quote[sizeof quote - 2] = '\0';
    struct proto_error e;
    proto_fail(&e, 400, "prompt\xff", "xy%s", quote); /* 2 + 509 bytes: the cut lands mid-character */
    json_t *j = proto_error_json(&e);
    json_t *err = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *param = json_string_value(json_object_get(err, "param"));
    TH_CHECK(t, j && msg && strncmp(msg, "xy\\xc3\\xa9", 10) == 0 && param && strcmp(param, "prompt\\xff") == 0,
             "envelope: %s / %s", msg ? msg : "(null)", param ? param : "(null)");
    json_decref(j);
    /* valid UTF-8 is kept as it is */
    proto_fail(&e, 404, NULL, "no file caf\xc3\xa9.png");
    j = proto_error_json(&e);
    msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    TH_CHECK(t, msg && strcmp(msg, "no file caf\xc3\xa9.png") == 0, "utf-8 message: %s", msg ? msg : "(null)");
    json_decref(j);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "base64", test_base64);
    th_run(&t, "score_decoding", test_score_decoding);
    th_run(&t, "printable", test_printable);
    th_run(&t, "error_envelope_bad_utf8", test_error_envelope_bad_utf8);
    return th_finish(&t, "test_proto");
}
