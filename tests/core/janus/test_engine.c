/* The runtime bundle and batched engine (janus/runtime.h, janus/engine.h),
 * driven directly, without the server:
 *   - janus_runtime_load of the janus-tiny fixture directory resolves its
 *     special ids and image settings;
 *   - ONE engine_score over a mixed batch (an R_U item on codes, an R_G item
 *     seeing an image given as codes) reproduces HF transformers' gen.logprobs
 *     and rg.r_g;
 *   - engine_rollout's rewards are the rewards of its own samples computed
 *     independently by janus/reward.h (sample g's reward belongs to sample g),
 *     and the seen image's features are handed back for the rollout cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tiny_fixture.h"
#include "janus/engine.h"
#include "janus/reward.h"
#include "janus/runtime.h"
#include "model/image_embeds.h"

static int load(struct th *t, struct janus_runtime *rt) {
    struct janus_runtime_options opt = {.model = TINY_FIXTURE_DIR, .quantizer = VQ_QUANT_L2, .boi_id = 259,
                                        .eoi_id = 260}; /* as dsrd --boi-id 259 --eoi-id 260 */
    janus_template_defaults(&opt.tpl);
    struct dsr_err err;
    return TH_CHECK(t, janus_runtime_load(&opt, rt, &err) == 0, "load %s: %s", TINY_FIXTURE_DIR, err.msg) ? 0 : -1;
}

/* The fixture's golden cases and the runtime; -1 (nothing to free) on failure. */
static int load_with_fixture(struct th *t, struct tiny_fixture *fx, struct janus_runtime *rt) {
    if (tiny_fixture_load(t, fx)) return -1;
    if (load(t, rt) == 0) return 0;
    tiny_fixture_free(fx);
    return -1;
}

static void test_load(struct th *t) {
    struct janus_runtime rt;
    if (load(t, &rt)) return;
    const struct janus_config *c = &rt.model.cfg;
    TH_CHECK(t, rt.ids.bos == c->text.bos_token_id && rt.eos == c->text.eos_token_id && rt.ids.boi == c->boi_token_id &&
                    rt.ids.eoi == c->eoi_token_id && rt.ids.image == c->image_token_id,
             "special ids bos %d eos %d boi %d eoi %d image %d", rt.ids.bos, rt.eos, rt.ids.boi, rt.ids.eoi, rt.ids.image);
    TH_CHECK(t, rt.n_codes == c->vq.num_patches * c->vq.num_patches && rt.vq_size == c->vision.image_size,
             "n_codes %d, vq size %d", rt.n_codes, rt.vq_size);
    TH_CHECK(t, rt.tok != NULL && strcmp(rt.name, "janus-tiny") == 0, "tokenizer %p, name %s", (void *)rt.tok, rt.name);
    janus_runtime_free(&rt);
}

static void test_score_mixed_batch(struct th *t) {
    struct tiny_fixture fx;
    struct janus_runtime rt;
    if (load_with_fixture(t, &fx, &rt)) return;
    size_t np, nc, nlp, n;
    int32_t *prompt = th_tensor_i32(fx.cases, "gen.prompt_ids", &np);
    int32_t *codes = th_tensor_i32(fx.cases, "gen.codes", &nc);
    float *want_lp = th_tensor_f32(fx.cases, "gen.logprobs", &nlp);
    int32_t *seen = th_tensor_i32(fx.cases, "vq.codes", NULL);
    int32_t *ids = th_tensor_i32(fx.cases, "rg.input_ids", &n);
    int32_t *start = th_tensor_i32(fx.cases, "rg.target_start", NULL);
    float *want_rg = th_tensor_f32(fx.cases, "rg.r_g", NULL);
    int T = (int)n - start[0];
    float *lp_u = malloc(nc * sizeof *lp_u), *lp_g = malloc((size_t)T * sizeof *lp_g);
    struct score_request ru = {.context = prompt, .n_context = (int)np, .kind = TF_TARGET_CODES, .target = codes,
                               .n_target = (int)nc, .logprobs = lp_u};
    struct score_request rg = {.context = ids, .n_context = start[0], .see = {.codes = seen},
                               .kind = TF_TARGET_TOKENS, .target = ids + start[0], .n_target = T, .logprobs = lp_g};
    struct score_request *batch[2] = {&rg, &ru};
    struct dsr_err err;
    if (TH_CHECK(t, engine_score(&rt, batch, 2, &err) == 0, "engine_score: %s", err.msg)) {
        TH_CLOSE(t, "gen.logprobs", lp_u, want_lp, nlp, 1e-4);
        float r = (float)reward_of(lp_g, T).reward;
        TH_CLOSE(t, "rg.r_g", &r, want_rg, 1, 1e-4);
    }
    free(lp_u), free(lp_g), free(prompt), free(codes), free(want_lp), free(seen), free(ids), free(start);
    free(want_rg);
    janus_runtime_free(&rt);
    tiny_fixture_free(&fx);
}

/* A generation group scored by R_G: each sample's reward recomputed from
 * its own codes by reward_generation. */
