/* Janus-Pro prompt templates (proto/API.md, "Templates") as id sequences.
 *
 *   gen_context(p)  = [BOS] + tok(user_prefix + p + assistant_suffix) + [BOI]
 *   und_context(q)  = [BOS] + tok(user_prefix) + [BOI] + [IMG] x N + [EOI]
 *                     + tok(question_prefix + q + assistant_suffix)
 *   rg_target(p)    = tok(target_prefix + p)
 * with tok() the tokenizer without special tokens added. Every string is
 * overridable (the daemon's --template-* flags); the struct only borrows
 * them. Ids come from the model config, so this module does not depend on
 * struct janus_config. */
#ifndef DSR_TEMPLATE_H
#define DSR_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

struct janus_template {
    const char *user_prefix;      /* "<|User|>: " */
    const char *assistant_suffix; /* "\n\n<|Assistant|>:" */
    const char *question_prefix;  /* "\n" between [EOI] and the question */
    const char *target_prefix;    /* " " before the prompt in the R_G target */
    const char *dual_question;    /* "Describe this image." (R_G question) */
};

struct janus_template_ids {
    int32_t bos, boi, eoi, image; /* image = placeholder id filled by the vision path */
    int n_image_tokens;           /* N, from the model config */
};

/* Longest prompt or question accepted by the template functions. */
#define TEMPLATE_MAX_TEXT_BYTES ((size_t)1 << 20)

void janus_template_defaults(struct janus_template *tpl);

/* Appends gen_context of a caption given as ids (a sampled caption that R_U
 * scores): [BOS] + tok(user_prefix) + the caption's ids, less any id in
 * skip[n_skip] (the model's special ids), + tok(assistant_suffix) + [BOI].
 * Joined by id, not re-tokenized text, so it holds exactly the sampled
 * tokens. */
int janus_gen_context_ids(const struct tokenizer *tk, const struct janus_template *tpl,
                          const struct janus_template_ids *ids, const int32_t *caption, int n, const int32_t *skip,
                          int n_skip, struct tok_ids *out, struct dsr_err *err);

/* Appends gen_context(prompt) to out. */
int janus_gen_context(const struct tokenizer *tk, const struct janus_template *tpl,
                      const struct janus_template_ids *ids, const char *prompt, size_t prompt_len,
                      struct tok_ids *out, struct dsr_err *err);

/* Appends und_context(question) to out; question NULL means the template's
 * dual_question. *image_start (may be NULL) receives the index in out of the
 * first of the n_image_tokens placeholders. */
int janus_und_context(const struct tokenizer *tk, const struct janus_template *tpl,
                      const struct janus_template_ids *ids, const char *question, size_t question_len,
                      struct tok_ids *out, size_t *image_start, struct dsr_err *err);

/* Appends the R_G target tok(target_prefix + prompt) to out. */
int janus_rg_target(const struct tokenizer *tk, const struct janus_template *tpl, const char *prompt,
                    size_t prompt_len, struct tok_ids *out, struct dsr_err *err);

#endif
