/* Training: GRPO/SimPO losses and gradients against the HF fixtures
 * (float64 autograd), finite differences on every kind of parameter,
 * micro-batching invariance, the reference-policy path, AdamW against a
 * hand-computed reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tiny_fixture.h"
#include "model/janus_model.h"
#include "base/rng.h"
#include "train/train.h"

#define N_SEQ 4

/* Vision features [64, Dv] of the fixture's image (the first one of `key`). */
static float *image_features(struct th *t, struct tiny_fixture *fx, const char *key) {
    size_t n;
    float *px = th_tensor_f32(fx->cases, key, &n);
    const struct vision_config *v = &fx->model.cfg.vision;
    float *feat = malloc((size_t)v->num_image_tokens * v->hidden_size * sizeof(float));
    struct dsr_err err;
    TH_CHECK(t, vision_tower_forward(fx->model.vision, px, 1, feat, &err) == 0, "tower: %s", err.msg);
    free(px);
    return feat;
}

/* Compares every trainable parameter's gradient with the fixture file;
 * returns the worst relative error (vs each tensor's max magnitude). */
static double compare_grads(struct th *t, const struct janus_model *m, const float *grad, const char *file) {
    struct st_file *f = th_open_fixture(file);
    double worst = 0;
    for (size_t i = 0; i < m->params.n; i++) {
        const struct param *p = &m->params.items[i];
        if (!p->trainable) continue;
        if (!st_find(f, p->name)) { /* no gradient reaches it in this case: ours must be zero */
            size_t nz = 0;
            for (size_t j = 0; j < p->numel; j++) nz += grad[p->offset + j] != 0;
            TH_CHECK(t, nz == 0, "%s: %zu nonzero gradients, the fixture has none", p->name, nz);
            continue;
        }
        size_t n;
        float *want = th_tensor_f32(f, p->name, &n);
        if (!TH_CHECK(t, n == p->numel, "%s: %zu values, expected %zu", p->name, n, p->numel)) {
            free(want);
            continue;
        }
        double mx = 1e-30, diff = 0;
        for (size_t j = 0; j < n; j++) {
            mx = fmax(mx, fabs(want[j]));
            diff = fmax(diff, fabs(want[j] - grad[p->offset + j]));
        }
        worst = fmax(worst, diff / mx);
        TH_CLOSE(t, p->name, grad + p->offset, want, n, 1e-3);
        free(want);
    }
    st_close(f);
    return worst;
}

/* The grpo_text case as train samples; the arrays stay alive in `keep`. */
struct text_case {
    int32_t *ids;
    float *mask, *old, *ref, *adv, *feat;
    int32_t prompt_len, len[N_SEQ], T;
    struct train_sample s[N_SEQ];
};

static void load_text_case(struct th *t, struct tiny_fixture *fx, struct text_case *c) {
    size_t n;
    c->ids = th_tensor_i32(fx->cases, "grpo_text.input_ids", &n);
    c->T = (int)(n / N_SEQ);
    c->mask = th_tensor_f32(fx->cases, "grpo_text.mask", &n);
    c->old = th_tensor_f32(fx->cases, "grpo_text.old_logps", &n);
    c->ref = th_tensor_f32(fx->cases, "grpo_text.ref_logps", &n);
    c->adv = th_tensor_f32(fx->cases, "grpo_text.advantages", &n);
    c->feat = image_features(t, fx, "grpo_text.pixel_values");
    c->prompt_len = 0;
    while (c->mask[c->prompt_len] == 0) c->prompt_len++;
    for (int i = 0; i < N_SEQ; i++) {
        c->len[i] = 0;
        for (int j = 0; j < c->T; j++) c->len[i] += c->mask[i * c->T + j] != 0;
        size_t at = (size_t)i * c->T + c->prompt_len;
        c->s[i] = (struct train_sample){
            .kind = TF_TARGET_TOKENS, .context = c->ids + (size_t)i * c->T, .n_context = c->prompt_len,
            .vision_features = c->feat, .n_feature_rows = fx->model.cfg.vision.num_image_tokens,
            .completion = c->ids + at, .n_completion = c->len[i], .advantage = c->adv[i],
            .old_logprobs = c->old + at, .ref_logprobs = c->ref + at};
    }
}

