/* Optional wall-clock breakdown of a training update by phase.
 *
 * The caller owns a struct train_prof and hands it to the trainer
 * (trainer.prof); every phase adds its elapsed seconds to one slot.  A NULL
 * profile costs nothing but the pointer test.  Phases nest where noted in
 * tp_name() (e.g. attention forward is part of a layer forward); the top-level
 * phases are disjoint and sum to about the update's wall time. */
#ifndef DSR_TRAIN_PROF_H
#define DSR_TRAIN_PROF_H

enum tp_phase {
    TP_EMBED,          /* input embeddings + aligners, forward and backward */
    TP_LAYER_FWD,      /* decoder layers, first forward */
    TP_RECOMPUTE,      /* decoder layers, forward recomputed before each backward */
    TP_ATTN_FWD,       /*   of which: attention core (QKᵀ, softmax, PV), both forwards */
    TP_MLP_BWD,        /* MLP backward: down/gate/up GEMMs + SwiGLU */
    TP_ATTN_PROJ_BWD,  /* attention projections backward: O, Q, K, V GEMMs + RoPE */
    TP_ATTN_BWD,       /* attention core backward (probabilities recomputed) */
    TP_NORM_BWD,       /* RMSNorm backwards (two per layer + final) */
    TP_HEAD_FWD,       /* lm_head / generation head forward + log-softmax */
    TP_HEAD_BWD,       /* head backward: logits recomputed, softmax grad, GEMMs */
    TP_HEAD_SOFTMAX,   /*   of which: (log-)softmax over the vocabulary, both passes */
    TP_CLIP_NORM,      /* global gradient norm */
    TP_ADAMW,          /* AdamW update */
    TP_COUNT
};

struct train_prof {
    double seconds[TP_COUNT];
};

/* Monotonic clock in seconds. */
double tp_now(void);

/* Adds now − t0 to phase p (no-op when prof is NULL); returns now so calls
 * chain: t = tp_add(prof, A, t); ... t = tp_add(prof, B, t). */
double tp_add(struct train_prof *prof, enum tp_phase p, double t0);

/* Human name of a phase; sub-phases start with two spaces. */
const char *tp_name(enum tp_phase p);

#endif
