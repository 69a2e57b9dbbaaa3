#include "janus/rollout.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/kv_cache.h"
#include "nn/ops.h"
#include "janus/teacher_forcing.h"

int sample_scratch_init(struct sample_scratch *s, int V, struct dsr_err *err) {
    s->probs = malloc((size_t)V * sizeof *s->probs);
    s->sorted = malloc((size_t)V * sizeof *s->sorted);
    if (!s->probs || !s->sorted) {
        sample_scratch_free(s);
        return dsr_errf(err, "out of memory for sampling scratch");
    }
    return 0;
}

void sample_scratch_free(struct sample_scratch *s) {
    free(s->probs);
    free(s->sorted);
    s->probs = NULL;
    s->sorted = NULL;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* descending probability, ascending id on ties (deterministic order) */
static int cmp_prob_desc(const void *a, const void *b) {
    const struct sample_candidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

/* x ranks below y: lower probability, or equal and a higher id. */
static int ranks_below(const struct sample_candidate *x, const struct sample_candidate *y) {
    return x->p < y->p || (x->p == y->p && x->id > y->id);
}

/* Restores the min-heap (root = lowest-ranked) below index i. */
static void sift_down(struct sample_candidate *h, int m, int i) {
    for (;;) {
        int lo = i, l = 2 * i + 1, r = l + 1;
        if (l < m && ranks_below(&h[l], &h[lo])) lo = l;
        if (r < m && ranks_below(&h[r], &h[lo])) lo = r;
        if (lo == i) return;
        struct sample_candidate t = h[i];
        h[i] = h[lo];
        h[lo] = t;
        i = lo;
    }
}

/* out[0..m) = the m highest-ranked of probs[0..V) in sorted order (the
 * first m of a full sort by cmp_prob_desc): a min-heap of the best m seen,
 * then a sort of those m. */
static void top_candidates(const float *probs, int V, int m, struct sample_candidate *out) {
    for (int i = 0; i < m; i++) out[i] = (struct sample_candidate){probs[i], i};
    for (int i = m / 2 - 1; i >= 0; i--) sift_down(out, m, i);
    for (int i = m; i < V; i++) {
        struct sample_candidate c = {probs[i], i};
        if (ranks_below(&out[0], &c)) {
            out[0] = c;
            sift_down(out, m, 0);
        }
    }
    qsort(out, (size_t)m, sizeof *out, cmp_prob_desc);
}

int sample_token(const float *logits, int V, const struct sampling_params *p, struct dsr_rng *rng,
                 struct sample_scratch *s) {
    if (p->temperature <= 0.0f) return argmax(logits, V);
    float *probs = s->probs;
    float inv_t = 1.0f / p->temperature;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        probs[i] = logits[i] * inv_t;
        mx = probs[i] > mx ? probs[i] : mx;
    }
    double total = 0;
    for (int i = 0; i < V; i++) {
        probs[i] = expf(probs[i] - mx);
        total += probs[i];
    }
    int use_k = p->top_k > 0 && p->top_k < V;
    int use_p = p->top_p > 0.0f && p->top_p < 1.0f;
    if (!use_k && !use_p) {
        double u = rng_uniform(rng) * total, acc = 0;
        for (int i = 0; i < V; i++) {
            acc += probs[i];
            if (u < acc) return i;
        }
        return argmax(probs, V); /* u landed on rounding slack */
    }
    /* The candidates in sorted order (probability descending, id ascending
     * on ties) as far as needed: the top k, or for top-p alone a prefix
     * that grows until it holds the nucleus.  Selecting a prefix costs
     * O(V log m) instead of sorting all V (32k–100k ids) every step. */
    struct sample_candidate *pi = s->sorted;
    int keep;
    if (use_k) {
        top_candidates(probs, V, p->top_k, pi);
        keep = p->top_k;
    } else {
        keep = V;
        for (int m = V < 64 ? V : 64;; m = 4 * m < V ? 4 * m : V) {
            top_candidates(probs, V, m, pi);
            double mass = 0;
            for (int i = 0; i < m; i++) mass += pi[i].p;
            if (mass >= p->top_p * total || m == V) break;
        }
    }
    if (use_p) {
        /* smallest prefix whose mass reaches top_p of the (top-k) distribution */
        double kept_total = use_k ? 0 : total;
        for (int i = 0; use_k && i < keep; i++) kept_total += pi[i].p;
        double acc = 0;
        int n = 0;
        while (n < keep) {
            acc += pi[n++].p;
            if (acc >= p->top_p * kept_total) break;
        }
        keep = n;
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += pi[i].p;
    double u = rng_uniform(rng) * kept, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += pi[i].p;
        if (u < acc) return pi[i].id;
    }
    return pi[0].id;
}

void text_group_free(struct text_group *g) {
    free(g->tokens);
    free(g->logprobs);
    free(g->lengths);
    memset(g, 0, sizeof *g);
}

void image_group_free(struct image_group *g) {
    free(g->codes);
    free(g->logprobs);
    free(g->first_guided);
    memset(g, 0, sizeof *g);
}

static void seed_streams(struct dsr_rng *rngs, int G, uint64_t seed) {
    for (int g = 0; g < G; g++) rng_seed(&rngs[g], seed * 0x9e3779b97f4a7c15ull + (uint64_t)g * 0xbf58476d1ce4e5b9ull + 1);
}

/* One sampling scratch per OpenMP thread: the rows of a step are drawn in
 * parallel, each from its own RNG stream, so the draws do not depend on the
 * thread count. */
struct scratch_pool {
    int n;
    struct sample_scratch *s;
    float *work; /* [n, V] per-thread logits buffer (guided logits) */
};

static int scratch_pool_init(struct scratch_pool *pool, int V, struct dsr_err *err) {
    pool->n = omp_get_max_threads();
    pool->s = calloc((size_t)pool->n, sizeof *pool->s);
    pool->work = malloc((size_t)pool->n * V * sizeof(float));
    if (!pool->s || !pool->work) return dsr_errf(err, "out of memory for sampling scratch");
    for (int i = 0; i < pool->n; i++)
        if (sample_scratch_init(&pool->s[i], V, err)) return -1;
    return 0;
}

static void scratch_pool_free(struct scratch_pool *pool) {
    for (int i = 0; pool->s && i < pool->n; i++) sample_scratch_free(&pool->s[i]);
    free(pool->s);
    free(pool->work);
    memset(pool, 0, sizeof *pool);
}

static float logprob_of(const float *logits, int V, int tok) {
    return (float)((double)logits[tok] - op_logsumexp(logits, V));
}

/* Monotonic seconds, for the groups' prefill_s. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sample_text_group(const struct janus_model *m, const int32_t *context, int n_context, const float *image_embeds,
                      int n_image_rows, int G, int max_tokens, const struct sampling_params *p,
                      struct text_group *out, struct dsr_err *err) {
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    const struct text_config *t = &m->cfg.text;
    int C = t->hidden_size, V = t->vocab_size;
    if (G < 1 || G > SAMPLER_MAX_GROUP) return dsr_errf(err, "group size %d outside [1, %d]", G, SAMPLER_MAX_GROUP);
    if (max_tokens < 1) return dsr_errf(err, "max_tokens must be at least 1");
    if (n_context < 1) return dsr_errf(err, "empty context");
    out->n = G;
    out->max_tokens = max_tokens;
    out->tokens = calloc((size_t)G * max_tokens, sizeof *out->tokens);
    out->logprobs = calloc((size_t)G * max_tokens, sizeof *out->logprobs);
    out->lengths = calloc((size_t)G, sizeof *out->lengths);
    struct kv_cache cache = {0};
    struct scratch_pool pool = {0};
    struct dsr_rng rngs[SAMPLER_MAX_GROUP];
    struct lm_segment segs[SAMPLER_MAX_GROUP];
    int active[SAMPLER_MAX_GROUP];
    size_t rows_cap = (size_t)(n_context > G ? n_context : G);
    float *rows = malloc(rows_cap * C * sizeof(float));
    float *logits = malloc((size_t)G * V * sizeof(float));
    int rc = 0;
    if (!out->tokens || !out->logprobs || !out->lengths || !rows || !logits)
        rc = dsr_errf(err, "out of memory for a group of %d × %d tokens", G, max_tokens);
    if (rc == 0) rc = scratch_pool_init(&pool, V, err);
    /* slot 0 holds the prefill, the other members only their own tokens */
    if (rc == 0)
        rc = kv_cache_init_shared(&cache, G, 1, n_context, t->n_layers, n_context + max_tokens, t->n_kv_heads,
                                  t->head_dim, p->kv_dtype, err);
    seed_streams(rngs, G, p->seed);

    /* shared prefill: one forward of the context, every slot reads its cache as a shared prefix */
    if (rc == 0) rc = tf_embed_context(m, context, n_context, image_embeds, n_image_rows, rows, err);
    if (rc == 0) {
        struct lm_segment pre = {.slot = 0, .n = n_context};
        rc = lm_forward(&m->lm, &cache, &pre, 1, rows, rows, err);
    }
    if (rc == 0) rc = lm_logits(&m->lm, rows + (size_t)(n_context - 1) * C, 1, logits, err);
    if (rc == 0) {
        for (int g = 1; g < G && rc == 0; g++) {
            rc = kv_cache_share_prefix(&cache, g, 0, err);
            memcpy(logits + (size_t)g * V, logits, (size_t)V * sizeof(float));
        }
    }
    out->prefill_s = now_s() - t0;
    int n_active = G;
    for (int g = 0; g < G; g++) active[g] = g;
    for (int step = 0; rc == 0 && n_active > 0; step++) {
        /* sample for every active row, then drop finished ones */
#pragma omp parallel for schedule(static) if (n_active > 1)
        for (int a = 0; a < n_active; a++) {
            int g = active[a];
            const float *lg = logits + (size_t)a * V;
            int tok = sample_token(lg, V, p, &rngs[g], &pool.s[omp_get_thread_num()]);
            out->tokens[(size_t)g * max_tokens + step] = tok;
            out->logprobs[(size_t)g * max_tokens + step] = logprob_of(lg, V, tok);
            out->lengths[g] = step + 1;
        }
        int n_next = 0;
        for (int a = 0; a < n_active; a++) {
            int g = active[a];
            if (out->tokens[(size_t)g * max_tokens + step] != t->eos_token_id && step + 1 < max_tokens)
                active[n_next++] = g;
        }
        n_active = n_next;
        if (n_active == 0) break;
        int32_t ids[SAMPLER_MAX_GROUP];
        for (int a = 0; a < n_active; a++) {
            ids[a] = out->tokens[(size_t)active[a] * max_tokens + step];
            segs[a] = (struct lm_segment){.slot = active[a], .n = 1};
        }
        rc = lm_embed_tokens(&m->lm, ids, n_active, rows, err);
        if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, n_active, rows, rows, err);
        if (rc == 0) rc = lm_logits(&m->lm, rows, n_active, logits, err);
    }
    free(rows);
    free(logits);
    scratch_pool_free(&pool);
    kv_cache_free(&cache);
    if (rc) text_group_free(out);
    return rc;
}

