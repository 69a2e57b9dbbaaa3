/* LoRA adapters (nn/lora.h) in the model and the trainer:
 * (adapting the language model's seven projections, the generation head's
 * two linears and both aligners' linears):
 *   - with B = 0 the adapted model computes exactly what the base does;
 *   - adapter gradients against the chain rule through a merged model: for
 *     W' = W + s·B·A, dL/dB = s·G·Aᵀ and dL/dA = s·Bᵀ·G where G = dL/dW' is
 *     the full-training gradient (itself checked against HF in test_train),
 *     computed here in double; and against finite differences;
 *   - the merged model's log-probs equal the adapted model's;
 *   - a BF16-held base gives the float32 base's numbers on the same rounded
 *     weights;
 *   - an update changes the adapters and nothing else;
 *   - bad settings fail naming the setting. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/rng.h"
#include "janus/teacher_forcing.h"
#include "model/janus_model.h"
#include "train/train.h"

#define TINY "tests/fixtures/janus-tiny"

static const struct lora_config LORA4 = {.rank = 4, .alpha = 8.0f, .targets = LORA_EVERY_TARGET};

/* One adapted linear of a model: its module path, adapter and shape. */
struct site {
    char module[DSR_PARAM_NAME_MAX];
    struct lora lo;
    int in, out;
};

/* Every adapted linear of m (janus_lora_sites' order). */
static int sites_of(const struct janus_model *m, struct site *out, int cap) {
    struct lora_site ls[64];
    int n = janus_lora_sites(&m->cfg, m->lora.targets, ls, 64);
    for (int i = 0; i < n && i < cap; i++) {
        memcpy(out[i].module, ls[i].module, sizeof out[i].module);
        out[i].lo = pt_get_lora(&m->params, &m->lora, ls[i].module);
        out[i].in = ls[i].in_dim;
        out[i].out = ls[i].out_dim;
    }
    return n < cap ? n : cap;
}

/* A caption, an image completion and a caption of an image (64
 * placeholders filled from vision features, so the understanding aligner
 * is on the path), with reference log-probs (β > 0). */
#define N_IMG 64
#define N_LP (5 + 12 + 4) /* log-probs of the three items */
struct batch {
    int32_t tctx[6], tcomp[5], gctx[5], codes[12], ictx[N_IMG + 3], icomp[4];
    float old_t[5], ref_t[5], old_g[12], ref_g[12], old_i[4], ref_i[4];
    float feat[N_IMG * 32]; /* tower output [64, vision hidden 32] */
    struct train_sample s[3];
    struct tf_item items[3];
};

static void build_batch(struct batch *b) {
    const int32_t tctx[6] = {256, 40, 41, 42, 43, 44}, tcomp[5] = {50, 60, 70, 80, 257};
    const int32_t gctx[5] = {256, 30, 31, 32, 259};
    memcpy(b->tctx, tctx, sizeof tctx);
    memcpy(b->tcomp, tcomp, sizeof tcomp);
    memcpy(b->gctx, gctx, sizeof gctx);
    for (int i = 0; i < 12; i++) {
        b->codes[i] = (i * 37 + 5) % 96;
        b->old_g[i] = -4.6f + 0.05f * (float)((i % 5) - 2);
        b->ref_g[i] = -4.5f + 0.1f * (float)((i % 3) - 1);
    }
    for (int i = 0; i < 5; i++) {
        b->old_t[i] = -5.6f + 0.1f * (float)i;
        b->ref_t[i] = -5.7f + 0.05f * (float)i;
    }
    b->s[0] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = b->tctx, .n_context = 6,
                                    .completion = b->tcomp, .n_completion = 5, .advantage = 0.8f,
                                    .old_logprobs = b->old_t, .ref_logprobs = b->ref_t};
    b->s[1] = (struct train_sample){.kind = TF_TARGET_CODES, .context = b->gctx, .n_context = 5,
                                    .completion = b->codes, .n_completion = 12, .advantage = -0.5f,
                                    .old_logprobs = b->old_g, .ref_logprobs = b->ref_g};
    b->items[0] = (struct tf_item){.context = b->tctx, .n_context = 6, .kind = TF_TARGET_TOKENS,
                                   .target = b->tcomp, .n_target = 5};
    b->items[1] = (struct tf_item){.context = b->gctx, .n_context = 5, .kind = TF_TARGET_CODES,
                                   .target = b->codes, .n_target = 12};
    struct dsr_rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < N_IMG * 32; i++) b->feat[i] = (float)(2 * rng_uniform(&rng) - 1);
    b->ictx[0] = 256;
    for (int i = 0; i < N_IMG; i++) b->ictx[1 + i] = 261; /* image_token_id */
    b->ictx[N_IMG + 1] = 40;
    b->ictx[N_IMG + 2] = 41;
    const int32_t icomp[4] = {50, 70, 60, 257};
    memcpy(b->icomp, icomp, sizeof icomp);
    for (int i = 0; i < 4; i++) {
        b->old_i[i] = -5.5f + 0.1f * (float)i;
        b->ref_i[i] = -5.6f + 0.05f * (float)i;
    }
    b->s[2] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = b->ictx, .n_context = N_IMG + 3,
                                    .vision_features = b->feat, .n_feature_rows = N_IMG, .completion = b->icomp,
                                    .n_completion = 4, .advantage = 0.6f, .old_logprobs = b->old_i,
                                    .ref_logprobs = b->ref_i};
    b->items[2] = (struct tf_item){.context = b->ictx, .n_context = N_IMG + 3, .kind = TF_TARGET_TOKENS,
                                   .target = b->icomp, .n_target = 4};
}

