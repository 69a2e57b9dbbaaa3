/* Client-side Janus contexts (API.md "Templates"), so that an /update sample
 * can carry the exact context its rollout was sampled from, whichever server
 * sampled it.  Special ids and template strings come from the learner's
 * GET /model; tok() is the server's /tokenize (no special tokens).
 *
 *   gen_context(p) = [BOS] + tok(user_prefix + p + assistant_suffix) + [BOI]
 *   und_context(q) = [BOS] + tok(user_prefix) + [BOI] + [IMG] x N + [EOI]
 *                    + tok(question_prefix + q + assistant_suffix) */
#ifndef DSR_TRAIN_CONTEXTS_H
#define DSR_TRAIN_CONTEXTS_H

#include "dsr_client.h"

#define CTX_TEMPLATE_MAX 256

struct ctx_templates {
    json_int_t bos, boi, eoi, image;
    json_int_t n_image_tokens;
    char user_prefix[CTX_TEMPLATE_MAX];
    char assistant_suffix[CTX_TEMPLATE_MAX];
    char question_prefix[CTX_TEMPLATE_MAX];
};

/* Reads ids and templates from a GET /model response (templates absent from
 * it keep the Janus-Pro defaults).  Returns -1 with e filled when an id is missing. */
int ctx_templates_from_model(struct ctx_templates *t, const json_t *model, struct dsr_call_err *e);

/* NEW json arrays of token ids, or NULL with e filled. */
json_t *ctx_gen_tokens(const struct ctx_templates *t, const struct dsr_client *c, const char *prompt,
                       struct dsr_call_err *e);
json_t *ctx_und_tokens(const struct ctx_templates *t, const struct dsr_client *c, const char *question,
                       struct dsr_call_err *e);

#endif
