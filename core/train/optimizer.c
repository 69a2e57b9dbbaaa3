/* trainer_step: global-norm clipping and AdamW, as torch.nn.utils.clip_grad_norm_
 * and torch.optim.AdamW (single-tensor path) compute them:
 *   coef = max_norm / (norm + 1e-6), applied only when < 1;
 *   w ← w·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
 *   w ← w − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps).
 *
 * The step is atomic: a first pass computes every new weight and moment
 * without storing it and counts the non-finite ones; only when there are
 * none does the second pass, running the same per-element function (so
 * computing the same values), store them.  A non-finite gradient or result
 * leaves weights, moments and the step count untouched.  The extra pass
 * reads the arenas once more; AdamW is a small part of an update. */
#include <math.h>

#include "train/train.h"

struct adamw_consts {
    float coef, decay, b1, b2, step_size, bc2_sqrt, eps;
};

/* One element's new weight, first and second moment. */
static inline void adamw_elem(const struct adamw_consts *k, float g, float *w, float *m, float *v) {
    float gi = g * k->coef;
    float wi = *w * k->decay;
    float mi = k->b1 * *m + (1.0f - k->b1) * gi;
    float vi = k->b2 * *v + (1.0f - k->b2) * gi * gi;
    *w = wi - k->step_size * mi / (sqrtf(vi) / k->bc2_sqrt + k->eps);
    *m = mi;
    *v = vi;
}

int trainer_step(struct trainer *tr, struct janus_model *m, const struct adamw_hyper *h, struct train_stats *stats,
                 struct dsr_err *err) {
    if (tr->n_params != m->params.n_trainable) return dsr_errf(err, "trainer does not match the model");
    if (!(h->lr >= 0) || !isfinite(h->lr)) return dsr_errf(err, "lr: must be finite and >= 0");
    if (!(h->beta1 >= 0 && h->beta1 < 1) || !(h->beta2 >= 0 && h->beta2 < 1))
        return dsr_errf(err, "adam_betas: each must be in [0, 1)");
    if (!(h->eps >= 0) || !(h->weight_decay >= 0) || !isfinite(h->weight_decay))
        return dsr_errf(err, "adam_eps and weight_decay must be >= 0");
    if (!(h->max_grad_norm >= 0)) return dsr_errf(err, "max_grad_norm: must be >= 0");
    size_t n = tr->n_params;
    float *g = tr->grad, *w = m->params.trainable, *mo = tr->adam_m, *v = tr->adam_v;
    double t0 = tp_now();
    double ss = 0;
#pragma omp parallel for reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    stats->grad_norm = norm;
    t0 = tp_add(tr->prof, TP_CLIP_NORM, t0);
    if (!isfinite(norm)) {
        dsr_errf(err, "the gradient is not finite (norm %g); nothing was applied", norm);
        return TRAIN_NONFINITE;
    }
    struct adamw_consts k = {.coef = 1.0f, .b1 = h->beta1, .b2 = h->beta2, .eps = h->eps};
    if (h->max_grad_norm > 0) {
        double c = h->max_grad_norm / (norm + 1e-6);
        if (c < 1.0) k.coef = (float)c;
    }
    long step = tr->step + 1;
    double bc1 = 1.0 - pow(h->beta1, (double)step), bc2 = 1.0 - pow(h->beta2, (double)step);
    k.step_size = (float)(h->lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.decay = 1.0f - h->lr * h->weight_decay;
    size_t bad = 0;
#pragma omp parallel for reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i], mi = mo[i], vi = v[i];
        adamw_elem(&k, g[i], &wi, &mi, &vi);
        bad += !isfinite(wi) || !isfinite(mi) || !isfinite(vi);
    }
    if (bad) {
        tp_add(tr->prof, TP_ADAMW, t0);
        dsr_errf(err, "the step would make %zu weights or moments non-finite (lr %g, eps %g, weight_decay %g); "
                      "nothing was applied", bad, (double)h->lr, (double)h->eps, (double)h->weight_decay);
        return TRAIN_NONFINITE;
    }
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) adamw_elem(&k, g[i], &w[i], &mo[i], &v[i]);
    tr->step = step;
    tp_add(tr->prof, TP_ADAMW, t0);
    return 0;
}