static void test_rollout_rewards_generation(struct th *t) {
    struct janus_runtime rt;
    if (load(t, &rt)) return;
    const struct janus_model *m = &rt.model;
    struct dsr_err err;
    struct tok_ids ctx = {0}, rgc = {0}, rgt = {0};
    const char prompt[] = "a red circle";
    int rc = janus_gen_context(rt.tok, &rt.tpl, &rt.ids, prompt, strlen(prompt), &ctx, &err);
    if (rc == 0) rc = janus_und_context(rt.tok, &rt.tpl, &rt.ids, NULL, 0, &rgc, NULL, &err);
    if (rc == 0) rc = janus_rg_target(rt.tok, &rt.tpl, prompt, strlen(prompt), &rgt, &err);
    if (!TH_CHECK(t, rc == 0, "contexts: %s", err.msg)) goto out;
    struct rollout_request rq = {.context = ctx.ids, .n_context = (int)ctx.n, .n = 3, .cfg_scale = 2.0f,
                                 .sp = {.temperature = 1.0f, .top_p = 1.0f, .seed = 7}, .score = true,
                                 .rg_context = rgc.ids, .n_rg_context = (int)rgc.n, .rg_target = rgt.ids,
                                 .n_rg_target = (int)rgt.n};
    struct rollout_output o;
    if (!TH_CHECK(t, engine_rollout(&rt, &rq, &o, &err) == 0, "engine_rollout: %s", err.msg)) goto out;
    int rows = m->cfg.vision.num_image_tokens;
    float *embeds = malloc((size_t)rows * m->cfg.text.hidden_size * sizeof *embeds);
    for (int g = 0; g < rq.n; g++) {
        const float *lp;
        int nt;
        const int32_t *codes = rollout_output_tokens(&rt, &rq, &o, g, &lp, &nt);
        TH_CHECK(t, nt == rt.n_codes && codes == o.image.codes + (size_t)g * rt.n_codes, "sample %d: %d codes", g, nt);
        struct reward want;
        if (janus_embeds_from_codes(m, codes, embeds, &err) ||
            reward_generation(m, rgc.ids, (int)rgc.n, embeds, rows, rgt.ids, (int)rgt.n, NULL, &want, &err)) {
            TH_CHECK(t, 0, "reward_generation: %s", err.msg);
            break;
        }
        TH_CHECK(t, fabs(o.rewards[g] - want.reward) <= 1e-4 * fmax(1.0, fabs(want.reward)),
                 "sample %d: rollout reward %.6f, its R_G %.6f", g, o.rewards[g], want.reward);
    }
    TH_CHECK(t, o.features == NULL, "a generation rollout sees no image");
    free(embeds);
    rollout_output_free(&o);
out:
    tok_ids_free(&ctx), tok_ids_free(&rgc), tok_ids_free(&rgt);
    janus_runtime_free(&rt);
}

/* A caption group scored by R_U: each caption's reward recomputed from its
 * own tokens; the features of the image seen come back. */
static void test_rollout_rewards_understanding(struct th *t) {
    struct tiny_fixture fx;
    struct janus_runtime rt;
    if (load_with_fixture(t, &fx, &rt)) return;
    struct dsr_err err;
    int32_t *seen = th_tensor_i32(fx.cases, "vq.codes", NULL);
    struct tok_ids ctx = {0};
    const char q[] = "Describe this image.";
    if (!TH_CHECK(t, janus_und_context(rt.tok, &rt.tpl, &rt.ids, q, strlen(q), &ctx, NULL, &err) == 0, "context: %s",
                  err.msg))
        goto out;
    struct rollout_request rq = {.understanding = true, .context = ctx.ids, .n_context = (int)ctx.n,
                                 .see = {.codes = seen}, .n = 3, .max_tokens = 6,
                                 .sp = {.temperature = 1.0f, .top_p = 1.0f, .seed = 11}, .score = true};
    struct rollout_output o;
    if (!TH_CHECK(t, engine_rollout(&rt, &rq, &o, &err) == 0, "engine_rollout: %s", err.msg)) goto out;
    const struct vision_config *v = &rt.model.cfg.vision;
    TH_CHECK(t, o.features != NULL, "features of the seen image");
    float *want_f = malloc((size_t)v->num_image_tokens * v->hidden_size * sizeof *want_f);
    const struct seen_image see = {.codes = seen}, *sp = &see;
    if (engine_vision_features(&rt, &sp, 1, want_f, &err) == 0 && o.features)
        TH_CLOSE(t, "features", o.features, want_f, (size_t)v->num_image_tokens * v->hidden_size, 1e-5);
    for (int g = 0; g < rq.n; g++) {
        const float *lp;
        int nt;
        const int32_t *tokens = rollout_output_tokens(&rt, &rq, &o, g, &lp, &nt);
        struct tok_ids gc = {0};
        struct reward want;
        if (janus_runtime_gen_context_ids(&rt, tokens, nt, &gc, &err) ||
            reward_understanding(&rt.model, gc.ids, (int)gc.n, seen, rt.n_codes, NULL, &want, &err)) {
            TH_CHECK(t, 0, "reward_understanding: %s", err.msg);
            tok_ids_free(&gc);
            break;
        }
        TH_CHECK(t, fabs(o.rewards[g] - want.reward) <= 1e-4 * fmax(1.0, fabs(want.reward)),
                 "caption %d: rollout reward %.6f, its R_U %.6f", g, o.rewards[g], want.reward);
        tok_ids_free(&gc);
    }
    free(want_f);
    rollout_output_free(&o);
out:
    tok_ids_free(&ctx);
    free(seen);
    janus_runtime_free(&rt);
    tiny_fixture_free(&fx);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "load", test_load);
    th_run(&t, "score_mixed_batch", test_score_mixed_batch);
    th_run(&t, "rollout_rewards_generation", test_rollout_rewards_generation);
    th_run(&t, "rollout_rewards_understanding", test_rollout_rewards_understanding);
    return th_finish(&t, "test_engine");
}
