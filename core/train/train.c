/* GRPO / SimPO losses and their gradients over micro-batches (see train.h).
 *
 * Every loss here is a sum over samples (or pairs) of a function of that
 * sample's (pair's) own completion log-probs, with normalisers known before
 * any forward (token counts, sample counts).  So a batch splits into
 * micro-batches of whole samples (pairs): each runs forward → log-probs →
 * d(loss)/d(log-prob) → backward, adding into tr->grad, and the sum equals
 * one pass over the whole batch. */
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_graph.h"

int trainer_init(struct trainer *tr, const struct janus_model *m, size_t memory_budget, struct dsr_err *err) {
    memset(tr, 0, sizeof *tr);
    tr->n_params = m->params.n_trainable;
    tr->memory_budget = memory_budget;
    tr->grad = calloc(tr->n_params + 1, sizeof(float));
    tr->adam_m = calloc(tr->n_params + 1, sizeof(float));
    tr->adam_v = calloc(tr->n_params + 1, sizeof(float));
    if (!tr->grad || !tr->adam_m || !tr->adam_v) {
        trainer_free(tr);
        return dsr_errf(err, "out of memory for the trainer state (3 × %zu floats)", m->params.n_trainable);
    }
    return 0;
}

void trainer_free(struct trainer *tr) {
    free(tr->grad);
    free(tr->adam_m);
    free(tr->adam_v);
    free(tr->ref_weights);
    free(tr->kept);
    memset(tr, 0, sizeof *tr);
}

int trainer_keep_reference(struct trainer *tr, const struct janus_model *m, struct dsr_err *err) {
    if (tr->n_params != m->params.n_trainable) return dsr_errf(err, "trainer does not match the model");
    if (!tr->ref_weights) tr->ref_weights = malloc(tr->n_params * sizeof(float) + 1);
    if (!tr->ref_weights) return dsr_errf(err, "out of memory for the reference weights (%zu floats)", tr->n_params);
    memcpy(tr->ref_weights, m->params.trainable, tr->n_params * sizeof(float));
    return 0;
}

/* ---- the reference model: the same tables bound to ref_weights ----------- */

static void ref_view_release(struct janus_model *view) {
    lm_release(&view->lm);
    gen_release(&view->gen);
    vision_free(view->vision);
}

static int ref_view(const struct trainer *tr, const struct janus_model *m, struct janus_model *view,
                    struct dsr_err *err) {
    *view = *m;
    view->params.trainable = tr->ref_weights;
    memset(&view->lm, 0, sizeof view->lm);
    memset(&view->gen, 0, sizeof view->gen);
    view->vision = NULL;
    if (lm_bind(&view->cfg, view->tied, &view->lora, &view->params, &view->lm, err) ||
        gen_bind(&view->cfg, &view->lora, &view->params, &view->gen, err) ||
        vision_bind(&view->cfg, &view->lora, &view->params, &view->vision, err)) {
        ref_view_release(view);
        return -1;
    }
    return 0;
}

/* ---- micro-batching ------------------------------------------------------ */

/* Fills dlp for samples [first, first + n) from their log-probs lp (both
 * indexed from the micro-batch's first token) and adds to the loss stats. */
typedef void (*dlp_fn)(void *ctx, int first, int n, const float *lp, float *dlp);

/* End (exclusive) of the micro-batch starting at `first`: whole units of
 * `unit` samples while the estimate stays within the budget (at least one). */
static int micro_batch_end(const struct trainer *tr, const struct janus_model *m, const struct train_sample *s,
                           int n, int first, int unit) {
    int end = first + unit;
    if (tr->memory_budget == 0) return n;
    while (end + unit <= n && tg_estimate_bytes(m, s + first, end + unit - first, 0) <= tr->memory_budget)
        end += unit;
    return end;
}

/* The kept-internals buffer for samples [first, end), or NULL when they do
 * not fit the budget (or memory): the pass then recomputes them. */
static float *kept_buffer(struct trainer *tr, const struct janus_model *m, const struct train_sample *s, int n) {
    if (tr->memory_budget && tg_estimate_bytes(m, s, n, 1) > tr->memory_budget) return NULL;
    size_t need = tg_kept_floats(m, s, n);
    if (need > tr->kept_floats) {
        free(tr->kept);
        tr->kept = malloc(need * sizeof(float));
        tr->kept_floats = tr->kept ? need : 0;
    }
    return tr->kept;
}

