/* Policy-gradient training of the hosted model: exact gradients of the GRPO
 * and SimPO objectives (proto/API.md "POST /update") with respect to every
 * trainable parameter, and PyTorch-semantics AdamW.
 *
 * Trainable: everything but the vision tower and the VQ-VAE — embeddings
 * (tied or untied lm_head), every LM layer, final norm, lm_head, generation
 * head, generation aligner, generation embeddings, understanding aligner (its
 * input, the vision tower's features, is a constant).
 *
 * Ownership: a struct trainer owns the gradient arena, the AdamW moments, and
 * (only when β > 0 and a sample lacks ref_logprobs) a frozen copy of the
 * initial trainable weights.  All arenas mirror params.trainable offset for
 * offset.  The model is updated in place by trainer_step(). */
#ifndef DSR_TRAIN_H
#define DSR_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/janus_model.h"
#include "janus/teacher_forcing.h"
#include "train/train_prof.h"

/* One completion to train on. */
struct train_sample {
    enum tf_target_kind kind;      /* TOKENS: caption (understanding); CODES: image (generation) */
    const int32_t *context;        /* [n_context]; image placeholders filled from vision_features */
    int n_context;
    const float *vision_features;  /* [n_feature_rows, vision hidden] tower output, or NULL */
    int n_feature_rows;
    const int32_t *completion;     /* [n_completion] token ids or VQ codes */
    int n_completion;
    float advantage;               /* GRPO only */
    const float *old_logprobs;     /* [n_completion] or NULL: old = lp detached (ratio 1) */
    const float *ref_logprobs;     /* [n_completion] or NULL: computed from the initial weights when beta > 0 */
};

enum grpo_loss_type { GRPO_LOSS_GRPO, GRPO_LOSS_DAPO, GRPO_LOSS_BNPO, GRPO_LOSS_DR_GRPO };

struct grpo_hyper {
    float epsilon, epsilon_high, beta;
    enum grpo_loss_type loss_type;
    int max_completion_length; /* dr_grpo normaliser; 0 = the longest completion */
};

struct simpo_hyper {
    float beta, gamma;
};

struct simpo_pair {
    struct train_sample chosen, rejected;
};

struct adamw_hyper {
    float lr, beta1, beta2, eps, weight_decay;
    float max_grad_norm; /* > 0: clip by global norm */
};

struct train_stats {
    double loss;          /* before the step */
    double kl;            /* mean k3 KL per token (0 when beta == 0) */
    double clip_fraction; /* fraction of tokens whose ratio was clipped */
    double grad_norm;     /* global norm before clipping */
    long tokens;          /* completion tokens */
};

struct trainer {
    size_t n_params;      /* = params.n_trainable */
    float *grad;          /* [n_params] */
    float *adam_m, *adam_v;
    long step;            /* AdamW steps taken */
    float *ref_weights;   /* [n_params] initial trainable weights, or NULL until needed */
    size_t memory_budget; /* activation bytes per micro-batch; 0 = unbounded */
    struct train_prof *prof; /* borrowed; NULL (trainer_init's default) = no timing */
    /* Every layer's internals of the current micro-batch, so the backward
     * need not recompute them; kept between updates (re-touching freshly
     * mapped memory each pass costs more than the recompute saves), grown
     * as needed, used only within memory_budget. */
    float *kept;
    size_t kept_floats;
};

int  trainer_init(struct trainer *tr, const struct janus_model *m, size_t memory_budget, struct dsr_err *err);
void trainer_free(struct trainer *tr);

/* Keeps a frozen copy of the model's current trainable weights as the
 * reference policy (call once at start, before any step, so "reference" means
 * the initial weights).  Without it, beta > 0 needs ref_logprobs on every
 * sample: a sample without them is an error naming ref_logprobs. */
int trainer_keep_reference(struct trainer *tr, const struct janus_model *m, struct dsr_err *err);

/* Computes the GRPO (or SimPO) loss and writes its gradient into tr->grad
 * (overwriting); fills stats except grad_norm.  Processes the batch in
 * micro-batches within the memory budget with results identical to one pass. */
int trainer_grpo_backward(struct trainer *tr, const struct janus_model *m, const struct train_sample *samples,
                          int n_samples, const struct grpo_hyper *h, struct train_stats *stats, struct dsr_err *err);
int trainer_simpo_backward(struct trainer *tr, const struct janus_model *m, const struct simpo_pair *pairs,
                           int n_pairs, const struct simpo_hyper *h, struct train_stats *stats, struct dsr_err *err);

/* trainer_step's answer when the gradient, or the weights or moments the
 * step would produce, are not finite: nothing was changed. */
#define TRAIN_NONFINITE 1

/* Clips tr->grad by global norm (stats->grad_norm = norm before clipping) and
 * applies one AdamW step to m's trainable weights, atomically: 0 when
 * applied; TRAIN_NONFINITE (weights, moments and step unchanged) when any
 * value would not be finite; -1 on bad hyper-parameters. */
int trainer_step(struct trainer *tr, struct janus_model *m, const struct adamw_hyper *h, struct train_stats *stats,
                 struct dsr_err *err);

#endif
