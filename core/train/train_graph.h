/* One packed training pass over a batch of samples: the forward that keeps
 * what the backward needs, the per-completion-token log-probabilities, and
 * the backward from d(loss)/d(log-prob) to every trainable parameter.
 *
 * Layout: sample s contributes the rows context ++ completion[0 .. n-2]
 * (positions from 0, causal attention inside the sample only); the rows
 * n_context-1 … predict the completion.  Context placeholders
 * (image_token_id) take the understanding aligner's output for the sample's
 * vision features (a constant input); completion inputs are embedded by
 * embed_tokens (TOKENS) or the generation embeddings + aligner (CODES).
 *
 * Activation memory (the trade-off): with keep_acts, the forward also stores
 * every layer's internals (n_layers · T · tl_acts_floats, about 4× the
 * residual streams) and the backward uses them directly.  Without, it stores
 * only each decoder layer's input residual stream, (n_layers + 1) · T · C
 * floats, and the backward re-runs one layer's forward (tl_forward) right
 * before its backward: one extra layer forward per layer, about a quarter of
 * the pass's time.  The trainer keeps them whenever they fit its memory
 * budget.  Transient buffers add, per row,
 * tl_acts_floats + tl_work_floats + 3·C floats, plus the attention scratch of
 * the longest sample (2·n²) and one head chunk.  tg_estimate_bytes() is the
 * total a batch needs; for Janus-Pro-1B (C 2048, 24 layers, I 5632) that is
 * about 0.33 MB per token without keep_acts, 3.3 MB with.
 *
 * Ownership: the graph owns its buffers (tg_free); it borrows the model and
 * the samples, which must stay unchanged between tg_forward and tg_backward. */
#ifndef DSR_TRAIN_GRAPH_H
#define DSR_TRAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/janus_model.h"
#include "train/train.h"
#include "train/train_prof.h"

struct train_graph {
    const struct janus_model *m;
    const struct train_sample *samples;
    int n_samples;
    int T;         /* packed rows */
    int n_targets; /* Σ n_completion */
    int max_len;   /* longest sample in rows */
    int *row0;     /* [n_samples + 1] first row of each sample */
    int *pos;      /* [T] position within the sample */
    float *resid;  /* [(n_layers + 1), T, C] each layer's input; the last is the final norm's input */
    float *acts;   /* borrowed: [n_layers, T, tl_acts_floats] each layer's internals, or NULL */
    struct train_prof *prof; /* borrowed, or NULL */
};

/* Checks one sample against the model (ids in range, placeholders matching
 * the feature rows, sizes positive and bounded); the error names the field. */
int tg_check_sample(const struct janus_model *m, const struct train_sample *s, struct dsr_err *err);

/* Activation bytes a pass over these samples needs (see above). */
size_t tg_estimate_bytes(const struct janus_model *m, const struct train_sample *s, int n, int keep_acts);

/* Floats of the kept-internals buffer tg_forward takes for these samples. */
size_t tg_kept_floats(const struct janus_model *m, const struct train_sample *s, int n);

/* Runs the forward; lp receives Σ n_completion log-probs, sample after sample.
 * kept: NULL, or a caller-owned buffer of tg_kept_floats() floats that
 * receives every layer's internals for the backward (see above); it must
 * outlive the backward.
 * prof (may be NULL) receives the phase times of this forward and of the
 * graph's backward. */
int tg_forward(struct train_graph *g, const struct janus_model *m, const struct train_sample *s, int n, float *lp,
               float *kept, struct train_prof *prof, struct dsr_err *err);

/* Adds d(loss)/d(param) to grad (mirrors m->params.trainable) given dlp, the
 * gradient of the loss with respect to each log-prob tg_forward returned. */
int tg_backward(struct train_graph *g, const float *dlp, float *grad, struct dsr_err *err);

void tg_free(struct train_graph *g);

#endif
