#include "model/lm.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"
#include "nn/ops.h"

#define LM_PREFIX "model.language_model"

void lm_target_dims(const struct text_config *t, enum lora_target target, int *in_dim, int *out_dim) {
    int C = t->hidden_size, I = t->intermediate_size, Q = t->n_heads * t->head_dim, KV = t->n_kv_heads * t->head_dim;
    static const int IN_IS_C = (1 << LORA_Q) | (1 << LORA_K) | (1 << LORA_V) | (1 << LORA_GATE) | (1 << LORA_UP);
    *in_dim = (IN_IS_C >> target) & 1 ? C : target == LORA_O ? Q : I;
    *out_dim = target == LORA_Q ? Q : target == LORA_K || target == LORA_V ? KV : target == LORA_O || target == LORA_DOWN ? C : I;
}

static bool has_lora(const struct lora_config *lora) { return lora && lora->rank > 0; }

int lm_declare(const struct janus_config *c, bool tied, const struct lora_config *lora, struct param_table *pt,
               struct dsr_err *err) {
    const struct text_config *t = &c->text;
    const bool tr = !has_lora(lora); /* with adapters, only they train */
    int64_t C = t->hidden_size, V = t->vocab_size, I = t->intermediate_size;
    int64_t Q = (int64_t)t->n_heads * t->head_dim, KV = (int64_t)t->n_kv_heads * t->head_dim;
    if (pt_declare_matrix(pt, tr, V, C, err, LM_PREFIX ".embed_tokens.weight") ||
        pt_declare(pt, tr, 1, (int64_t[]){C}, err, LM_PREFIX ".norm.weight"))
        return -1;
    if (!tied && pt_declare_matrix(pt, tr, V, C, err, "lm_head.weight")) return -1;
    for (int l = 0; l < t->n_layers; l++) {
        const char *L = LM_PREFIX ".layers.%d.%s";
        if (pt_declare(pt, tr, 1, (int64_t[]){C}, err, L, l, "input_layernorm.weight") ||
            pt_declare_matrix(pt, tr, Q, C, err, L, l, "self_attn.q_proj.weight") ||
            pt_declare_matrix(pt, tr, KV, C, err, L, l, "self_attn.k_proj.weight") ||
            pt_declare_matrix(pt, tr, KV, C, err, L, l, "self_attn.v_proj.weight") ||
            pt_declare_matrix(pt, tr, C, Q, err, L, l, "self_attn.o_proj.weight") ||
            pt_declare(pt, tr, 1, (int64_t[]){C}, err, L, l, "post_attention_layernorm.weight") ||
            pt_declare_matrix(pt, tr, I, C, err, L, l, "mlp.gate_proj.weight") ||
            pt_declare_matrix(pt, tr, I, C, err, L, l, "mlp.up_proj.weight") ||
            pt_declare_matrix(pt, tr, C, I, err, L, l, "mlp.down_proj.weight"))
            return -1;
        if (t->attention_bias &&
            (pt_declare(pt, tr, 1, (int64_t[]){Q}, err, L, l, "self_attn.q_proj.bias") ||
             pt_declare(pt, tr, 1, (int64_t[]){KV}, err, L, l, "self_attn.k_proj.bias") ||
             pt_declare(pt, tr, 1, (int64_t[]){KV}, err, L, l, "self_attn.v_proj.bias") ||
             pt_declare(pt, tr, 1, (int64_t[]){C}, err, L, l, "self_attn.o_proj.bias")))
            return -1;
        if (t->mlp_bias && (pt_declare(pt, tr, 1, (int64_t[]){I}, err, L, l, "mlp.gate_proj.bias") ||
                            pt_declare(pt, tr, 1, (int64_t[]){I}, err, L, l, "mlp.up_proj.bias") ||
                            pt_declare(pt, tr, 1, (int64_t[]){C}, err, L, l, "mlp.down_proj.bias")))
            return -1;
    }
    return 0;
}