/* m's log-probs of the batch's three items; the image rows through m's own aligner. */
static int batch_logprobs(const struct janus_model *m, struct batch *b, float *lp, struct dsr_err *err) {
    float *embeds = malloc((size_t)N_IMG * m->cfg.text.hidden_size * sizeof(float));
    int rc = embeds ? vision_aligner_forward(m->vision, b->feat, N_IMG, embeds, err) : -1;
    b->items[2].image_embeds = embeds;
    b->items[2].n_image_rows = N_IMG;
    if (rc == 0) rc = tf_logprobs(m, b->items, 3, lp, err);
    b->items[2].image_embeds = NULL;
    free(embeds);
    return rc;
}

/* A smooth objective (no clipping kinks) with a KL term. */
static const struct grpo_hyper SMOOTH = {.epsilon = 100.0f, .epsilon_high = 100.0f, .beta = 0.3f};

static int load(struct th *t, struct janus_model *m, const char *weights, enum janus_weights w,
                const struct lora_config *lora) {
    struct dsr_err err;
    return TH_CHECK(t, janus_model_load_files(TINY "/config.json", weights, w, lora, m, &err) == 0, "load %s: %s",
                    weights, err.msg)
               ? 0
               : -1;
}

/* Every lora_B factor set to uniform ±0.1 (seeded), so gradients reach A. */
static void randomize_b(struct janus_model *m, uint64_t seed) {
    struct dsr_rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->params.n; i++) {
        const struct param *p = &m->params.items[i];
        if (!p->adapter || !strstr(p->name, "lora_B")) continue;
        float *w = pt_data(&m->params, p);
        for (size_t j = 0; j < p->numel; j++) w[j] = (float)(0.2 * rng_uniform(&rng) - 0.1);
    }
}

static int grads(struct th *t, struct janus_model *m, const struct batch *b, struct trainer *tr, double *loss) {
    struct dsr_err err;
    struct train_stats st;
    struct grpo_hyper h = SMOOTH;
    if (!TH_CHECK(t, trainer_init(tr, m, 0, &err) == 0, "trainer: %s", err.msg)) return -1;
    if (!TH_CHECK(t, trainer_grpo_backward(tr, m, b->s, 3, &h, &st, &err) == 0, "backward: %s", err.msg)) {
        trainer_free(tr);
        return -1;
    }
    if (loss) *loss = st.loss;
    return 0;
}