static long count_tokens(const struct train_sample *s, int from, int to) {
    long n = 0;
    for (int i = from; i < to; i++) n += s[i].n_completion;
    return n;
}

/* Forward + backward over all samples; lp_all receives every log-prob.  With
 * grad_fn NULL the pass is forward-only (reference log-probs). */
static int run_passes(struct trainer *tr, const struct janus_model *m, const struct train_sample *s, int n,
                      int unit, float *lp_all, dlp_fn grad_fn, void *ctx, struct dsr_err *err) {
    long total = count_tokens(s, 0, n);
    float *dlp = grad_fn ? malloc((size_t)total * sizeof(float) + 1) : NULL;
    if (grad_fn && !dlp) return dsr_errf(err, "out of memory");
    int rc = 0;
    long tok = 0;
    for (int first = 0; first < n && rc == 0;) {
        int end = micro_batch_end(tr, m, s, n, first, unit);
        /* keeping the layer internals saves the backward's recompute when they fit */
        float *kept = grad_fn ? kept_buffer(tr, m, s + first, end - first) : NULL;
        struct train_graph g;
        rc = tg_forward(&g, m, s + first, end - first, lp_all + tok, kept, tr->prof, err);
        if (rc == 0 && grad_fn) {
            grad_fn(ctx, first, end - first, lp_all + tok, dlp + tok);
            rc = tg_backward(&g, dlp + tok, tr->grad, err);
        }
        if (rc == 0) tg_free(&g);
        else if (first) dsr_err_prefix(err, "samples from %d", first);
        tok += count_tokens(s, first, end);
        first = end;
    }
    free(dlp);
    return rc;
}

/* ---- GRPO ---------------------------------------------------------------- */

struct grpo_ctx {
    const struct train_sample *s;
    const struct grpo_hyper *h;
    const float *ref;     /* [total tokens] reference log-probs (given or computed); NULL when beta == 0 */
    const long *tok0;     /* [n] first token of each sample */
    const double *weight; /* [n] aggregation weight of each of the sample's tokens */
    double loss, kl_sum;
    long clipped;
};

static void grpo_dlp(void *vctx, int first, int n, const float *lp, float *dlp) {
    struct grpo_ctx *c = vctx;
    const struct grpo_hyper *h = c->h;
    long t = 0;
    for (int i = first; i < first + n; i++) {
        const struct train_sample *sm = &c->s[i];
        double A = sm->advantage, w = c->weight[i];
        for (int k = 0; k < sm->n_completion; k++, t++) {
            double cur = lp[t];
            double old = sm->old_logprobs ? sm->old_logprobs[k] : cur;
            double r = exp(cur - old);
            double clip = r < 1.0 - h->epsilon ? 1.0 - h->epsilon : r > 1.0 + h->epsilon_high ? 1.0 + h->epsilon_high : r;
            double pg = -fmin(r * A, clip * A);
            /* the clipped branch is the active min (no gradient) exactly when */
            int clipped = (r < 1.0 - h->epsilon && A < 0) || (r > 1.0 + h->epsilon_high && A > 0);
            double d = clipped ? 0.0 : -A * r;
            double kl = 0;
            if (c->ref) { /* β > 0, or kept reference weights: KL is measured even at β = 0 */
                double diff = c->ref[c->tok0[i] + k] - cur;
                kl = exp(diff) - diff - 1.0;
                d += h->beta * (1.0 - exp(diff));
            }
            c->loss += w * (pg + h->beta * kl);
            c->kl_sum += kl;
            c->clipped += clipped;
            dlp[t] = (float)(w * d);
        }
    }
}