static struct weight need(const struct param_table *pt, const char *name, struct dsr_err *err, int *missing) {
    struct weight w = pt_get_weight(pt, "%s", name);
    if (!weight_present(w)) {
        if (!*missing) dsr_errf(err, "parameter %s was not declared", name);
        *missing = 1;
    }
    return w;
}

int lm_bind(const struct janus_config *c, bool tied, const struct lora_config *lora, const struct param_table *pt,
            struct lm_model *m, struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = c->text;
    m->tied = tied;
    int missing = 0;
    m->embed_tokens = need(pt, LM_PREFIX ".embed_tokens.weight", err, &missing);
    m->final_norm = need(pt, LM_PREFIX ".norm.weight", err, &missing).f32;
    m->lm_head = tied ? m->embed_tokens : need(pt, "lm_head.weight", err, &missing);
    m->layers = calloc((size_t)c->text.n_layers, sizeof *m->layers);
    if (!m->layers) return dsr_errf(err, "out of memory");
    char name[DSR_PARAM_NAME_MAX];
    for (int l = 0; l < c->text.n_layers; l++) {
        struct lm_layer *ly = &m->layers[l];
        const struct {
            struct weight *matrix; /* or */
            const float **vector;
            const char *suffix;
            bool present;
        } items[] = {
            {NULL, &ly->attn_norm, "input_layernorm.weight", true},
            {&ly->q_w, NULL, "self_attn.q_proj.weight", true},
            {&ly->k_w, NULL, "self_attn.k_proj.weight", true},
            {&ly->v_w, NULL, "self_attn.v_proj.weight", true},
            {&ly->o_w, NULL, "self_attn.o_proj.weight", true},
            {NULL, &ly->mlp_norm, "post_attention_layernorm.weight", true},
            {&ly->gate_w, NULL, "mlp.gate_proj.weight", true},
            {&ly->up_w, NULL, "mlp.up_proj.weight", true},
            {&ly->down_w, NULL, "mlp.down_proj.weight", true},
            {NULL, &ly->q_b, "self_attn.q_proj.bias", c->text.attention_bias},
            {NULL, &ly->k_b, "self_attn.k_proj.bias", c->text.attention_bias},
            {NULL, &ly->v_b, "self_attn.v_proj.bias", c->text.attention_bias},
            {NULL, &ly->o_b, "self_attn.o_proj.bias", c->text.attention_bias},
            {NULL, &ly->gate_b, "mlp.gate_proj.bias", c->text.mlp_bias},
            {NULL, &ly->up_b, "mlp.up_proj.bias", c->text.mlp_bias},
            {NULL, &ly->down_b, "mlp.down_proj.bias", c->text.mlp_bias},
        };
        for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
            if (!items[i].present) continue;
            snprintf(name, sizeof name, LM_PREFIX ".layers.%d.%s", l, items[i].suffix);
            struct weight w = need(pt, name, err, &missing);
            if (items[i].matrix) *items[i].matrix = w;
            else *items[i].vector = w.f32;
        }
        for (int k = 0; has_lora(lora) && k < LORA_N_LM_TARGETS; k++) {
            if (!(lora->targets & (1u << k))) continue;
            const char *mod = lora_target_module((enum lora_target)k);
            snprintf(name, sizeof name, LM_PREFIX ".layers.%d.%s.lora_A.weight", l, mod);
            const float *a = need(pt, name, err, &missing).f32;
            snprintf(name, sizeof name, LM_PREFIX ".layers.%d.%s.lora_B.weight", l, mod);
            const float *b = need(pt, name, err, &missing).f32;
            ly->lora[k] = (struct lora){.a = a, .b = b, .rank = lora->rank, .scale = lora->alpha / (float)lora->rank};
        }
    }
    m->lora_rank = has_lora(lora) ? lora->rank : 0;
    if (missing) {
        lm_release(m);
        return -1;
    }
    return 0;
}

