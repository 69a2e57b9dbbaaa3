/* Response bodies of the dsrd HTTP API (proto/API.md) from result structs.
 * Every encoder returns a new jansson reference (NULL only when out of
 * memory).  Non-finite numbers, which JSON cannot carry, become null. */
#ifndef DSR_PROTO_RESPONSE_H
#define DSR_PROTO_RESPONSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto_request.h"

/* "model" and "policy_version", carried by every model response. */
struct proto_stamp {
    const char *model;
    long policy_version;
};

/* One teacher-forced span: /logprobs items, /score items. */
struct proto_lp_result {
    const float *logprobs; /* [count] */
    int count;
    const int32_t *codes;  /* the target image's codes (/logprobs image targets), else NULL */
};

json_t *proto_encode_logprobs(const struct proto_lp_result *items, int n, const struct proto_stamp *st);
/* reward = mean; logprobs only when token_logprobs. */
json_t *proto_encode_score(const struct proto_lp_result *items, int n, bool token_logprobs,
                           const struct proto_stamp *st);

struct proto_rollout_result {
    const char *id;         /* UUID text */
    const int32_t *ids;     /* tokens (understanding) or codes (generation) */
    const float *logprobs;  /* [n_ids] */
    int n_ids;
    const char *text;       /* understanding: decoded tokens */
    const char *png_b64;    /* generation with return_png, else NULL */
    bool has_reward;
    double reward;
};
/* The token ids the group was sampled and scored with, returned so that a
 * trainer can cite them in /update without rebuilding them: context (the
 * sampling context), and for a scored generation group rg_context and
 * rg_target (what R_G teacher-forces: rg_target after rg_context with the
 * image's placeholders filled).  n_rg_* = 0: absent. */
struct proto_rollout_contexts {
    const int32_t *context;
    int n_context;
    const int32_t *rg_context, *rg_target;
    int n_rg_context, n_rg_target;
};
json_t *proto_encode_rollout(enum proto_task task, const struct proto_rollout_result *r, int n,
                             const struct proto_rollout_contexts *ctx, const struct proto_stamp *st);

/* GET /model: what a client needs to build requests for this model. */
struct proto_model_info {
    const char *name, *description;
    bool embedded_random_weights;
    long long params_total, params_trainable;
    int vocab_size;
    int bos, eos, pad, boi, eoi, image; /* special token ids */
    int image_size, vq_image_size, num_image_tokens, codebook_size;
    const char *quantizer;              /* "l2" | "euclidean" */
    const char *tokenizer;              /* "tokenizer.json" | "builtin-bytes" | "none" */
    const char *user_prefix, *assistant_suffix, *question_prefix, *target_prefix, *dual_question;
    int hidden_size, num_hidden_layers, num_attention_heads, max_position_embeddings;
    double default_cfg_scale;
    double default_temperature;
    double default_top_p;               /* 1: off */
    int default_top_k;                  /* 0: off */
    const json_t *measured;             /* builtin:shapes' eval.json, or NULL */
    const char *weights_dtype;          /* "bf16" | "float32" | "mixed" (frozen BF16, trainable float32) */
    long long weights_bytes;            /* resident bytes of the weights */
    long long optimizer_bytes;          /* gradients + AdamW moments (0 before the first /update) */
    const char *kv_cache_dtype;         /* rollouts' KV cache: "float32" | "bf16" (--kv-dtype) */
    int lora_rank;                      /* 0: no adapters ("lora": null) */
    double lora_alpha;
    const char *lora_targets;           /* comma-separated projection names */
    const char *adapter;                /* --adapter directory, or NULL */
};
json_t *proto_encode_model(const struct proto_model_info *m, const struct proto_stamp *st);

json_t *proto_encode_tokens(const int32_t *ids, int n);
json_t *proto_encode_text(const char *text, size_t len);

/* OpenRLHF: rewards = scores = R_U per query. */
/* One /openrlhf/reward item: its reward, or why it has none. */
struct proto_openrlhf_item {
    double reward;
    const struct proto_error *error; /* non-NULL: reward is null, this says why */
    bool no_prefix;                  /* the prompt was not a prefix: the whole query was scored */
    int specials_stripped;           /* special-token texts cut from the end (EOS...) */
};
/* {"rewards", "scores", "extra_logs", "errors", "no_prompt_prefix"}:
 * extra_logs holds numbers and per-item number lists only, because OpenRLHF
 * makes a tensor of each value; the reasons go in "errors". */
json_t *proto_encode_openrlhf(const struct proto_openrlhf_item *items, int n, const struct proto_stamp *st);

/* Number or null (NaN/inf). */
json_t *proto_real(double x);
json_t *proto_float_array(const float *x, int n);
json_t *proto_int_array(const int32_t *x, int n);

#endif
