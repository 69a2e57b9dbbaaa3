/* LoRA adapters (Hu et al. 2021, in PEFT's convention): a frozen linear
 * y = x·Wᵀ gains a trainable low-rank term,
 *     y += scale · (x·Aᵀ)·Bᵀ,   A [r, in], B [out, r], scale = alpha / r,
 * with B initialised to zero (a fresh adapter leaves the model exactly as
 * it was) and A as PEFT initialises it (kaiming-uniform with a = √5, i.e.
 * uniform in ±1/√in).  Adapters are float32 and trainable; the base weight
 * stays frozen in whatever storage it has (nn/weight.h).
 *
 * Targets are the language model's seven projections (per decoder layer)
 * and, optionally, the generation head's two linears and every linear of
 * either aligner MLP.  Kernels are caller-buffered and do not allocate; A
 * and B belong to the param table (model/params.h). */
#ifndef DSR_LORA_H
#define DSR_LORA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

enum lora_target {
    LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, /* in every decoder layer */
    LORA_N_LM_TARGETS,
    LORA_GEN_PROJ_OUT = LORA_N_LM_TARGETS, /* model.generation_head.proj_out [width, lm_hidden] */
    LORA_GEN_VISION_HEAD,                  /* model.generation_head.vision_head [codebook, width] */
    LORA_UND_ALIGNER,                      /* model.aligner: fc1 and every hidden_layers.i */
    LORA_GEN_ALIGNER,                      /* model.generation_aligner: fc1 and every hidden_layers.i */
    LORA_N_TARGETS
};

#define LORA_LM_TARGETS ((1u << LORA_N_LM_TARGETS) - 1) /* the default, and what "all" names */
#define LORA_GEN_TARGETS ((1u << LORA_GEN_PROJ_OUT) | (1u << LORA_GEN_VISION_HEAD))
#define LORA_ALIGNER_TARGETS ((1u << LORA_UND_ALIGNER) | (1u << LORA_GEN_ALIGNER))
#define LORA_EVERY_TARGET ((1u << LORA_N_TARGETS) - 1)
#define LORA_MAX_RANK 1024
#define LORA_DEFAULT_ALPHA 8.0f /* PEFT's LoraConfig default */

/* A run's adapter settings; rank 0 = no adapters (full training). */
struct lora_config {
    int rank;
    float alpha;
    unsigned targets; /* bit (1 << enum lora_target) per adapted linear */
};

/* "q_proj" ... "down_proj", "generation_head.proj_out",
 * "generation_head.vision_head", "aligner", "generation_aligner": the names
 * --lora-targets and a target_modules list take (the head's are dotted
 * because a bare "proj_out" would also match the VQ-VAE's attention blocks;
 * an aligner's name stands for all of its linears). */
const char *lora_target_name(enum lora_target t);
/* The module path: inside a decoder layer for the language model's
 * ("self_attn.q_proj", "mlp.down_proj"); the whole path otherwise
 * ("model.generation_head.proj_out", "model.aligner": an aligner's linears
 * are its fc1 and hidden_layers.i). */
const char *lora_target_module(enum lora_target t);
/* The module's own (last) name: "q_proj", "proj_out", "vision_head",
 * "aligner", "generation_aligner". */
const char *lora_target_leaf(enum lora_target t);

/* The module path of an aligner target's (LORA_UND_ALIGNER,
 * LORA_GEN_ALIGNER) linear i: "model.aligner.fc1" for 0, then
 * "model.aligner.hidden_layers.<i-1>". */
void lora_aligner_module(enum lora_target t, int i, char *buf, size_t cap);

/* Parses a comma-separated list of target names ("all" = the language
 * model's seven projections) into a bit set; the error names an unknown
 * entry and lists the valid ones. */
int lora_parse_targets(const char *csv, unsigned *targets, struct dsr_err *err);
/* Writes the target names joined by sep into buf (truncated to cap). */
void lora_format_targets(unsigned targets, const char *sep, char *buf, int cap);

/* Checks rank (1..min(LORA_MAX_RANK, smallest adapted dimension)), a finite
 * positive alpha and a non-empty target set; errors name the setting. */
int lora_config_validate(const struct lora_config *c, int smallest_dim, struct dsr_err *err);

/* One adapted linear: a == NULL means not adapted. */
struct lora {
    const float *a; /* [rank, in_dim] */
    const float *b; /* [out_dim, rank] */
    int rank;
    float scale; /* alpha / rank */
};

static inline bool lora_present(const struct lora *l) { return l->a != 0; }

/* Forward: u[n, r] = x[n, in]·Aᵀ;  out[n, out] += scale · u·Bᵀ.  u is kept
 * for the backward. */
void lora_forward(float *out, const float *x, const struct lora *l, int n, int in_dim, int out_dim, float *u);

/* Backward, given dy[n, out] and the forward's x and u:
 *   gb[out, r] += scale · dyᵀ·u;   du[n, r] = scale · dy·B;
 *   ga[r, in]  += duᵀ·x;           dx[n, in] += du·A.
 * A NULL ga, gb or dx skips that product.  du is caller scratch [n, r]. */
void lora_backward(const float *x, const float *u, const float *dy, const struct lora *l, int n, int in_dim,
                   int out_dim, float *ga, float *gb, float *dx, float *du);

#endif