void lm_release(struct lm_model *m) {
    free(m->layers);
    m->layers = NULL;
}

int lm_embed_tokens(const struct lm_model *m, const int32_t *ids, int n, float *out, struct dsr_err *err) {
    int C = m->cfg.hidden_size;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return dsr_errf(err, "token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                            m->cfg.vocab_size);
        weight_copy_row(out + (size_t)i * C, m->embed_tokens, (size_t)ids[i], (size_t)C);
    }
    return 0;
}

int lm_logits(const struct lm_model *m, const float *hidden, int n, float *logits, struct dsr_err *err) {
    return op_linear_w(logits, hidden, m->lm_head, NULL, n, m->cfg.hidden_size, m->cfg.vocab_size, err);
}

/* Scratch for one forward over T rows; one allocation, carved into buffers. */
struct lm_scratch {
    float *x, *h, *q, *k, *v, *att, *gate, *up, *lora_u;
    float *rope; /* [T, head_dim/2, 2] cos, sin of every row's position */
    int *pos;
    void *block;
};

static int scratch_alloc(struct lm_scratch *s, const struct text_config *t, int lora_rank, int T,
                         struct dsr_err *err) {
    size_t C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, I = (size_t)t->intermediate_size, n = (size_t)T;
    size_t R = (size_t)(t->head_dim / 2) * 2;
    size_t floats = n * (C + C + Q + KV + KV + Q + I + I + (size_t)lora_rank + R);
    s->block = malloc(floats * sizeof(float) + n * sizeof(int));
    if (!s->block) return dsr_errf(err, "lm forward: out of memory for %d rows", T);
    float *p = s->block;
    s->x = p;
    s->h = s->x + n * C;
    s->q = s->h + n * C;
    s->k = s->q + n * Q;
    s->v = s->k + n * KV;
    s->att = s->v + n * KV;
    s->gate = s->att + n * Q;
    s->up = s->gate + n * I;
    s->lora_u = s->up + n * I;
    s->rope = s->lora_u + n * (size_t)lora_rank;
    s->pos = (int *)(s->rope + n * R);
    return 0;
}

static int check_segments(const struct kv_cache *cache, const struct lm_segment *segs, int n_segs, int *T,
                          struct dsr_err *err) {
    *T = 0;
    for (int s = 0; s < n_segs; s++) {
        int slot = segs[s].slot;
        if (slot < 0 || slot >= cache->n_slots) return dsr_errf(err, "segment %d: slot %d out of range", s, slot);
        if (segs[s].n <= 0) return dsr_errf(err, "segment %d: empty", s);
        if (cache->len[slot] < kv_cache_first_position(cache, slot))
            return dsr_errf(err, "segment %d: slot %d stores positions from %d on: share a prefix into it first", s,
                            slot, kv_cache_first_position(cache, slot));
        if (cache->len[slot] + segs[s].n > cache->max_len)
            return dsr_errf(err, "sequence of %d tokens exceeds the cache length %d", cache->len[slot] + segs[s].n,
                            cache->max_len);
        for (int r = 0; r < s; r++)
            if (segs[r].slot == slot) return dsr_errf(err, "segments %d and %d share slot %d", r, s, slot);
        *T += segs[s].n;
    }
    return 0;
}

int lm_project(const struct lm_layer *ly, enum lora_target target, struct weight w, const float *b,
               const struct text_config *t, float *out, const float *in, int T, float *u, struct dsr_err *err) {
    int in_dim, out_dim;
    lm_target_dims(t, target, &in_dim, &out_dim);
    if (op_linear_w(out, in, w, b, T, in_dim, out_dim, err)) return -1;
    if (lora_present(&ly->lora[target])) lora_forward(out, in, &ly->lora[target], T, in_dim, out_dim, u);
    return 0;
}

/* lm_project of several targets on one input (q/k/v, gate/up): the base
 * products as a group (one parallel region in a decode step), then each
 * target's adapter. */