static void free_text_case(struct text_case *c) {
    free(c->ids), free(c->mask), free(c->old), free(c->ref), free(c->adv), free(c->feat);
}

static const struct grpo_hyper FIXTURE_HYPER = {.epsilon = 0.2f, .epsilon_high = 0.28f, .beta = 0.04f};

static double fixture_scalar(struct tiny_fixture *fx, const char *key) {
    size_t n;
    float *v = th_tensor_f32(fx->cases, key, &n);
    double x = v[0];
    free(v);
    return x;
}

static void test_grpo_text(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    struct text_case c;
    load_text_case(t, &fx, &c);
    struct trainer tr;
    struct train_stats st;
    struct dsr_err err;
    if (TH_CHECK(t, trainer_init(&tr, &fx.model, 0, &err) == 0, "init: %s", err.msg)) {
        struct grpo_hyper h = FIXTURE_HYPER;
        if (TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, c.s, N_SEQ, &h, &st, &err) == 0, "%s", err.msg)) {
            double want = fixture_scalar(&fx, "grpo_text.loss_grpo");
            TH_CHECK(t, fabs(st.loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss_grpo %.7f, want %.7f", st.loss, want);
            double worst = compare_grads(t, &fx.model, tr.grad, "janus-tiny/grads_grpo_text.safetensors");
            printf("  grpo_text: loss %.7f (want %.7f), grads max rel err %.2e, kl %.5f, clip %.3f, %ld tokens\n",
                   st.loss, want, worst, st.kl, st.clip_fraction, st.tokens);
            TH_CHECK(t, st.tokens == c.len[0] + c.len[1] + c.len[2] + c.len[3], "tokens %ld", st.tokens);
        }
        h.loss_type = GRPO_LOSS_DAPO;
        if (TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, c.s, N_SEQ, &h, &st, &err) == 0, "%s", err.msg)) {
            double want = fixture_scalar(&fx, "grpo_text.loss_dapo");
            TH_CHECK(t, fabs(st.loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss_dapo %.7f, want %.7f", st.loss, want);
        }
        trainer_free(&tr);
    }
    free_text_case(&c);
    tiny_fixture_free(&fx);
}

static void test_grpo_image(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    size_t n;
    int32_t *prompt = th_tensor_i32(fx.cases, "grpo_image.prompt_ids", &n);
    int P = (int)(n / N_SEQ);
    int32_t *codes = th_tensor_i32(fx.cases, "grpo_image.codes", &n);
    int L = (int)(n / N_SEQ);
    float *old = th_tensor_f32(fx.cases, "grpo_image.old_logps", &n);
    float *ref = th_tensor_f32(fx.cases, "grpo_image.ref_logps", &n);
    float *adv = th_tensor_f32(fx.cases, "grpo_image.advantages", &n);
    struct train_sample s[N_SEQ];
    for (int i = 0; i < N_SEQ; i++)
        s[i] = (struct train_sample){.kind = TF_TARGET_CODES, .context = prompt + i * P, .n_context = P,
                                     .completion = codes + i * L, .n_completion = L, .advantage = adv[i],
                                     .old_logprobs = old + i * L, .ref_logprobs = ref + i * L};
    struct trainer tr;
    struct train_stats st;
    struct dsr_err err;
    if (TH_CHECK(t, trainer_init(&tr, &fx.model, 0, &err) == 0, "init: %s", err.msg)) {
        struct grpo_hyper h = FIXTURE_HYPER;
        if (TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, s, N_SEQ, &h, &st, &err) == 0, "%s", err.msg)) {
            double want = fixture_scalar(&fx, "grpo_image.loss_grpo");
            TH_CHECK(t, fabs(st.loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss_grpo %.7f, want %.7f", st.loss, want);
            double worst = compare_grads(t, &fx.model, tr.grad, "janus-tiny/grads_grpo_image.safetensors");
            printf("  grpo_image: loss %.7f (want %.7f), grads max rel err %.2e\n", st.loss, want, worst);
        }
        h.loss_type = GRPO_LOSS_DAPO;
        if (TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, s, N_SEQ, &h, &st, &err) == 0, "%s", err.msg)) {
            double want = fixture_scalar(&fx, "grpo_image.loss_dapo");
            TH_CHECK(t, fabs(st.loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss_dapo %.7f, want %.7f", st.loss, want);
        }
        trainer_free(&tr);
    }
    free(prompt), free(codes), free(old), free(ref), free(adv);
    tiny_fixture_free(&fx);
}

