/* trainer_step: global-norm clipping and AdamW, as torch.nn.utils.clip_grad_norm_
 * and torch.optim.AdamW (single-tensor path) compute them:
 *   coef = max_norm / (norm + 1e-6), applied only when < 1;
 *   w ← w·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
 *   w ← w − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps). */
#include <math.h>

#include "train.h"

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
    if (!isfinite(norm)) return dsr_errf(err, "gradient norm is not finite; step skipped");
    float coef = 1.0f;
    if (h->max_grad_norm > 0) {
        double c = h->max_grad_norm / (norm + 1e-6);
        if (c < 1.0) coef = (float)c;
    }
    tr->step++;
    double bc1 = 1.0 - pow(h->beta1, (double)tr->step), bc2 = 1.0 - pow(h->beta2, (double)tr->step);
    float step_size = (float)(h->lr / bc1), bc2_sqrt = (float)sqrt(bc2), decay = 1.0f - h->lr * h->weight_decay;
    float b1 = h->beta1, b2 = h->beta2;
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * coef;
        w[i] *= decay;
        mo[i] = b1 * mo[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= step_size * mo[i] / (sqrtf(v[i]) / bc2_sqrt + h->eps);
    }
    tp_add(tr->prof, TP_ADAMW, t0);
    return 0;
}
