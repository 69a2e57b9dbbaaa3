#include "train/train_prof.h"

#include <time.h>

double tp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double tp_add(struct train_prof *prof, enum tp_phase p, double t0) {
    if (!prof) return 0.0;
    double t = tp_now();
    prof->seconds[p] += t - t0;
    return t;
}

const char *tp_name(enum tp_phase p) {
    switch (p) {
    case TP_EMBED: return "embeddings + aligners (fwd + bwd)";
    case TP_LAYER_FWD: return "decoder layers forward";
    case TP_RECOMPUTE: return "decoder layers recompute";
    case TP_ATTN_FWD: return "  of which attention core (both)";
    case TP_MLP_BWD: return "MLP backward (GEMMs + SwiGLU)";
    case TP_ATTN_PROJ_BWD: return "attention projections backward";
    case TP_ATTN_BWD: return "attention core backward";
    case TP_NORM_BWD: return "RMSNorm backward";
    case TP_HEAD_FWD: return "head forward + log-softmax";
    case TP_HEAD_BWD: return "head backward";
    case TP_HEAD_SOFTMAX: return "  of which (log-)softmax rows (both)";
    case TP_CLIP_NORM: return "gradient norm (clipping)";
    case TP_ADAMW: return "AdamW";
    case TP_COUNT: break;
    }
    return "?";
}