static void test_simpo_text(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    size_t np, nc, nr;
    int32_t *prompt = th_tensor_i32(fx.cases, "simpo_text.prompt_ids", &np);
    int32_t *ch = th_tensor_i32(fx.cases, "simpo_text.chosen", &nc);
    int32_t *rj = th_tensor_i32(fx.cases, "simpo_text.rejected", &nr);
    float *feat = image_features(t, &fx, "simpo_text.pixel_values");
    int rows = fx.model.cfg.vision.num_image_tokens;
    struct simpo_pair pair = {
        .chosen = {.kind = TF_TARGET_TOKENS, .context = prompt, .n_context = (int)np, .vision_features = feat,
                   .n_feature_rows = rows, .completion = ch, .n_completion = (int)nc},
        .rejected = {.kind = TF_TARGET_TOKENS, .context = prompt, .n_context = (int)np, .vision_features = feat,
                     .n_feature_rows = rows, .completion = rj, .n_completion = (int)nr},
    };
    struct simpo_hyper h = {.beta = 2.0f, .gamma = 1.0f};
    struct trainer tr;
    struct train_stats st;
    struct dsr_err err;
    if (TH_CHECK(t, trainer_init(&tr, &fx.model, 0, &err) == 0, "init: %s", err.msg)) {
        if (TH_CHECK(t, trainer_simpo_backward(&tr, &fx.model, &pair, 1, &h, &st, &err) == 0, "%s", err.msg)) {
            double want = fixture_scalar(&fx, "simpo_text.loss");
            TH_CHECK(t, fabs(st.loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss %.7f, want %.7f", st.loss, want);
            double worst = compare_grads(t, &fx.model, tr.grad, "janus-tiny/grads_simpo_text.safetensors");
            printf("  simpo_text: loss %.7f (want %.7f), grads max rel err %.2e\n", st.loss, want, worst);
        }
        trainer_free(&tr);
    }
    free(prompt), free(ch), free(rj), free(feat);
    tiny_fixture_free(&fx);
}

/* ---- a mixed batch: two captions (with image) and one image completion --- */

struct mixed {
    struct text_case text;
    int32_t gen_ctx[5], codes[12];
    float old[12], ref[12];
    struct train_sample s[3];
};

static void build_mixed(struct th *t, struct tiny_fixture *fx, struct mixed *x) {
    load_text_case(t, fx, &x->text);
    x->s[0] = x->text.s[0];
    x->s[1] = x->text.s[2];
    const int32_t ctx[5] = {256, 30, 31, 32, 259};
    memcpy(x->gen_ctx, ctx, sizeof ctx);
    for (int i = 0; i < 12; i++) {
        x->codes[i] = (i * 37 + 5) % 96;
        x->old[i] = -4.6f + 0.05f * (float)((i % 5) - 2);
        x->ref[i] = -4.5f + 0.1f * (float)((i % 3) - 1);
    }
    x->s[2] = (struct train_sample){.kind = TF_TARGET_CODES, .context = x->gen_ctx, .n_context = 5,
                                    .completion = x->codes, .n_completion = 12, .advantage = 0.7f,
                                    .old_logprobs = x->old, .ref_logprobs = x->ref};
}

/* A smooth objective for finite differences: wide clip range (no kinks). */
static const struct grpo_hyper SMOOTH = {.epsilon = 100.0f, .epsilon_high = 100.0f, .beta = 0.3f};

static double loss_at(struct trainer *tr, struct janus_model *m, const struct train_sample *s, int n) {
    struct train_stats st;
    struct dsr_err err;
    struct grpo_hyper h = SMOOTH;
    if (trainer_grpo_backward(tr, m, s, n, &h, &st, &err)) return NAN;
    return st.loss;
}

static void test_finite_differences(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    struct mixed x;
    build_mixed(t, &fx, &x);
    struct janus_model *m = &fx.model;
    struct trainer tr, probe;
    struct dsr_err err;
    struct train_stats st;
    if (!TH_CHECK(t, trainer_init(&tr, m, 0, &err) == 0 && trainer_init(&probe, m, 0, &err) == 0, "%s", err.msg))
        return;
    struct grpo_hyper h = SMOOTH;
    TH_CHECK(t, trainer_grpo_backward(&tr, m, x.s, 3, &h, &st, &err) == 0, "%s", err.msg);
    const char *names[] = {
        "model.language_model.embed_tokens.weight", "model.language_model.layers.0.self_attn.q_proj.weight",
        "model.language_model.layers.1.self_attn.k_proj.weight", "model.language_model.layers.0.self_attn.v_proj.weight",
        "model.language_model.layers.1.self_attn.o_proj.weight", "model.language_model.layers.0.mlp.gate_proj.weight",
        "model.language_model.layers.1.mlp.up_proj.weight", "model.language_model.layers.0.mlp.down_proj.weight",
        "model.language_model.layers.0.input_layernorm.weight",
        "model.language_model.layers.1.post_attention_layernorm.weight", "model.language_model.norm.weight",
        "lm_head.weight", "model.generation_head.proj_out.weight", "model.generation_head.proj_out.bias",
        "model.generation_head.vision_head.weight", "model.generation_head.vision_head.bias",
        "model.generation_aligner.fc1.weight", "model.generation_aligner.hidden_layers.0.bias",
        "model.generation_embeddings.weight", "model.aligner.fc1.weight", "model.aligner.fc1.bias",
        "model.aligner.hidden_layers.0.weight"};
    struct dsr_rng rng;
    rng_seed(&rng, 11);
    double worst = 0;
    const double eps = 1e-3;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const struct param *p = pt_find(&m->params, names[k]);
        if (!TH_CHECK(t, p != NULL, "no parameter %s", names[k])) continue;
        const float *g = tr.grad + p->offset;
        size_t big = 0;
        for (size_t j = 1; j < p->numel; j++) big = fabsf(g[j]) > fabsf(g[big]) ? j : big;
        size_t pick[2] = {big, (size_t)(rng_uniform(&rng) * (double)p->numel) % p->numel};
        for (int q = 0; q < 2; q++) {
            float *w = m->params.trainable + p->offset + pick[q], saved = *w;
            *w = (float)(saved + eps);
            double up = loss_at(&probe, m, x.s, 3);
            *w = (float)(saved - eps);
            double down = loss_at(&probe, m, x.s, 3);
            *w = saved;
            double fd = (up - down) / (2 * eps), an = g[pick[q]];
            /* relative to the tensor's largest gradient: a wrong formula is off by O(1) of it */
            double rel = fabs(fd - an) / fabs(g[big]);
            worst = fmax(worst, rel);
            TH_CHECK(t, rel < 2e-2, "%s[%zu]: finite difference %.6g, analytic %.6g (rel %.3g)", names[k], pick[q], fd,
                     an, rel);
        }
    }
    printf("  finite differences: %zu tensors × 2 elements, worst error %.2e of the tensor's max gradient\n",
           sizeof names / sizeof names[0], worst);
    trainer_free(&tr);
    trainer_free(&probe);
    free_text_case(&x.text);
    tiny_fixture_free(&fx);
}

/* Tied lm_head: its gradient lands in embed_tokens. */
static void test_tied_finite_differences(struct th *t) {
    struct janus_config cfg;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_config_load(TINY_FIXTURE_DIR "/config.json", &cfg, &err) == 0, "%s", err.msg)) return;
    cfg.tie_word_embeddings = cfg.text.tie_word_embeddings = true;
    struct janus_model m;
    if (!TH_CHECK(t, janus_model_init_random(&cfg, 5, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "%s", err.msg)) return;
    int32_t ctx[4] = {256, 12, 13, 14}, comp[6] = {40, 41, 42, 12, 40, 7};
    const float old[6] = {-5.6f, -5.9f, -5.7f, -5.8f, -5.75f, -5.65f};
    struct train_sample s = {.kind = TF_TARGET_TOKENS, .context = ctx, .n_context = 4, .completion = comp,
                             .n_completion = 6, .advantage = -0.8f, .old_logprobs = old};
    struct trainer tr, probe;
    struct train_stats st;
    struct grpo_hyper h = {.epsilon = 100.0f, .epsilon_high = 100.0f};
    TH_CHECK(t, trainer_init(&tr, &m, 0, &err) == 0 && trainer_init(&probe, &m, 0, &err) == 0, "%s", err.msg);
    TH_CHECK(t, trainer_grpo_backward(&tr, &m, &s, 1, &h, &st, &err) == 0, "%s", err.msg);
    const struct param *p = pt_find(&m.params, "model.language_model.embed_tokens.weight");
    int C = cfg.text.hidden_size;
    /* rows used only as inputs (12), only by the head (7 as target, 300 as a non-target logit), both (40) */
    int rows[4] = {12, 7, 300, 40};
    double gmax = 0;
    for (size_t j = 0; j < p->numel; j++) gmax = fmax(gmax, fabsf(tr.grad[p->offset + j]));
    for (int r = 0; r < 4; r++) {
        size_t j = (size_t)rows[r] * C + 3;
        float *w = m.params.trainable + p->offset + j, saved = *w;
        double e = 1e-3;
        *w = (float)(saved + e);
        TH_CHECK(t, trainer_grpo_backward(&probe, &m, &s, 1, &h, &st, &err) == 0, "%s", err.msg);
        double up = st.loss;
        *w = (float)(saved - e);
        TH_CHECK(t, trainer_grpo_backward(&probe, &m, &s, 1, &h, &st, &err) == 0, "%s", err.msg);
        double down = st.loss;
        *w = saved;
        double fd = (up - down) / (2 * e), an = tr.grad[p->offset + j];
        TH_CHECK(t, fabs(fd - an) < 2e-2 * gmax, "tied embed row %d: fd %.6g analytic %.6g", rows[r], fd, an);
    }
    trainer_free(&tr);
    trainer_free(&probe);
    janus_model_free(&m);
}

