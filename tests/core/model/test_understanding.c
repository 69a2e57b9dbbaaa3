/* Understanding path end to end: pixels → vision tower → aligner rows over
 * the image placeholders → LM.  Checks the full logits (und.*), the
 * generation reward R_G on a decoded image (rg.*) and greedy captioning
 * (greedy_text.*) against the fixtures. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/image_embeds.h"
#include "model/janus_model.h"
#include "janus/reward.h"
#include "janus/rollout.h"
#include "janus/teacher_forcing.h"

#define TINY "tests/fixtures/janus-tiny"

struct fixture {
    struct janus_model m;
    struct st_file *cases;
    float *embeds; /* aligner rows of the fixture image named at load */
};

static int load(struct th *t, struct fixture *fx, const char *pixels_name) {
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &fx->m, &err) == 0, "load: %s", err.msg)) return -1;
    fx->cases = th_open_fixture("janus-tiny/cases.safetensors");
    float *px = th_tensor_f32(fx->cases, pixels_name, NULL);
    size_t rows = (size_t)fx->m.cfg.vision.num_image_tokens * fx->m.cfg.text.hidden_size;
    fx->embeds = malloc(rows * sizeof(float));
    int rc = janus_image_embeds(&fx->m, px, 1, fx->embeds, &err);
    free(px);
    return TH_CHECK(t, rc == 0, "image embeds: %s", err.msg) ? 0 : -1;
}

static void unload(struct fixture *fx) {
    free(fx->embeds);
    st_close(fx->cases);
    janus_model_free(&fx->m);
}

static void test_und_logits(struct th *t) {
    struct fixture fx;
    if (load(t, &fx, "und.pixel_values")) return;
    const struct janus_model *m = &fx.m;
    int C = m->cfg.text.hidden_size, V = m->cfg.text.vocab_size, N = m->cfg.vision.num_image_tokens;
    size_t n, nl;
    int32_t *ids = th_tensor_i32(fx.cases, "und.input_ids", &n);
    float *want = th_tensor_f32(fx.cases, "und.logits", &nl);
    float *rows = malloc(n * C * sizeof(float)), *logits = malloc(nl * sizeof(float));
    struct kv_cache cache;
    struct dsr_err err;
    int rc = kv_cache_init(&cache, 1, m->cfg.text.n_layers, (int)n, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32, &err);
    struct lm_segment seg = {.slot = 0, .n = (int)n};
    if (rc == 0) rc = tf_embed_context(m, ids, (int)n, fx.embeds, N, rows, &err);
    if (rc == 0) rc = lm_forward(&m->lm, &cache, &seg, 1, rows, rows, &err);
    if (TH_CHECK(t, rc == 0, "forward: %s", err.msg)) {
        lm_logits(&m->lm, rows, (int)n, logits, &err);
        TH_CHECK(t, nl == n * V, "shape");
        TH_CLOSE(t, "und.logits", logits, want, nl, 1e-4);
    }
    kv_cache_free(&cache);
    free(ids), free(want), free(rows), free(logits);
    unload(&fx);
}

static void test_generation_reward(struct th *t) {
    struct fixture fx;
    if (load(t, &fx, "rg.pixel_values")) return;
    size_t n, nw;
    int32_t *ids = th_tensor_i32(fx.cases, "rg.input_ids", &n);
    int32_t *start = th_tensor_i32(fx.cases, "rg.target_start", NULL);
    float *want = th_tensor_f32(fx.cases, "rg.logprobs", &nw);
    float *want_rg = th_tensor_f32(fx.cases, "rg.r_g", NULL);
    struct tf_item it = {.context = ids, .n_context = start[0], .image_embeds = fx.embeds,
                         .n_image_rows = fx.m.cfg.vision.num_image_tokens, .kind = TF_TARGET_TOKENS,
                         .target = ids + start[0], .n_target = (int)n - start[0]};
    float lp[64];
    struct dsr_err err;
    if (TH_CHECK(t, it.n_target == (int)nw && tf_logprobs(&fx.m, &it, 1, lp, &err) == 0, "tf: %s", err.msg)) {
        TH_CLOSE(t, "rg.logprobs", lp, want, nw, 1e-4);
        float rg = (float)reward_of(lp, (int)nw).reward;
        TH_CLOSE(t, "rg.r_g", &rg, want_rg, 1, 1e-4);
    }
    free(ids), free(start), free(want), free(want_rg);
    unload(&fx);
}

/* The full generation-reward chain from codes: decode → clamp → vision →
 * aligner → teacher-forced prompt log-probs (rg.* was built from vq.codes). */
static void test_generation_reward_from_codes(struct th *t) {
    struct fixture fx;
    if (load(t, &fx, "rg.pixel_values")) return;
    size_t n, nw;
    int32_t *codes = th_tensor_i32(fx.cases, "vq.codes", NULL);
    int32_t *ids = th_tensor_i32(fx.cases, "rg.input_ids", &n);
    int32_t *start = th_tensor_i32(fx.cases, "rg.target_start", NULL);
    float *want = th_tensor_f32(fx.cases, "rg.logprobs", &nw);
    struct dsr_err err;
    if (TH_CHECK(t, janus_embeds_from_codes(&fx.m, codes, fx.embeds, &err) == 0, "embeds: %s", err.msg)) {
        struct tf_item it = {.context = ids, .n_context = start[0], .image_embeds = fx.embeds,
                             .n_image_rows = fx.m.cfg.vision.num_image_tokens, .kind = TF_TARGET_TOKENS,
                             .target = ids + start[0], .n_target = (int)nw};
        float lp[64];
        if (TH_CHECK(t, tf_logprobs(&fx.m, &it, 1, lp, &err) == 0, "tf: %s", err.msg))
            TH_CLOSE(t, "rg.logprobs via codes", lp, want, nw, 1e-4);
    }
    free(codes), free(ids), free(start), free(want);
    unload(&fx);
}

static void test_greedy_caption(struct th *t) {
    struct fixture fx;
    if (load(t, &fx, "greedy_text.pixel_values")) return;
    size_t np, nt;
    int32_t *prompt = th_tensor_i32(fx.cases, "greedy_text.prompt_ids", &np);
    int32_t *want = th_tensor_i32(fx.cases, "greedy_text.tokens", &nt);
    struct sampling_params p = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 0};
    struct text_group g;
    struct dsr_err err;
    if (TH_CHECK(t, sample_text_group(&fx.m, prompt, (int)np, fx.embeds, fx.m.cfg.vision.num_image_tokens, 2, (int)nt,
                                      &p, &g, &err) == 0,
                 "sample: %s", err.msg)) {
        for (int s = 0; s < 2; s++) {
            int mismatches = g.lengths[s] != (int)nt;
            for (size_t i = 0; i < nt && !mismatches; i++) mismatches += g.tokens[s * (int)nt + (int)i] != want[i];
            TH_CHECK(t, mismatches == 0, "sample %d differs from greedy_text.tokens (length %d)", s, g.lengths[s]);
        }
        text_group_free(&g);
    }
    free(prompt), free(want);
    unload(&fx);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "und_logits", test_und_logits);
    th_run(&t, "generation_reward", test_generation_reward);
    th_run(&t, "generation_reward_from_codes", test_generation_reward_from_codes);
    th_run(&t, "greedy_caption", test_greedy_caption);
    return th_finish(&t, "test_understanding");
}