static void test_zero_b_is_base(struct th *t) {
    struct janus_model base, ad;
    if (load(t, &base, TINY "/model.safetensors", JANUS_WEIGHTS_F32, NULL)) return;
    if (load(t, &ad, TINY "/model.safetensors", JANUS_WEIGHTS_F32, &LORA4)) {
        janus_model_free(&base);
        return;
    }
    /* per layer Σ r·(in + out) over the 7 projections: 4·(128+96+96+128+192+192+192) = 4096; the head's
     * proj_out 4·(64+64) and vision_head 4·(64+96); the aligners' fc1 4·(32+64) (understanding) and
     * 4·(8+64) (generation), and one hidden layer each 4·(64+64) */
    const size_t want = 2 * 4096 + 512 + 640 + 384 + 512 + 288 + 512;
    TH_CHECK(t, pt_count(&ad.params, true) == want && pt_count_adapters(&ad.params) == want,
             "trainable %zu, adapters %zu (want %zu: only adapters train)", pt_count(&ad.params, true),
             pt_count_adapters(&ad.params), want);
    TH_CHECK(t, pt_count(&ad.params, false) == pt_count(&base.params, false) + want, "parameter count");
    struct batch b;
    build_batch(&b);
    float lp_base[N_LP], lp_ad[N_LP];
    struct dsr_err err;
    TH_CHECK(t, batch_logprobs(&base, &b, lp_base, &err) == 0 && batch_logprobs(&ad, &b, lp_ad, &err) == 0,
             "logprobs: %s", err.msg);
    TH_CHECK(t, memcmp(lp_base, lp_ad, sizeof lp_base) == 0, "B = 0: log-probs differ from the base model's");
    struct trainer tb, ta;
    double loss_b = 0, loss_a = 1;
    if (grads(t, &base, &b, &tb, &loss_b) == 0) {
        if (grads(t, &ad, &b, &ta, &loss_a) == 0) trainer_free(&ta);
        trainer_free(&tb);
    }
    TH_CHECK(t, loss_a == loss_b, "B = 0: loss %.17g differs from the base's %.17g", loss_a, loss_b);
    janus_model_free(&base);
    janus_model_free(&ad);
}

/* W += s·B·A for every adapter of ad, into the float32 full model full. */
static void merge_into(struct janus_model *full, const struct janus_model *ad) {
    float s = ad->lora.alpha / (float)ad->lora.rank;
    int r = ad->lora.rank;
    struct site sites[64];
    int n = sites_of(ad, sites, 64);
    for (int j = 0; j < n; j++) {
        const struct lora *lo = &sites[j].lo;
        int in = sites[j].in, out = sites[j].out;
        float *w = pt_get(&full->params, "%s.weight", sites[j].module);
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int q = 0; q < r; q++) acc += (double)lo->b[o * r + q] * lo->a[q * in + i];
                w[(size_t)o * in + i] = (float)(w[(size_t)o * in + i] + s * acc);
            }
    }
}