static int project_group(const struct lm_layer *ly, const struct gemm_small_job *jobs, const enum lora_target *targets,
                         int count, const struct text_config *t, const float *in, int T, float *u,
                         struct dsr_err *err) {
    if (op_linear_group(jobs, count, in, T, t->hidden_size, err)) return -1;
    for (int j = 0; j < count; j++)
        if (lora_present(&ly->lora[targets[j]]))
            lora_forward(jobs[j].out, in, &ly->lora[targets[j]], T, t->hidden_size, jobs[j].out_dim, u);
    return 0;
}

/* lm_forward of one team over segments lm_forward_teams has checked: every
 * thread of the current team on each product in turn (one team alone: all
 * threads; inside lm_forward_teams: the calling thread). */
static int forward_rows(const struct lm_model *m, struct kv_cache *cache, const struct lm_segment *segs, int n_segs,
                        const float *embeds, float *hidden, struct dsr_err *err) {
    const struct text_config *t = &m->cfg;
    int T = 0;
    for (int sg = 0; sg < n_segs; sg++) T += segs[sg].n;
    if (cache->n_kv_heads != t->n_kv_heads || cache->head_dim != t->head_dim || cache->n_layers != t->n_layers)
        return dsr_errf(err, "kv cache geometry does not match the model");
    struct lm_scratch s = {0};
    if (scratch_alloc(&s, t, m->lora_rank, T, err)) return -1;
    int C = t->hidden_size, I = t->intermediate_size;
    int Q = t->n_heads * t->head_dim, KV = t->n_kv_heads * t->head_dim;

    for (int sg = 0, row = 0; sg < n_segs; sg++)
        for (int i = 0; i < segs[sg].n; i++) s.pos[row++] = cache->len[segs[sg].slot] + i;
    memcpy(s.x, embeds, (size_t)T * C * sizeof(float));
    op_rope_table(s.rope, s.pos, T, t->head_dim, t->rope_theta);

    int rc = 0;
    for (int l = 0; l < t->n_layers && rc == 0; l++) {
        const struct lm_layer *ly = &m->layers[l];
        /* attention block */
        op_rmsnorm(s.h, s.x, ly->attn_norm, T, C, t->rms_norm_eps);
        const struct gemm_small_job qkv[] = {{s.q, ly->q_w, ly->q_b, Q}, {s.k, ly->k_w, ly->k_b, KV},
                                              {s.v, ly->v_w, ly->v_b, KV}};
        if (project_group(ly, qkv, (const enum lora_target[]){LORA_Q, LORA_K, LORA_V}, 3, t, s.h, T, s.lora_u, err)) {
            rc = -1;
            break;
        }
        op_rope_apply_inplace(s.q, s.rope, T, t->n_heads, t->head_dim);
        op_rope_apply_inplace(s.k, s.rope, T, t->n_kv_heads, t->head_dim);
        for (int sg = 0, row = 0; sg < n_segs; sg++) {
            int slot = segs[sg].slot;
            kv_cache_write(cache, slot, l, cache->len[slot], s.k + (size_t)row * KV, s.v + (size_t)row * KV,
                           segs[sg].n);
            row += segs[sg].n;
        }
        rc = attention_forward(s.q, cache, l, segs, n_segs, t->n_heads, t->n_kv_heads, t->head_dim, s.att, err);
        if (rc || lm_project(ly, LORA_O, ly->o_w, ly->o_b, t, s.h, s.att, T, s.lora_u, err)) {
            rc = -1;
            break;
        }
        op_add_inplace(s.x, s.h, (size_t)T * C);
        /* MLP block */
        op_rmsnorm(s.h, s.x, ly->mlp_norm, T, C, t->rms_norm_eps);
        const struct gemm_small_job gate_up[] = {{s.gate, ly->gate_w, ly->gate_b, I}, {s.up, ly->up_w, ly->up_b, I}};
        if (project_group(ly, gate_up, (const enum lora_target[]){LORA_GATE, LORA_UP}, 2, t, s.h, T, s.lora_u, err)) {
            rc = -1;
            break;
        }
        op_swiglu(s.gate, s.gate, s.up, (size_t)T * I);
        if (lm_project(ly, LORA_DOWN, ly->down_w, ly->down_b, t, s.h, s.gate, T, s.lora_u, err)) {
            rc = -1;
            break;
        }
        op_add_inplace(s.x, s.h, (size_t)T * C);
    }
    if (rc == 0) {
        op_rmsnorm(hidden, s.x, m->final_norm, T, C, t->rms_norm_eps);
        for (int sg = 0; sg < n_segs; sg++) cache->len[segs[sg].slot] += segs[sg].n;
    }
    free(s.block);
    return rc;
}