static int check_grpo(const struct train_sample *s, int n, const struct grpo_hyper *h, struct dsr_err *err) {
    if (n < 1) return dsr_errf(err, "samples: none given");
    if (!(h->epsilon >= 0) || !(h->epsilon_high >= 0) || !(h->beta >= 0) || !isfinite(h->beta))
        return dsr_errf(err, "hyper: epsilon, epsilon_high and beta must be finite and >= 0");
    if (h->loss_type < GRPO_LOSS_GRPO || h->loss_type > GRPO_LOSS_DR_GRPO)
        return dsr_errf(err, "hyper.loss_type: unknown");
    if (h->max_completion_length < 0) return dsr_errf(err, "hyper.max_completion_length: negative");
    for (int i = 0; i < n; i++)
        if (!isfinite(s[i].advantage)) return dsr_errf(err, "samples[%d].advantage: not finite", i);
    return 0;
}

/* Reference log-probs for every token: given ones copied, missing ones
 * computed under the kept initial weights. */
static int reference_logprobs(struct trainer *tr, const struct janus_model *m, const struct train_sample *s,
                              int n, const long *tok0, float *ref, struct dsr_err *err) {
    int missing = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].ref_logprobs) memcpy(ref + tok0[i], s[i].ref_logprobs, (size_t)s[i].n_completion * sizeof(float));
        else missing++;
    }
    if (!missing) return 0;
    if (!tr->ref_weights)
        return dsr_errf(err, "ref_logprobs: absent with beta > 0 and no reference weights kept (start the server "
                             "with a reference model)");
    struct train_sample *need = malloc((size_t)missing * sizeof *need);
    long n_tok = 0;
    for (int i = 0, j = 0; need && i < n; i++)
        if (!s[i].ref_logprobs) {
            need[j++] = s[i];
            n_tok += s[i].n_completion;
        }
    float *lp = malloc((size_t)n_tok * sizeof(float) + 1);
    struct janus_model view;
    int rc = need && lp ? ref_view(tr, m, &view, err) : dsr_errf(err, "out of memory");
    if (rc == 0) {
        rc = run_passes(tr, &view, need, missing, 1, lp, NULL, NULL, err);
        ref_view_release(&view);
    }
    for (int i = 0, t = 0; rc == 0 && i < n; i++)
        if (!s[i].ref_logprobs) {
            memcpy(ref + tok0[i], lp + t, (size_t)s[i].n_completion * sizeof(float));
            t += s[i].n_completion;
        }
    free(need);
    free(lp);
    return rc;
}

int trainer_grpo_backward(struct trainer *tr, const struct janus_model *m, const struct train_sample *samples,
                          int n_samples, const struct grpo_hyper *h, struct train_stats *stats, struct dsr_err *err) {
    if (check_grpo(samples, n_samples, h, err)) return -1;
    if (tr->n_params != m->params.n_trainable) return dsr_errf(err, "trainer does not match the model");
    for (int i = 0; i < n_samples; i++)
        if (tg_check_sample(m, &samples[i], err)) return dsr_err_prefix(err, "samples[%d]", i);
    long total = count_tokens(samples, 0, n_samples);
    int longest = 0;
    for (int i = 0; i < n_samples; i++) longest = samples[i].n_completion > longest ? samples[i].n_completion : longest;
    int max_len = h->max_completion_length > 0 ? h->max_completion_length : longest;

    long *tok0 = malloc((size_t)n_samples * sizeof *tok0);
    double *weight = malloc((size_t)n_samples * sizeof *weight);
    float *lp = malloc((size_t)total * sizeof(float));
    /* reference log-probs: needed for β > 0; with kept reference weights they
     * are computed at β = 0 too, so every step reports the KL to the start */
    bool want_ref = h->beta > 0 || tr->ref_weights;
    float *ref = want_ref ? malloc((size_t)total * sizeof(float)) : NULL;
    int rc = tok0 && weight && lp && (ref || !want_ref) ? 0 : dsr_errf(err, "out of memory");
    for (int i = 0, t = 0; rc == 0 && i < n_samples; i++) {
        tok0[i] = t;
        t += samples[i].n_completion;
        switch (h->loss_type) {
        case GRPO_LOSS_GRPO: weight[i] = 1.0 / ((double)n_samples * samples[i].n_completion); break;
        case GRPO_LOSS_DAPO:
        case GRPO_LOSS_BNPO: weight[i] = 1.0 / (double)total; break;
        case GRPO_LOSS_DR_GRPO: weight[i] = 1.0 / ((double)n_samples * max_len); break;
        }
    }
    if (rc == 0 && ref) rc = reference_logprobs(tr, m, samples, n_samples, tok0, ref, err);
    struct grpo_ctx ctx = {.s = samples, .h = h, .ref = ref, .tok0 = tok0, .weight = weight};
    if (rc == 0) {
        memset(tr->grad, 0, tr->n_params * sizeof(float));
        rc = run_passes(tr, m, samples, n_samples, 1, lp, grpo_dlp, &ctx, err);
    }
    if (rc == 0) {
        memset(stats, 0, sizeof *stats);
        stats->loss = ctx.loss;
        stats->kl = ref ? ctx.kl_sum / (double)total : 0.0;
        stats->clip_fraction = (double)ctx.clipped / (double)total;
        stats->tokens = total;
    }
    free(tok0);
    free(weight);
    free(lp);
    free(ref);
    return rc;
}