static void test_chain_rule_and_merge(struct th *t) {
    struct janus_model full, ad;
    if (load(t, &full, TINY "/model.safetensors", JANUS_WEIGHTS_F32, NULL)) return;
    if (load(t, &ad, TINY "/model.safetensors", JANUS_WEIGHTS_F32, &LORA4)) {
        janus_model_free(&full);
        return;
    }
    randomize_b(&ad, 7);
    merge_into(&full, &ad);
    struct batch b;
    build_batch(&b);
    float lp_full[N_LP], lp_ad[N_LP];
    struct dsr_err err;
    TH_CHECK(t, batch_logprobs(&full, &b, lp_full, &err) == 0 && batch_logprobs(&ad, &b, lp_ad, &err) == 0,
             "logprobs: %s", err.msg);
    TH_CLOSE(t, "merged model's log-probs vs the adapted model's", lp_ad, lp_full, N_LP, 1e-5);

    struct trainer tf, ta;
    if (grads(t, &full, &b, &tf, NULL)) goto out;
    if (grads(t, &ad, &b, &ta, NULL)) {
        trainer_free(&tf);
        goto out;
    }
    float s = ad.lora.alpha / (float)ad.lora.rank;
    int r = ad.lora.rank;
    double worst = 0;
    struct site sites[64];
    int n_sites = sites_of(&ad, sites, 64);
    for (int j = 0; j < n_sites; j++) {
        const struct lora *lo = &sites[j].lo;
        const char *mod = sites[j].module;
        int in = sites[j].in, out = sites[j].out;
        char name[200];
        snprintf(name, sizeof name, "%.160s.weight", mod);
        const struct param *pw = pt_find(&full.params, name);
        snprintf(name, sizeof name, "%.160s.lora_A.weight", mod);
        const struct param *pa = pt_find(&ad.params, name);
        snprintf(name, sizeof name, "%.160s.lora_B.weight", mod);
        const struct param *pb = pt_find(&ad.params, name);
        if (!TH_CHECK(t, pw && pa && pb && lo->a, "%s: tensors missing", mod)) continue;
        const float *G = tf.grad + pw->offset, *gA = ta.grad + pa->offset, *gB = ta.grad + pb->offset;
        float *wantA = malloc((size_t)r * in * sizeof(float)), *wantB = malloc((size_t)out * r * sizeof(float));
        for (int q = 0; q < r; q++) /* dL/dA = s·Bᵀ·G */
            for (int i = 0; i < in; i++) {
                double acc = 0;
                for (int o = 0; o < out; o++) acc += (double)lo->b[o * r + q] * G[(size_t)o * in + i];
                wantA[q * in + i] = (float)(s * acc);
            }
        for (int o = 0; o < out; o++) /* dL/dB = s·G·Aᵀ */
            for (int q = 0; q < r; q++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double)G[(size_t)o * in + i] * lo->a[q * in + i];
                wantB[o * r + q] = (float)(s * acc);
            }
        snprintf(name, sizeof name, "%.160s lora_A gradient", mod);
        TH_CLOSE(t, name, gA, wantA, (size_t)r * in, 1e-4);
        snprintf(name, sizeof name, "%.160s lora_B gradient", mod);
        TH_CLOSE(t, name, gB, wantB, (size_t)out * r, 1e-4);
        double mx = 0, d = 0;
        for (int q = 0; q < r * in; q++) mx = fmax(mx, fabs(wantA[q])), d = fmax(d, fabs(gA[q] - wantA[q]));
        worst = fmax(worst, d / mx);
        TH_CHECK(t, mx > 0, "%s: lora_A gradient is zero", mod);
        free(wantA);
        free(wantB);
    }
    TH_CHECK(t, n_sites == 20, "%d adapted linears (want 2 layers × 7 + 2 + 2 × 2)", n_sites);
    printf("  chain rule: 20 adapted linears, worst lora_A error %.2e of the tensor's max\n", worst);
    trainer_free(&tf);
    trainer_free(&ta);
out:
    janus_model_free(&full);
    janus_model_free(&ad);
}

static double loss_of(struct janus_model *m, struct trainer *tr, const struct batch *b) {
    struct train_stats st;
    struct dsr_err err;
    struct grpo_hyper h = SMOOTH;
    return trainer_grpo_backward(tr, m, b->s, 3, &h, &st, &err) ? NAN : st.loss;
}

static void test_finite_differences(struct th *t) {
    struct janus_model ad;
    if (load(t, &ad, TINY "/model.safetensors", JANUS_WEIGHTS_F32, &LORA4)) return;
    randomize_b(&ad, 9);
    struct batch b;
    build_batch(&b);
    struct trainer tr, probe;
    struct dsr_err err;
    if (grads(t, &ad, &b, &tr, NULL)) goto out;
    if (!TH_CHECK(t, trainer_init(&probe, &ad, 0, &err) == 0, "%s", err.msg)) {
        trainer_free(&tr);
        goto out;
    }
    const char *names[] = {"model.language_model.layers.0.self_attn.q_proj.lora_A.weight",
                           "model.language_model.layers.1.self_attn.k_proj.lora_B.weight",
                           "model.language_model.layers.0.self_attn.v_proj.lora_B.weight",
                           "model.language_model.layers.1.self_attn.o_proj.lora_A.weight",
                           "model.language_model.layers.0.mlp.gate_proj.lora_B.weight",
                           "model.language_model.layers.1.mlp.up_proj.lora_A.weight",
                           "model.language_model.layers.0.mlp.down_proj.lora_A.weight",
                           "model.language_model.layers.1.mlp.down_proj.lora_B.weight",
                           "model.generation_head.proj_out.lora_A.weight",
                           "model.generation_head.vision_head.lora_B.weight",
                           "model.aligner.fc1.lora_A.weight",
                           "model.aligner.hidden_layers.0.lora_B.weight",
                           "model.generation_aligner.fc1.lora_B.weight",
                           "model.generation_aligner.hidden_layers.0.lora_A.weight"};
    const double eps = 1e-3;
    double worst = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const struct param *p = pt_find(&ad.params, names[k]);
        if (!TH_CHECK(t, p && p->adapter, "no adapter %s", names[k])) continue;
        const float *g = tr.grad + p->offset;
        size_t big = 0;
        for (size_t j = 1; j < p->numel; j++) big = fabsf(g[j]) > fabsf(g[big]) ? j : big;
        size_t pick[2] = {big, (big * 7 + 3) % p->numel};
        for (int q = 0; q < 2; q++) {
            float *w = ad.params.trainable + p->offset + pick[q], saved = *w;
            *w = (float)(saved + eps);
            double up = loss_of(&ad, &probe, &b);
            *w = (float)(saved - eps);
            double down = loss_of(&ad, &probe, &b);
            *w = saved;
            double fd = (up - down) / (2 * eps), rel = fabs(fd - g[pick[q]]) / fabs(g[big]);
            worst = fmax(worst, rel);
            TH_CHECK(t, rel < 2e-2, "%s[%zu]: finite difference %.6g, analytic %.6g", names[k], pick[q], fd,
                     g[pick[q]]);
        }
    }
    printf("  finite differences: 14 adapters × 2 elements, worst error %.2e of the tensor's max gradient\n", worst);
    trainer_free(&tr);
    trainer_free(&probe);