static void test_micro_batches(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    struct mixed x;
    build_mixed(t, &fx, &x);
    struct trainer one, many;
    struct train_stats a, b;
    struct dsr_err err;
    struct grpo_hyper h = FIXTURE_HYPER;
    if (TH_CHECK(t, trainer_init(&one, &fx.model, 0, &err) == 0 && trainer_init(&many, &fx.model, 1, &err) == 0,
                 "%s", err.msg)) {
        TH_CHECK(t, trainer_grpo_backward(&one, &fx.model, x.s, 3, &h, &a, &err) == 0, "%s", err.msg);
        TH_CHECK(t, trainer_grpo_backward(&many, &fx.model, x.s, 3, &h, &b, &err) == 0, "%s", err.msg);
        TH_CLOSE(t, "micro-batched gradient", many.grad, one.grad, one.n_params, 1e-6);
        TH_CHECK(t, fabs(a.loss - b.loss) <= 1e-6 * fabs(a.loss) && a.tokens == b.tokens,
                 "stats differ: loss %.9g vs %.9g", a.loss, b.loss);
        trainer_free(&one);
        trainer_free(&many);
    }
    free_text_case(&x.text);
    tiny_fixture_free(&fx);
}

/* beta > 0 without ref_logprobs: an error unless a reference is kept; with
 * the reference kept before any step, reference == policy, so KL is 0. */
