/* What dsrd serves: the model, its tokenizer, special ids, templates and
 * image settings, resolved once at start-up from --model (or the embedded
 * default) and the flags.
 *
 * Ownership: the compute worker owns the runtime and is the only thread
 * that touches the model's weights.  The tokenizer, ids, templates and image
 * configs are immutable after runtime_load() and may be read by any thread
 * once the worker has published the runtime as ready. */
#ifndef DSRD_RUNTIME_H
#define DSRD_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>

#include "train/checkpoint.h"
#include "config.h"
#include "base/error.h"
#include "image/preprocess.h"
#include "model/janus_model.h"
#include "proto_request.h"
#include "janus/template.h"
#include "tokenizer/tokenizer.h"

/* --model values naming a model that needs no files. */
#define MODEL_BUILTIN_SHAPES "builtin:shapes" /* the default */
#define MODEL_BUILTIN_RANDOM "builtin:random" /* random weights, byte tokenizer (tests, benchmarks) */
#define RUNTIME_MAX_SOURCE_FILES 3

struct runtime {
    struct janus_model model;
    struct tokenizer *tok;
    struct janus_template tpl;
    struct janus_template_ids ids;   /* bos, boi, eoi, image, n_image_tokens */
    int eos, pad;
    struct janus_image_config vision_img; /* preprocessing for the vision tower */
    struct janus_image_config vq_img;     /* preprocessing for VQ encoding */
    int vq_size;                          /* VQ image side, pixels */
    int n_codes;                          /* codes per image (num_patches²) */
    enum vq_quantizer quantizer;
    float default_cfg_scale;              /* generation_config.json guidance_scale; 0 when absent */
    bool embedded;                        /* builtin:random, deterministic random weights */
    bool builtin_shapes;                  /* the trained default compiled into the binary */
    bool tokenizer_builtin;               /* byte tokenizer (no tokenizer.json) */
                                          /* tok == NULL: no tokenizer at all (none given, and the
                                             special ids do not fit the byte tokenizer) */
    char name[256];
    const char *model_dir;                /* NULL for the builtin models */
    /* Files a checkpoint carries that have no model_dir to be copied from
     * (the embedded model's tokenizer and preprocessor files). */
    struct checkpoint_extra source_files[RUNTIME_MAX_SOURCE_FILES];
    int n_source_files;
    json_t *builtin_eval; /* builtin:shapes: the scores measured for it (eval.json), owned */
};

int  runtime_load(const struct dsrd_config *cfg, struct runtime *rt, struct dsr_err *err);
void runtime_free(struct runtime *rt);

/* Request limits derived from the model and the flags. */
void runtime_limits(const struct runtime *rt, const struct dsrd_config *cfg, struct proto_limits *lim);

/* Whether the tokenizer can decode id (the model's vocabulary may be
 * larger than the tokenizer's; false without a tokenizer). */
bool runtime_tokenizer_knows(const struct runtime *rt, int32_t id);

/* Text of sampled ids, special tokens skipped ("" without a tokenizer).  An id the tokenizer does
 * not know (a model vocabulary padded beyond it, e.g. janus-tiny's 320 ids
 * over the 262 of the byte tokenizer) renders as U+FFFD rather than
 * failing the request.  *text malloc'ed. */
int runtime_decode_text(const struct runtime *rt, const int32_t *ids, int n, char **text, size_t *len,
                        struct dsr_err *err);

/* gen_context of a caption given as ids, for R_U:
 *   [BOS] + tok(user_prefix) + ids + tok(assistant_suffix) + [BOI]
 * with the model's special ids (EOS, BOS, PAD, BOI, EOI, image) dropped from
 * ids.  The ids are used verbatim, never detokenized and re-tokenized, so an
 * id unknown to the tokenizer still counts; with the byte tokenizer this is
 * exactly gen_context(text). */
int runtime_gen_context_ids(const struct runtime *rt, const int32_t *ids, int n, struct tok_ids *out,
                            struct dsr_err *err);

/* builtin:random's config (deterministic random weights). */
void runtime_embedded_config(struct janus_config *c);

#endif