out:
    janus_model_free(&ad);
}

/* A BF16-held base (frozen, read through the BF16 kernels, its input
 * gradients through widened panels) against the float32-held base with the
 * same BF16-rounded values. */
static void test_bf16_base(struct th *t) {
    struct janus_model f32, bf16;
    if (load(t, &f32, TINY "/model-bf16.safetensors", JANUS_WEIGHTS_F32, &LORA4)) return;
    if (load(t, &bf16, TINY "/model-bf16.safetensors", JANUS_WEIGHTS_BF16, &LORA4)) {
        janus_model_free(&f32);
        return;
    }
    TH_CHECK(t, bf16.lm.layers[0].q_w.bf16 && bf16.gen.head_w.bf16 && bf16.lm.lm_head.bf16,
             "the base should be held BF16");
    randomize_b(&f32, 5);
    randomize_b(&bf16, 5);
    struct batch b;
    build_batch(&b);
    float lp_a[N_LP], lp_b[N_LP];
    struct dsr_err err;
    TH_CHECK(t, batch_logprobs(&f32, &b, lp_a, &err) == 0 && batch_logprobs(&bf16, &b, lp_b, &err) == 0,
             "logprobs: %s", err.msg);
    TH_CLOSE(t, "BF16-held log-probs", lp_b, lp_a, N_LP, 1e-5);
    struct trainer ta, tb;
    if (grads(t, &f32, &b, &ta, NULL) == 0) {
        if (grads(t, &bf16, &b, &tb, NULL) == 0) {
            TH_CHECK(t, ta.n_params == tb.n_params, "adapter arenas differ");
            TH_CLOSE(t, "adapter gradients, BF16-held base", tb.grad, ta.grad, ta.n_params, 1e-5);
            trainer_free(&tb);
        }
        trainer_free(&ta);
    }
    janus_model_free(&f32);
    janus_model_free(&bf16);
}

