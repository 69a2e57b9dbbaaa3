/* The dual self-rewards (janus/reward.h) against the fixtures: R_U of the
 * fixture's prompt and codes equals gen.r_u, R_G of the decoded image and
 * target equals rg.r_g (both the means HF transformers computed), and
 * reward_of's reduction on hand-made values. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "tiny_fixture.h"
#include "janus/reward.h"
#include "model/image_embeds.h"
#include "model/janus_model.h"

static void test_reward_of(struct th *t) {
    const float lp[4] = {-1.0f, -2.0f, -0.5f, -0.5f};
    struct reward r = reward_of(lp, 4);
    TH_CHECK(t, r.count == 4 && r.sum == -4.0 && r.reward == -1.0, "reward_of: %g %g %d", r.reward, r.sum, r.count);
    r = reward_of(lp, 0);
    TH_CHECK(t, r.count == 0 && r.sum == 0.0 && r.reward == 0.0, "empty target: %g %g %d", r.reward, r.sum, r.count);
    /* a sum in float would lose the small terms of a long target */
    float *many = malloc((size_t)(1 << 20) * sizeof *many);
    for (int i = 0; i < 1 << 20; i++) many[i] = i == 0 ? -16777216.0f : -1.0f;
    r = reward_of(many, 1 << 20);
    TH_CHECK(t, r.sum == -16777216.0 - ((1 << 20) - 1), "double sum: %.1f", r.sum);
    free(many);
}

static void test_r_u_matches_fixture(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    const struct janus_model *mp = &fx.model;
    struct st_file *cases = fx.cases;
    struct dsr_err err;
    size_t np, nc, nlp;
    int32_t *prompt = th_tensor_i32(cases, "gen.prompt_ids", &np);
    int32_t *codes = th_tensor_i32(cases, "gen.codes", &nc);
    float *want_lp = th_tensor_f32(cases, "gen.logprobs", &nlp);
    float *want_ru = th_tensor_f32(cases, "gen.r_u", NULL);
    float *lp = malloc(nc * sizeof *lp);
    struct reward r;
    if (TH_CHECK(t, reward_understanding(mp, prompt, (int)np, codes, (int)nc, lp, &r, &err) == 0, "R_U: %s",
                 err.msg)) {
        float ru = (float)r.reward;
        TH_CLOSE(t, "gen.logprobs", lp, want_lp, nlp, 1e-4);
        TH_CLOSE(t, "gen.r_u", &ru, want_ru, 1, 1e-4);
        TH_CHECK(t, r.count == (int)nc && fabs(r.sum / nc - r.reward) < 1e-12, "count %d, sum %g", r.count, r.sum);
    }
    /* without a log-prob buffer: the same reward */
    struct reward r2;
    if (TH_CHECK(t, reward_understanding(mp, prompt, (int)np, codes, (int)nc, NULL, &r2, &err) == 0, "R_U: %s",
                 err.msg))
        TH_CHECK(t, r2.reward == r.reward, "R_U without logprobs %g, with %g", r2.reward, r.reward);
    free(lp), free(prompt), free(codes), free(want_lp), free(want_ru);
    tiny_fixture_free(&fx);
}

static void test_r_g_matches_fixture(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    const struct janus_model *mp = &fx.model;
    struct st_file *cases = fx.cases;
    struct dsr_err err;
    size_t n;
    int32_t *codes = th_tensor_i32(cases, "vq.codes", NULL);
    int32_t *ids = th_tensor_i32(cases, "rg.input_ids", &n);
    int32_t *start = th_tensor_i32(cases, "rg.target_start", NULL);
    float *want_rg = th_tensor_f32(cases, "rg.r_g", NULL);
    int rows = mp->cfg.vision.num_image_tokens;
    float *embeds = malloc((size_t)rows * mp->cfg.text.hidden_size * sizeof *embeds);
    struct reward r;
    /* the generated image as dsrd sees it: its codes, decoded, through the vision tower */
    int rc = janus_embeds_from_codes(mp, codes, embeds, &err);
    if (rc == 0) rc = reward_generation(mp, ids, start[0], embeds, rows, ids + start[0], (int)n - start[0], NULL, &r, &err);
    if (TH_CHECK(t, rc == 0, "R_G: %s", err.msg)) {
        float rg = (float)r.reward;
        TH_CLOSE(t, "rg.r_g", &rg, want_rg, 1, 1e-4);
    }
    free(embeds), free(codes), free(ids), free(start), free(want_rg);
    tiny_fixture_free(&fx);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "reward_of", test_reward_of);
    th_run(&t, "r_u_matches_fixture", test_r_u_matches_fixture);
    th_run(&t, "r_g_matches_fixture", test_r_g_matches_fixture);
    return th_finish(&t, "test_reward");
}
