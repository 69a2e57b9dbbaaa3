/* Request bodies of the dsrd HTTP API (proto/API.md) decoded from JSON into
 * C structs, with every field validated: JSON types, ranges, lengths, token
 * ids within the vocabulary, VQ codes within the codebook, strict base64,
 * PNG decoding under size limits, image paths confined to the image root.
 * On failure a decoder fills a proto_error naming the field path
 * ("items[1].image.png") and returns -1; nothing is left allocated.
 *
 * Ownership: every decoded struct owns its arrays and strings; release it
 * with the matching *_free (safe on a zeroed or partly filled struct).
 * Text is kept as given (UTF-8 checked by jansson); tokenization is the
 * server's job since it needs the model's tokenizer. */
#ifndef DSR_PROTO_REQUEST_H
#define DSR_PROTO_REQUEST_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image_io.h"
#include "image/png_io.h"
#include "proto_error.h"

struct proto_image;

/* Bounds from the model and the server's flags. */
struct proto_limits {
    int32_t vocab_size;      /* token ids in [0, vocab_size) */
    int32_t codebook_size;   /* VQ codes in [0, codebook_size) */
    int n_image_codes;       /* codes of one whole image (num_patches²) */
    int max_items;           /* items (or samples, pairs, queries) per request */
    int max_span_tokens;     /* ids in one token span */
    size_t max_text_bytes;   /* one text field */
    int max_group;           /* rollout n */
    int max_new_tokens;      /* rollout max_tokens */
    size_t max_png_bytes;    /* one decoded PNG file (after base64) */
    struct png_limits png;   /* PNG pixel limits */
    /* {"path"} images: the server resolves and reads them (proto/ touches no
     * files); rel is the path as given, param its parameter name; fills out
     * as PROTO_IMAGE_RGB.  NULL: paths refused. */
    int (*load_path)(const void *ctx, const char *rel, const char *param, const struct proto_limits *lim,
                     struct proto_image *out, struct proto_error *e);
    const void *load_path_ctx;
    float default_cfg_scale;   /* rollout cfg_scale when the request gives none (0: 5, Janus's) */
    float default_temperature; /* rollout temperature when the request gives none (0: 1) */
    float default_top_p;       /* rollout top_p when the request gives none (0: 1, off) */
    int default_top_k;         /* rollout top_k when the request gives none (0: off) */
};

/* {"text": "..."} or {"tokens": [ids]} */
enum proto_span_kind { PROTO_SPAN_NONE, PROTO_SPAN_TEXT, PROTO_SPAN_TOKENS };
struct proto_span {
    enum proto_span_kind kind;
    char *text;       /* PROTO_SPAN_TEXT, NUL-terminated */
    size_t text_len;
    int32_t *tokens;  /* PROTO_SPAN_TOKENS */
    int n_tokens;
};

/* {"png": base64} / {"jpeg": base64} / {"path": "a/b.png"} (decoded to
 * RGB8 here; PNG or JPEG, recognised by signature) or {"codes": [ids]}. */
enum proto_image_kind { PROTO_IMAGE_NONE, PROTO_IMAGE_CODES, PROTO_IMAGE_RGB };
struct proto_image {
    enum proto_image_kind kind;
    int32_t *codes;   /* PROTO_IMAGE_CODES */
    int n_codes;
    uint8_t *rgb;     /* PROTO_IMAGE_RGB: width * height * 3, HWC */
    int width, height;
};

enum proto_task { PROTO_TASK_UNDERSTANDING, PROTO_TASK_GENERATION };

/* POST /logprobs */
struct proto_logprobs_item {
    struct proto_span context;
    struct proto_image image;         /* fills the context's placeholders; may be NONE */
    bool target_is_image;
    struct proto_span target;         /* !target_is_image */
    struct proto_image target_image;  /* target_is_image */
};
struct proto_logprobs_req {
    struct proto_logprobs_item *items;
    int n_items;
};

/* POST /score */
struct proto_score_item {
    enum proto_task task;
    struct proto_image image;
    struct proto_span text;  /* understanding: "response"; generation: "prompt" */
};
struct proto_score_req {
    struct proto_score_item *items;
    int n_items;
    bool token_logprobs;
};