static void test_update_moves_only_adapters(struct th *t) {
    struct janus_model m;
    if (load(t, &m, TINY "/model-bf16.safetensors", JANUS_WEIGHTS_BF16, &LORA4)) return;
    struct param_table *pt = &m.params;
    size_t n16 = pt->n_frozen_bf16, n32 = pt->n_frozen;
    uint16_t *frozen16 = malloc(n16 * sizeof *frozen16);
    float *frozen32 = malloc(n32 * sizeof *frozen32), *before = malloc(pt->n_trainable * sizeof *before);
    memcpy(frozen16, pt->frozen_bf16, n16 * sizeof *frozen16);
    memcpy(frozen32, pt->frozen, n32 * sizeof *frozen32);
    memcpy(before, pt->trainable, pt->n_trainable * sizeof *before);
    struct batch b;
    build_batch(&b);
    struct trainer tr;
    struct dsr_err err;
    struct train_stats st;
    struct adamw_hyper h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    if (grads(t, &m, &b, &tr, NULL) == 0) {
        TH_CHECK(t, tr.n_params == pt->n_trainable && pt_count(pt, true) == pt_count_adapters(pt),
                 "optimizer state is for adapters only");
        TH_CHECK(t, trainer_step(&tr, &m, &h, &st, &err) == 0, "step: %s", err.msg);
        TH_CHECK(t, memcmp(frozen16, pt->frozen_bf16, n16 * sizeof *frozen16) == 0 &&
                        memcmp(frozen32, pt->frozen, n32 * sizeof *frozen32) == 0,
                 "a LoRA update changed frozen base weights");
        size_t moved_b = 0, moved_a = 0;
        for (size_t i = 0; i < pt->n; i++) {
            const struct param *p = &pt->items[i];
            if (!p->adapter) continue;
            size_t moved = 0;
            for (size_t j = 0; j < p->numel; j++) moved += pt->trainable[p->offset + j] != before[p->offset + j];
            if (strstr(p->name, "lora_B")) moved_b += moved > 0;
            else moved_a += moved > 0;
        }
        /* B starts at 0, so A's gradient is 0 in the first step (dL/dA = s·Bᵀ·G); B's is not */
        TH_CHECK(t, moved_b == 20 && moved_a == 0, "first step moved %zu of 20 B and %zu of 20 A factors", moved_b,
                 moved_a);
        trainer_free(&tr);
    }
    free(frozen16);
    free(frozen32);
    free(before);
    janus_model_free(&m);
}

static void test_bad_settings(struct th *t) {
    struct janus_config cfg;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_config_load(TINY "/config.json", &cfg, &err) == 0, "%s", err.msg)) return;
    const struct {
        struct lora_config lora;
        const char *needle;
    } cases[] = {
        {{.rank = -1, .alpha = 8, .targets = LORA_LM_TARGETS}, "lora rank"},
        {{.rank = 33, .alpha = 8, .targets = LORA_LM_TARGETS}, "lora rank: 33 is outside [1, 32]"},
        {{.rank = 4, .alpha = 0, .targets = LORA_LM_TARGETS}, "lora alpha"},
        {{.rank = 4, .alpha = NAN, .targets = LORA_LM_TARGETS}, "lora alpha"},
        {{.rank = 4, .alpha = 8, .targets = 0}, "lora targets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct janus_model m;
        int rc = janus_model_init_random(&cfg, 1, JANUS_WEIGHTS_F32, &cases[i].lora, &m, &err);
        if (rc == 0) janus_model_free(&m);
        TH_CHECK(t, rc != 0 && strstr(err.msg, cases[i].needle), "case %zu: rc %d, error '%s' (want '%s')", i, rc,
                 rc ? err.msg : "", cases[i].needle);
    }
    /* rank 64 is fine when only the 64-wide projections are adapted */
    struct lora_config q_only = {.rank = 64, .alpha = 8, .targets = 1u << LORA_Q};
    struct janus_model m;
    if (TH_CHECK(t, janus_model_init_random(&cfg, 1, JANUS_WEIGHTS_F32, &q_only, &m, &err) == 0, "%s", err.msg))
        janus_model_free(&m);
    unsigned targets = 0;
    TH_CHECK(t, lora_parse_targets("q_proj, v_proj,down_proj", &targets, &err) == 0 &&
                    targets == ((1u << LORA_Q) | (1u << LORA_V) | (1u << LORA_DOWN)),
             "parse: %s (0x%x)", err.msg, targets);
    TH_CHECK(t, lora_parse_targets("all", &targets, &err) == 0 && targets == LORA_LM_TARGETS, "all");
    TH_CHECK(t, lora_parse_targets("q_proj,qkv", &targets, &err) != 0 && strstr(err.msg, "\"qkv\""),
             "an unknown target is named: %s", err.msg);
    TH_CHECK(t, lora_parse_targets("", &targets, &err) != 0, "an empty list is refused");
}

int main(void) {
    struct th t = {0};
    th_run(&t, "zero_b_is_base", test_zero_b_is_base);
    th_run(&t, "chain_rule_and_merge", test_chain_rule_and_merge);
    th_run(&t, "finite_differences", test_finite_differences);
    th_run(&t, "bf16_base", test_bf16_base);
    th_run(&t, "update_moves_only_adapters", test_update_moves_only_adapters);
    th_run(&t, "bad_settings", test_bad_settings);
    return th_finish(&t, "test_lora");
}