int lm_forward_teams(const struct lm_model *m, struct kv_cache *cache, const struct lm_segment *segs, int n_segs,
                     const float *embeds, float *hidden, int teams, struct dsr_err *err) {
    int T;
    if (check_segments(cache, segs, n_segs, &T, err)) return -1;
    if (teams > n_segs) teams = n_segs;
    if (teams <= 1) return forward_rows(m, cache, segs, n_segs, embeds, hidden, err);
    int C = m->cfg.hidden_size, failed = -1;
    struct dsr_err team_err[LM_MAX_TEAMS];
    if (teams > LM_MAX_TEAMS) teams = LM_MAX_TEAMS;
    /* Team k takes segments [s0, s1) and their rows, contiguous; the split
     * balances rows.  Teams touch distinct slots (check_segments), so their
     * cache writes never meet, and a shared prefix is only read. */
#pragma omp parallel num_threads(teams)
    {
        int k = omp_get_thread_num(), nk = omp_get_num_threads();
        int s0 = 0, s1 = 0, r0 = 0;
        for (int s = 0, r = 0; s < n_segs; r += segs[s].n, s++) {
            int owner = (int)((long long)r * nk / T);
            if (owner < k) s0 = s + 1, r0 = r + segs[s].n;
            if (owner <= k) s1 = s + 1;
        }
        if (s1 > s0 && forward_rows(m, cache, segs + s0, s1 - s0, embeds + (size_t)r0 * C, hidden + (size_t)r0 * C,
                                    &team_err[k]) != 0) {
#pragma omp critical(lm_teams_err)
            if (failed < 0 || k < failed) failed = k;
        }
    }
    if (failed >= 0) {
        *err = team_err[failed];
        return -1;
    }
    return 0;
}

/* Teams for one step: a decode step (one row per segment) of a model with
 * BF16 projection weights, with at least LM_TEAM_MIN_ROWS rows per thread,
 * runs as one team per thread; anything else, or a caller already inside a
 * parallel region (or with nested parallelism on, which would
 * oversubscribe), as one team.  Float32 weights stay one team: each team
 * streams the weights itself, and at twice the bytes that ate the gain
 * (bench/README.md, Decode teams). */
static int step_teams(const struct lm_model *m, const struct lm_segment *segs, int n_segs) {
    if (m->cfg.n_layers < 1 || !m->layers[0].q_w.bf16) return 1;
    if (omp_in_parallel() || omp_get_max_active_levels() > 1) return 1;
    for (int s = 0; s < n_segs; s++)
        if (segs[s].n != 1) return 1;
    int teams = omp_get_max_threads();
    if (teams > n_segs / LM_TEAM_MIN_ROWS) teams = n_segs / LM_TEAM_MIN_ROWS;
    return teams < 1 ? 1 : teams;
}

int lm_forward(const struct lm_model *m, struct kv_cache *cache, const struct lm_segment *segs, int n_segs,
               const float *embeds, float *hidden, struct dsr_err *err) {
    return lm_forward_teams(m, cache, segs, n_segs, embeds, hidden, step_teams(m, segs, n_segs), err);
}
