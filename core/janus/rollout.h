/* Group samplers for rollouts: G captions after an understanding context, or
 * G images (VQ codes) after a generation context with classifier-free
 * guidance, each with the policy log-probability of every sampled token.
 *
 * The policy log-prob is log_softmax of the *conditional* logits at
 * temperature 1 under the current weights — what GRPO needs as old
 * log-probs — not the guided or temperature-scaled sampling distribution.
 *
 * Text: the context is prefilled once (slot 0) and the other G-1 slots read
 * its KV cache as a shared prefix (kv_cache_share_prefix: no copy, and decode
 * attention streams it once per step for the whole group); every step then
 * decodes the still-active samples as one batch (one GEMM over their rows).  Images: a conditional and an
 * unconditional row per sample (unconditional = the context with every token
 * except BOS and BOI replaced by PAD), 2G rows per step; guided logits
 * u + s·(c − u); the sampled code's generation embedding feeds both rows.
 * The two prefills are shared the same way (slots 0 and 1).  At s = 1 the
 * guided logits are the conditional ones, so only the conditional row runs
 * (G rows per step, half the work).
 *
 * Reproducibility: sample g draws from its own RNG stream seeded from
 * (seed, g), so a group's output depends only on the request and the thread
 * count (through float summation order), never on other requests. */
#ifndef DSR_SAMPLER_H
#define DSR_SAMPLER_H

#include <stdint.h>

#include "base/error.h"
#include "model/janus_model.h"
#include "base/rng.h"
#include "nn/kv_cache.h"

#define SAMPLER_MAX_GROUP 64

struct sampling_params {
    float temperature; /* 0: greedy (argmax, lowest index on ties) */
    int top_k;         /* 0: off */
    float top_p;       /* 1: off */
    uint64_t seed;
    enum kv_dtype kv_dtype; /* the rollout's KV cache (nn/kv_cache.h); KV_F32 when zeroed */
};

struct sample_candidate {
    float p;
    int id;
};

/* Scratch for sample_token over a vocabulary of V (owned, reused per step). */
struct sample_scratch {
    float *probs;                      /* [V] */
    struct sample_candidate *sorted;   /* [V], for top-k / top-p */
};
int  sample_scratch_init(struct sample_scratch *s, int V, struct dsr_err *err);
void sample_scratch_free(struct sample_scratch *s);

/* Draws one token from logits[V] with temperature, then top-k, then top-p
 * (HF's order); greedy when temperature == 0. */
int sample_token(const float *logits, int V, const struct sampling_params *p, struct dsr_rng *rng,
                 struct sample_scratch *s);

struct text_group {
    int n;                /* G */
    int max_tokens;
    int32_t *tokens;      /* [G, max_tokens] */
    float *logprobs;      /* [G, max_tokens] */
    int *lengths;         /* [G]; includes the EOS token when one was sampled */
    double prefill_s;     /* seconds from the call to the first decode step: setup, prefill, first logits */
};

struct image_group {
    int n;                /* G */
    int n_codes;          /* the model's image tokens (num_patches²) */
    int32_t *codes;       /* [G, n_codes] */
    float *logprobs;      /* [G, n_codes] */
    float *first_guided;  /* [codebook] guided logits of step 0 (sample 0), for tests */
    double prefill_s;     /* as text_group's */
};

void text_group_free(struct text_group *g);
void image_group_free(struct image_group *g);

/* Samples G continuations of an understanding context (image placeholders
 * filled from image_embeds, as in teacher_forcing.h) until EOS or max_tokens. */
int sample_text_group(const struct janus_model *m, const int32_t *context, int n_context, const float *image_embeds,
                      int n_image_rows, int G, int max_tokens, const struct sampling_params *p,
                      struct text_group *out, struct dsr_err *err);

/* Samples G images after a generation context (ending with BOI).  BOS/BOI/PAD
 * ids come from the model config; boi_token_id must be known. */
int sample_image_group(const struct janus_model *m, const int32_t *context, int n_context, int G, float cfg_scale,
                       const struct sampling_params *p, struct image_group *out, struct dsr_err *err);

#endif