/* ---- SimPO --------------------------------------------------------------- */

struct simpo_ctx {
    const struct train_sample *s; /* chosen, rejected, chosen, … */
    const struct simpo_hyper *h;
    int n_pairs;
    double loss;
};

static double mean_of(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

static void simpo_dlp(void *vctx, int first, int n, const float *lp, float *dlp) {
    struct simpo_ctx *c = vctx;
    long t = 0;
    for (int i = first; i < first + n; i += 2) {
        const struct train_sample *ch = &c->s[i], *rj = &c->s[i + 1];
        const float *lc = lp + t, *lr = lp + t + ch->n_completion;
        double z = c->h->beta * (mean_of(lc, ch->n_completion) - mean_of(lr, rj->n_completion)) - c->h->gamma;
        /* −log σ(z) = softplus(−z), computed without overflow */
        double loss = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
        double dz = -1.0 / (1.0 + exp(z)) / c->n_pairs; /* d(loss / n_pairs)/dz = σ(z) − 1 */
        c->loss += loss / c->n_pairs;
        for (int k = 0; k < ch->n_completion; k++) dlp[t + k] = (float)(dz * c->h->beta / ch->n_completion);
        for (int k = 0; k < rj->n_completion; k++)
            dlp[t + ch->n_completion + k] = (float)(-dz * c->h->beta / rj->n_completion);
        t += ch->n_completion + rj->n_completion;
    }
}

int trainer_simpo_backward(struct trainer *tr, const struct janus_model *m, const struct simpo_pair *pairs,
                           int n_pairs, const struct simpo_hyper *h, struct train_stats *stats, struct dsr_err *err) {
    if (n_pairs < 1) return dsr_errf(err, "pairs: none given");
    if (!isfinite(h->beta) || !isfinite(h->gamma)) return dsr_errf(err, "hyper: beta and gamma must be finite");
    if (tr->n_params != m->params.n_trainable) return dsr_errf(err, "trainer does not match the model");
    struct train_sample *s = malloc((size_t)n_pairs * 2 * sizeof *s);
    if (!s) return dsr_errf(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n_pairs && rc == 0; i++) {
        s[2 * i] = pairs[i].chosen;
        s[2 * i + 1] = pairs[i].rejected;
        if (tg_check_sample(m, &s[2 * i], err)) rc = dsr_err_prefix(err, "pairs[%d].chosen", i);
        else if (tg_check_sample(m, &s[2 * i + 1], err)) rc = dsr_err_prefix(err, "pairs[%d].rejected", i);
    }
    long total = rc ? 0 : count_tokens(s, 0, 2 * n_pairs);
    float *lp = rc ? NULL : malloc((size_t)total * sizeof(float));
    if (rc == 0 && !lp) rc = dsr_errf(err, "out of memory");
    struct simpo_ctx ctx = {.s = s, .h = h, .n_pairs = n_pairs};
    if (rc == 0) {
        memset(tr->grad, 0, tr->n_params * sizeof(float));
        rc = run_passes(tr, m, s, 2 * n_pairs, 2, lp, simpo_dlp, &ctx, err);
    }
    if (rc == 0) {
        memset(stats, 0, sizeof *stats);
        stats->loss = ctx.loss;
        stats->tokens = total;
    }
    free(s);
    free(lp);
    return rc;
}
