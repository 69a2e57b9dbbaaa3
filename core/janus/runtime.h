/* What dsrd serves: the model, its tokenizer, special ids, templates and
 * image settings, resolved once at start-up from --model (or the embedded
 * default) and the flags.
 *
 * Ownership: the compute worker owns the runtime and is the only thread
 * that touches the model's weights.  The tokenizer, ids, templates and image
 * configs are immutable after janus_runtime_load() and may be read by any thread
 * once the worker has published the runtime as ready. */
#ifndef DSRD_RUNTIME_H
#define DSRD_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"
#include "image/preprocess.h"
#include "janus/template.h"
#include "model/janus_model.h"
#include "model/vq.h"
#include "tokenizer/tokenizer.h"

/* --model values naming a model that needs no files. */
#define MODEL_BUILTIN_SHAPES "builtin:shapes" /* the default */
#define MODEL_BUILTIN_RANDOM "builtin:random" /* random weights, byte tokenizer (tests, benchmarks) */
#define RUNTIME_MAX_SOURCE_FILES 3

/* How to load: which model, and the settings flags may override. */
struct janus_runtime_options {
    const char *model;          /* a checkpoint directory, MODEL_BUILTIN_*, or NULL (builtin:shapes) */
    enum vq_quantizer quantizer;
    enum janus_weights weights; /* storage of weight matrices (AUTO when zero-initialised) */
    const struct lora_config *lora; /* LoRA adapters to declare (fresh: B = 0), or NULL */
    struct janus_template tpl;
    int boi_id, eoi_id;         /* -1: from generation_config.json or the tokenizer */
};

/* A small file a checkpoint of this model carries (borrowed bytes). */
struct janus_source_file {
    const char *name;
    const char *text; /* len bytes */
    size_t len;
};

struct janus_runtime {
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
    double default_cfg_scale;             /* generation_config.json guidance_scale; 0 when absent */
    double default_temperature;           /* generation_config.json temperature; 0 when absent */
    double default_top_p;                 /* generation_config.json top_p; 0 when absent */
    int default_top_k;                    /* generation_config.json top_k; 0 when absent (off) */
    bool embedded;                        /* builtin:random, deterministic random weights */
    bool builtin_shapes;                  /* the trained default compiled into the binary */
    bool tokenizer_builtin;               /* byte tokenizer (no tokenizer.json) */
                                          /* tok == NULL: no tokenizer at all (none given, and the
                                             special ids do not fit the byte tokenizer) */
    char name[256];
    const char *model_dir;                /* NULL for the builtin models */
    /* Files a checkpoint carries that have no model_dir to be copied from
     * (the embedded model's tokenizer and preprocessor files). */
    struct janus_source_file source_files[RUNTIME_MAX_SOURCE_FILES];
    int n_source_files;
    json_t *builtin_eval; /* builtin:shapes: the scores measured for it (eval.json), owned */
};

int  janus_runtime_load(const struct janus_runtime_options *opt, struct janus_runtime *rt, struct dsr_err *err);
void janus_runtime_free(struct janus_runtime *rt);

/* Whether the tokenizer can decode id (the model's vocabulary may be
 * larger than the tokenizer's; false without a tokenizer). */
bool janus_runtime_tokenizer_knows(const struct janus_runtime *rt, int32_t id);

/* Text of sampled ids, special tokens skipped ("" without a tokenizer).  An id the tokenizer does
 * not know (a model vocabulary padded beyond it, e.g. janus-tiny's 320 ids
 * over the 262 of the byte tokenizer) renders as U+FFFD rather than
 * failing the request.  *text malloc'ed. */
int janus_runtime_decode_text(const struct janus_runtime *rt, const int32_t *ids, int n, char **text, size_t *len,
                        struct dsr_err *err);

/* gen_context of a caption given as ids, for R_U:
 *   [BOS] + tok(user_prefix) + ids + tok(assistant_suffix) + [BOI]
 * with the model's special ids (EOS, BOS, PAD, BOI, EOI, image) dropped from
 * ids.  The ids are used verbatim, never detokenized and re-tokenized, so an
 * id unknown to the tokenizer still counts; with the byte tokenizer this is
 * exactly gen_context(text). */
int janus_runtime_gen_context_ids(const struct janus_runtime *rt, const int32_t *ids, int n, struct tok_ids *out,
                            struct dsr_err *err);

/* builtin:random's config (deterministic random weights). */
void janus_runtime_embedded_config(struct janus_config *c);

#endif /* DSR_JANUS_RUNTIME_H */