int sample_image_group(const struct janus_model *m, const int32_t *context, int n_context, int G, float cfg_scale,
                       const struct sampling_params *p, struct image_group *out, struct dsr_err *err) {
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    const struct text_config *t = &m->cfg.text;
    int C = t->hidden_size, K = m->gen.codebook_size;
    int N = m->cfg.vq.num_patches * m->cfg.vq.num_patches;
    if (G < 1 || G > SAMPLER_MAX_GROUP) return dsr_errf(err, "group size %d outside [1, %d]", G, SAMPLER_MAX_GROUP);
    if (n_context < 1) return dsr_errf(err, "empty context");
    if (m->cfg.boi_token_id < 0) return dsr_errf(err, "the model's BOI token id is unknown");
    if (t->pad_token_id < 0 || t->pad_token_id >= t->vocab_size)
        return dsr_errf(err, "the model's PAD token id is unknown");
    out->n = G;
    out->n_codes = N;
    out->codes = calloc((size_t)G * N, sizeof *out->codes);
    out->logprobs = calloc((size_t)G * N, sizeof *out->logprobs);
    out->first_guided = calloc((size_t)K, sizeof *out->first_guided);
    /* B rows per sample: conditional and unconditional, or at CFG 1 only the
     * conditional one (u + 1·(c − u) is c: the unconditional branch would be
     * half the decode work for nothing). */
    int B = cfg_scale == 1.0f ? 1 : 2;
    int32_t *uncond = malloc((size_t)n_context * sizeof *uncond);
    float *rows = malloc((size_t)B * (n_context > G ? n_context : G) * C * sizeof(float));
    float *logits = malloc((size_t)B * G * K * sizeof(float));
    struct kv_cache cache = {0};
    struct scratch_pool pool = {0};
    struct dsr_rng rngs[SAMPLER_MAX_GROUP];
    struct lm_segment segs[2 * SAMPLER_MAX_GROUP];
    int rc = 0;
    if (!out->codes || !out->logprobs || !out->first_guided || !uncond || !rows || !logits)
        rc = dsr_errf(err, "out of memory for a group of %d images", G);
    if (rc == 0) rc = scratch_pool_init(&pool, K, err);
    /* slots: B·g = conditional row of sample g, B·g + 1 = its unconditional row */
    if (rc == 0)
        rc = kv_cache_init_shared(&cache, B * G, B, n_context, t->n_layers, n_context + N, t->n_kv_heads, t->head_dim,
                                  p->kv_dtype, err);
    seed_streams(rngs, G, p->seed);

    for (int i = 0; rc == 0 && i < n_context; i++)
        uncond[i] = (context[i] == t->bos_token_id || context[i] == m->cfg.boi_token_id) ? context[i]
                                                                                       : t->pad_token_id;
    if (rc == 0) rc = tf_embed_context(m, context, n_context, NULL, 0, rows, err);
    if (rc == 0 && B == 2) rc = tf_embed_context(m, uncond, n_context, NULL, 0, rows + (size_t)n_context * C, err);
    if (rc == 0) {
        struct lm_segment pre[2] = {{.slot = 0, .n = n_context}, {.slot = 1, .n = n_context}};
        rc = lm_forward(&m->lm, &cache, pre, B, rows, rows, err);
    }
    if (rc == 0) {
        /* last context row of each branch → head; copy to every sample */
        if (B == 2) memcpy(rows + C, rows + (size_t)(2 * n_context - 1) * C, (size_t)C * sizeof(float));
        memcpy(rows, rows + (size_t)(n_context - 1) * C, (size_t)C * sizeof(float));
        rc = gen_head_logits(&m->gen, rows, B, logits, err);
        for (int g = 1; rc == 0 && g < G; g++) {
            for (int b = 0; rc == 0 && b < B; b++) rc = kv_cache_share_prefix(&cache, B * g + b, b, err);
            memcpy(logits + (size_t)B * g * K, logits, (size_t)B * K * sizeof(float));
        }
    }
    out->prefill_s = now_s() - t0;
    for (int step = 0; rc == 0 && step < N; step++) {
        int32_t codes[2 * SAMPLER_MAX_GROUP];
#pragma omp parallel for schedule(static) if (G > 1)
        for (int g = 0; g < G; g++) {
            const float *c = logits + (size_t)B * g * K, *u = c + K;
            int th = omp_get_thread_num();
            float *guided = pool.work + (size_t)th * K;
            if (B == 1) memcpy(guided, c, (size_t)K * sizeof(float));
            else for (int k = 0; k < K; k++) guided[k] = u[k] + cfg_scale * (c[k] - u[k]);
            if (step == 0 && g == 0) memcpy(out->first_guided, guided, (size_t)K * sizeof(float));
            int code = sample_token(guided, K, p, &rngs[g], &pool.s[th]);
            out->codes[(size_t)g * N + step] = code;
            out->logprobs[(size_t)g * N + step] = logprob_of(c, K, code);
            for (int b = 0; b < B; b++) {
                codes[B * g + b] = code;
                segs[B * g + b] = (struct lm_segment){.slot = B * g + b, .n = 1};
            }
        }
        if (step + 1 == N) break;
        rc = gen_embed_codes(&m->gen, codes, B * G, rows, err);
        if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, B * G, rows, rows, err);
        if (rc == 0) rc = gen_head_logits(&m->gen, rows, B * G, logits, err);
    }
    free(uncond);
    free(rows);
    free(logits);
    scratch_pool_free(&pool);
    kv_cache_free(&cache);
    if (rc) image_group_free(out);
    return rc;
}