static void test_reference(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    struct mixed x;
    build_mixed(t, &fx, &x);
    for (int i = 0; i < 3; i++) x.s[i].ref_logprobs = NULL;
    struct trainer tr;
    struct train_stats st;
    struct dsr_err err = {{0}};
    struct grpo_hyper h = FIXTURE_HYPER;
    if (TH_CHECK(t, trainer_init(&tr, &fx.model, 0, &err) == 0, "%s", err.msg)) {
        TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, x.s, 3, &h, &st, &err) != 0 && strstr(err.msg, "ref_logprobs"),
                 "missing reference accepted: %s", err.msg);
        TH_CHECK(t, trainer_keep_reference(&tr, &fx.model, &err) == 0, "%s", err.msg);
        TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, x.s, 3, &h, &st, &err) == 0, "%s", err.msg);
        TH_CHECK(t, fabs(st.kl) < 1e-6, "kl against the identical reference %.3g", st.kl);
        /* after a step the policy moves away from the kept reference */
        struct adamw_hyper ah = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
        TH_CHECK(t, trainer_step(&tr, &fx.model, &ah, &st, &err) == 0, "%s", err.msg);
        TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, x.s, 3, &h, &st, &err) == 0, "%s", err.msg);
        TH_CHECK(t, st.kl > 1e-6, "kl after a step %.3g", st.kl);
        trainer_free(&tr);
    }
    /* bad input names the field */
    x.s[1].advantage = NAN;
    TH_CHECK(t, trainer_init(&tr, &fx.model, 0, &err) == 0, "%s", err.msg);
    TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, x.s, 3, &h, &st, &err) != 0 && strstr(err.msg, "advantage"),
             "NaN advantage: %s", err.msg);
    x.s[1].advantage = 0;
    x.codes[3] = 96;
    TH_CHECK(t, trainer_grpo_backward(&tr, &fx.model, x.s, 3, &h, &st, &err) != 0 && strstr(err.msg, "completion"),
             "code outside the codebook: %s", err.msg);
    trainer_free(&tr);
    free_text_case(&x.text);
    tiny_fixture_free(&fx);
}