/* POST /rollout */
struct proto_rollout_req {
    enum proto_task task;
    struct proto_span context;  /* NONE unless given; replaces question / prompt */
    struct proto_image image;   /* understanding */
    char *question;             /* understanding; NULL: the template's dual question */
    size_t question_len;
    struct proto_span prompt;   /* generation, when no context */
    int n, max_tokens, top_k;
    float temperature, top_p, cfg_scale;
    bool has_seed;
    uint64_t seed;
    bool score, return_png;
};

/* POST /tokenize and /detokenize */
struct proto_tokenize_req {
    char *text;
    size_t text_len;
    bool add_special;
};
struct proto_detokenize_req {
    int32_t *tokens;
    int n_tokens;
    bool skip_special;
    bool pieces; /* answer each id's text alone instead of the whole text */
};

/* POST /openrlhf/reward: responses[i] = query[i] minus its prompts[i]
 * prefix (the whole query when no_prefix[i]).  A label that does not decode
 * fails only its item: item_errors[i].code is then its 4xx, else 0.  n may
 * be 0 (OpenRLHF sends empty lists to some of several reward URLs). */
struct proto_openrlhf_req {
    int n;
    char **responses;
    size_t *response_lens;
    struct proto_image *images;  /* labels[i]: base64 PNG/JPEG, data: URI, path under --image-root, or [one of those] */
    bool *no_prefix;
    struct proto_error *item_errors;
};

int  proto_decode_logprobs(const json_t *body, const struct proto_limits *lim, struct proto_logprobs_req *out,
                           struct proto_error *e);
void proto_logprobs_free(struct proto_logprobs_req *r);
int  proto_decode_score(const json_t *body, const struct proto_limits *lim, struct proto_score_req *out,
                        struct proto_error *e);
void proto_score_free(struct proto_score_req *r);
int  proto_decode_rollout(const json_t *body, const struct proto_limits *lim, struct proto_rollout_req *out,
                          struct proto_error *e);
void proto_rollout_free(struct proto_rollout_req *r);
int  proto_decode_tokenize(const json_t *body, const struct proto_limits *lim, struct proto_tokenize_req *out,
                           struct proto_error *e);
void proto_tokenize_free(struct proto_tokenize_req *r);
int  proto_decode_detokenize(const json_t *body, const struct proto_limits *lim, struct proto_detokenize_req *out,
                             struct proto_error *e);
void proto_detokenize_free(struct proto_detokenize_req *r);
int  proto_decode_openrlhf(const json_t *body, const struct proto_limits *lim, struct proto_openrlhf_req *out,
                           struct proto_error *e);
void proto_openrlhf_free(struct proto_openrlhf_req *r);

/* Building blocks, exposed for the update/checkpoint decoders and tests.
 * path is the field's path for error messages. */
int  proto_decode_span(const json_t *v, const char *path, const struct proto_limits *lim, struct proto_span *out,
                       struct proto_error *e);
void proto_span_free(struct proto_span *s);
/* whole_codes: codes must be exactly lim->n_image_codes long (an image to
 * see or to score whole); otherwise 1..n_image_codes. */
int  proto_decode_image(const json_t *v, const char *path, const struct proto_limits *lim, bool whole_codes,
                        struct proto_image *out, struct proto_error *e);
void proto_image_free(struct proto_image *im);
/* The n base64 characters s of a PNG or JPEG file (path names the field). */
int  proto_decode_image_base64(const char *s, size_t n, const char *path, const struct proto_limits *lim,
                               struct proto_image *out, struct proto_error *e);
int  proto_decode_ids(const json_t *v, const char *path, int32_t bound, int max_n, const char *what, int32_t **out,
                      int *n_out, struct proto_error *e);
int  proto_decode_task(const json_t *v, const char *path, enum proto_task *out, struct proto_error *e);

/* Rejects members other than the listed ones (NULL-terminated), so a
 * misspelt optional field is an error, not silently ignored. */
int  proto_check_keys(const json_t *obj, const char *path, const char *const *allowed, struct proto_error *e);

#endif
