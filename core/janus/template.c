#include "janus/template.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void janus_template_defaults(struct janus_template *tpl) {
    tpl->user_prefix = "<|User|>: ";
    tpl->assistant_suffix = "\n\n<|Assistant|>:";
    tpl->question_prefix = "\n";
    tpl->target_prefix = " ";
    tpl->dual_question = "Describe this image.";
}

/* Encodes a + b + c as one string: tokenizing the pieces separately would
 * split words differently at the joins. */
static int encode_joined(const struct tokenizer *tk, const char *a, const char *b, size_t blen, const char *c,
                         struct tok_ids *out, struct dsr_err *err) {
    if (blen > TEMPLATE_MAX_TEXT_BYTES)
        return dsr_errf(err, "template: text of %zu bytes exceeds the limit of %zu", blen, TEMPLATE_MAX_TEXT_BYTES);
    size_t alen = strlen(a), clen = strlen(c), len = alen + blen + clen;
    char *s = malloc(len + 1);
    if (!s) return dsr_errf(err, "template: out of memory");
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen);
    memcpy(s + alen + blen, c, clen);
    s[len] = 0;
    int rc = tokenizer_encode(tk, s, len, 0, out, err);
    free(s);
    return rc;
}

/* The model's special ids may lie past the tokenizer's vocab (an embedding
 * row without a token string), so they are only checked for sign. */
static int check_ids(const struct janus_template_ids *ids, struct dsr_err *err) {
    if (ids->bos < 0 || ids->boi < 0 || ids->eoi < 0 || ids->image < 0)
        return dsr_errf(err, "template: special token ids must be non-negative");
    if (ids->n_image_tokens <= 0 || ids->n_image_tokens > 65536)
        return dsr_errf(err, "template: %d image tokens is out of range", ids->n_image_tokens);
    return 0;
}

int janus_gen_context(const struct tokenizer *tk, const struct janus_template *tpl,
                      const struct janus_template_ids *ids, const char *prompt, size_t prompt_len,
                      struct tok_ids *out, struct dsr_err *err) {
    if (check_ids(ids, err) || tok_ids_push(out, ids->bos, err) ||
        encode_joined(tk, tpl->user_prefix, prompt, prompt_len, tpl->assistant_suffix, out, err))
        return -1;
    return tok_ids_push(out, ids->boi, err);
}

int janus_gen_context_ids(const struct tokenizer *tk, const struct janus_template *tpl,
                          const struct janus_template_ids *ids, const int32_t *caption, int n, const int32_t *skip,
                          int n_skip, struct tok_ids *out, struct dsr_err *err) {
    if (check_ids(ids, err) || tok_ids_push(out, ids->bos, err) ||
        tokenizer_encode(tk, tpl->user_prefix, strlen(tpl->user_prefix), 0, out, err))
        return -1;
    for (int i = 0; i < n; i++) {
        bool special = false;
        for (int k = 0; k < n_skip && !special; k++) special = caption[i] == skip[k];
        if (!special && tok_ids_push(out, caption[i], err)) return -1;
    }
    if (tokenizer_encode(tk, tpl->assistant_suffix, strlen(tpl->assistant_suffix), 0, out, err)) return -1;
    return tok_ids_push(out, ids->boi, err);
}

int janus_und_context(const struct tokenizer *tk, const struct janus_template *tpl,
                      const struct janus_template_ids *ids, const char *question, size_t question_len,
                      struct tok_ids *out, size_t *image_start, struct dsr_err *err) {
    if (!question) {
        question = tpl->dual_question;
        question_len = strlen(question);
    }
    if (check_ids(ids, err) || tok_ids_push(out, ids->bos, err) ||
        tokenizer_encode(tk, tpl->user_prefix, strlen(tpl->user_prefix), 0, out, err) ||
        tok_ids_push(out, ids->boi, err))
        return -1;
    if (image_start) *image_start = out->n;
    for (int i = 0; i < ids->n_image_tokens; i++)
        if (tok_ids_push(out, ids->image, err)) return -1;
    if (tok_ids_push(out, ids->eoi, err)) return -1;
    return encode_joined(tk, tpl->question_prefix, question, question_len, tpl->assistant_suffix, out, err);
}

int janus_rg_target(const struct tokenizer *tk, const struct janus_template *tpl, const char *prompt,
                    size_t prompt_len, struct tok_ids *out, struct dsr_err *err) {
    return encode_joined(tk, tpl->target_prefix, prompt, prompt_len, "", out, err);
}