/* AdamW on a 5-element parameter, two steps with decay and clipping, against
 * torch.optim.AdamW's update written out in double. */
static void test_adamw(struct th *t) {
    struct janus_model m;
    memset(&m, 0, sizeof m);
    struct dsr_err err;
    pt_init(&m.params);
    TH_CHECK(t, pt_declare(&m.params, true, 1, (int64_t[]){5}, &err, "w") == 0 && pt_alloc(&m.params, &err) == 0,
             "%s", err.msg);
    const double w0[5] = {0.5, -1.0, 2.0, 0.0, 0.25};
    const double grads[2][5] = {{3.0, -4.0, 0.5, 1.0, 0.0}, {-0.2, 0.1, 0.3, -0.4, 0.05}};
    for (int i = 0; i < 5; i++) m.params.trainable[i] = (float)w0[i];
    struct trainer tr;
    TH_CHECK(t, trainer_init(&tr, &m, 0, &err) == 0, "%s", err.msg);
    struct adamw_hyper h = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-3f, .weight_decay = 0.05f,
                            .max_grad_norm = 1.0f};
    double w[5], mo[5] = {0}, v[5] = {0};
    memcpy(w, w0, sizeof w);
    for (int step = 1; step <= 2; step++) {
        double norm = 0;
        for (int i = 0; i < 5; i++) norm += grads[step - 1][i] * grads[step - 1][i];
        norm = sqrt(norm);
        double coef = fmin(1.0, (double)h.max_grad_norm / (norm + 1e-6));
        for (int i = 0; i < 5; i++) {
            double g = grads[step - 1][i] * coef;
            w[i] *= 1 - (double)h.lr * h.weight_decay;
            mo[i] = h.beta1 * mo[i] + (1 - (double)h.beta1) * g;
            v[i] = h.beta2 * v[i] + (1 - (double)h.beta2) * g * g;
            double mh = mo[i] / (1 - pow(h.beta1, step)), vh = sqrt(v[i]) / sqrt(1 - pow(h.beta2, step));
            w[i] -= h.lr * mh / (vh + h.eps);
        }
        for (int i = 0; i < 5; i++) tr.grad[i] = (float)grads[step - 1][i];
        struct train_stats st;
        TH_CHECK(t, trainer_step(&tr, &m, &h, &st, &err) == 0, "%s", err.msg);
        TH_CHECK(t, fabs(st.grad_norm - norm) < 1e-6 * norm, "grad norm %.9g, want %.9g", st.grad_norm, norm);
        float want[5], want_m[5], want_v[5];
        for (int i = 0; i < 5; i++) want[i] = (float)w[i], want_m[i] = (float)mo[i], want_v[i] = (float)v[i];
        TH_CLOSE(t, "AdamW weights", m.params.trainable, want, 5, 1e-6);
        TH_CLOSE(t, "AdamW exp_avg", tr.adam_m, want_m, 5, 1e-6);
        TH_CLOSE(t, "AdamW exp_avg_sq", tr.adam_v, want_v, 5, 1e-6);
    }
    TH_CHECK(t, tr.step == 2, "step %ld", tr.step);
    struct adamw_hyper bad = h;
    bad.beta1 = 1.0f;
    struct train_stats st;
    TH_CHECK(t, trainer_step(&tr, &m, &bad, &st, &err) != 0 && strstr(err.msg, "betas"), "beta1 = 1 accepted");
    trainer_free(&tr);
    pt_free(&m.params);
}

/* A step whose new weights or moments would not be finite applies nothing:
 * eps 0 on a zero gradient (0/0), and a decay that overflows float32. */
static void test_adamw_atomic(struct th *t) {
    struct janus_model m;
    memset(&m, 0, sizeof m);
    struct dsr_err err;
    pt_init(&m.params);
    TH_CHECK(t, pt_declare(&m.params, true, 1, (int64_t[]){4}, &err, "w") == 0 && pt_alloc(&m.params, &err) == 0,
             "%s", err.msg);
    const float w0[4] = {0.5f, -1.0f, 3e38f, 0.0f}, g0[4] = {0.25f, -0.5f, 0.125f, 0.0f};
    struct trainer tr;
    TH_CHECK(t, trainer_init(&tr, &m, 0, &err) == 0, "%s", err.msg);
    struct adamw_hyper ok = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .max_grad_norm = 0.0f};
    struct adamw_hyper eps0 = ok, overflow = ok;
    eps0.eps = 0.0f;                         /* element 3: m = v = 0 → 0 / 0 */
    overflow.lr = 1.0f;
    overflow.weight_decay = 3.0f;            /* w · (1 − 3) overflows at 3e38 */
    const struct adamw_hyper *cases[2] = {&eps0, &overflow};
    for (int c = 0; c < 2; c++) {
        memcpy(m.params.trainable, w0, sizeof w0);
        memcpy(tr.grad, g0, sizeof g0);
        memset(tr.adam_m, 0, 4 * sizeof(float));
        memset(tr.adam_v, 0, 4 * sizeof(float));
        tr.step = 0;
        struct train_stats st;
        int rc = trainer_step(&tr, &m, cases[c], &st, &err);
        TH_CHECK(t, rc != 0, "case %d: a non-finite step was applied", c);
        bool same = memcmp(m.params.trainable, w0, sizeof w0) == 0 && tr.step == 0;
        for (int i = 0; i < 4; i++) same = same && tr.adam_m[i] == 0 && tr.adam_v[i] == 0;
        TH_CHECK(t, same, "case %d: weights, moments or step changed by a refused step (w[3] %g, step %ld)", c,
                 (double)m.params.trainable[3], tr.step);
    }
    memcpy(m.params.trainable, w0, sizeof w0);
    m.params.trainable[2] = 1.0f;
    memcpy(tr.grad, g0, sizeof g0);
    struct train_stats st;
    TH_CHECK(t, trainer_step(&tr, &m, &ok, &st, &err) == 0 && tr.step == 1, "a finite step applies: %s", err.msg);
    trainer_free(&tr);
    pt_free(&m.params);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "grpo_text", test_grpo_text);
    th_run(&t, "grpo_image", test_grpo_image);
    th_run(&t, "simpo_text", test_simpo_text);
    th_run(&t, "finite_differences", test_finite_differences);
    th_run(&t, "tied_finite_differences", test_tied_finite_differences);
    th_run(&t, "micro_batches", test_micro_batches);
    th_run(&t, "reference", test_reference);
    th_run(&t, "adamw", test_adamw);
    th_run(&t, "adamw_atomic", test_adamw_atomic);
    return th_finish(&t, "test_train");
}
