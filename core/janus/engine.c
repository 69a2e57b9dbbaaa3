#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "janus/reward.h"
#include "janus/teacher_forcing.h"

/* Pixel counts of a vision input and of a VQ image (3 channels, square). */
static size_t vision_px(const struct janus_runtime *rt) {
    return (size_t)3 * rt->model.cfg.vision.image_size * rt->model.cfg.vision.image_size;
}
static size_t vq_px(const struct janus_runtime *rt) { return (size_t)3 * rt->vq_size * rt->vq_size; }

/* Codes → VQ decode → clamp [-1, 1] → vision input, for n images at once. */
static int codes_to_vision(struct janus_runtime *rt, const int32_t *const *codes, int n, float *out, struct dsr_err *err) {
    int32_t *all = calloc((size_t)n * rt->n_codes, sizeof *all);
    if (!all) return dsr_errf(err, "out of memory for VQ codes");
    for (int i = 0; i < n; i++) memcpy(all + (size_t)i * rt->n_codes, codes[i], (size_t)rt->n_codes * sizeof *all);
    int rc = vq_decode(rt->model.vq, all, n, out, err);
    free(all);
    if (rc) return -1;
    for (int i = 0; i < n; i++) janus_image_from_pm1(&rt->vision_img, out + i * vq_px(rt), out + i * vq_px(rt));
    return 0;
}

int engine_vision_features(struct janus_runtime *rt, const struct seen_image *const *see, int n, float *features,
                           struct dsr_err *err) {
    int n_codes = 0;
    for (int i = 0; i < n; i++) n_codes += see[i]->codes != NULL;
    size_t px = vision_px(rt);
    float *pixels = malloc((size_t)n * px * sizeof *pixels);
    const int32_t **codes = malloc((size_t)(n_codes ? n_codes : 1) * sizeof *codes);
    float *decoded = n_codes ? malloc((size_t)n_codes * px * sizeof *decoded) : NULL;
    int rc = -1;
    if (!pixels || !codes || (n_codes && !decoded)) {
        dsr_errf(err, "out of memory for %d images", n);
        goto out;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (see[i]->codes) codes[k++] = see[i]->codes;
    if (n_codes && codes_to_vision(rt, codes, n_codes, decoded, err)) goto out;
    k = 0;
    for (int i = 0; i < n; i++) {
        const float *src = see[i]->pixels ? see[i]->pixels : decoded + (size_t)k++ * px;
        memcpy(pixels + (size_t)i * px, src, px * sizeof *pixels);
    }
    rc = vision_tower_forward(rt->model.vision, pixels, n, features, err);
out:
    free(pixels);
    free(codes);
    free(decoded);
    return rc;
}

/* Vision embeds [n_images · N, hidden] for the seen images (entries with
 * neither pixels nor codes skipped); slot[i] receives each image's index,
 * -1 for none.  features_out (may be NULL) receives the tower's output. */
static int see_images(struct janus_runtime *rt, const struct seen_image *const *see, int n, int *slot, float **embeds_out,
                      float **features_out, struct dsr_err *err) {
    *embeds_out = NULL;
    if (features_out) *features_out = NULL;
    int n_img = 0;
    for (int i = 0; i < n; i++) slot[i] = see[i]->pixels || see[i]->codes ? n_img++ : -1;
    if (n_img == 0) return 0;
    const struct vision_config *v = &rt->model.cfg.vision;
    size_t rows = (size_t)n_img * v->num_image_tokens;
    const struct seen_image **present = malloc((size_t)n_img * sizeof *present);
    float *features = malloc(rows * v->hidden_size * sizeof *features);
    float *embeds = malloc(rows * rt->model.cfg.text.hidden_size * sizeof *embeds);
    int rc = -1;
    if (!present || !features || !embeds) {
        dsr_errf(err, "out of memory for %d images", n_img);
    } else {
        for (int i = 0; i < n; i++)
            if (slot[i] >= 0) present[slot[i]] = see[i];
        rc = engine_vision_features(rt, present, n_img, features, err);
        if (rc == 0) rc = vision_aligner_forward(rt->model.vision, features, (int)rows, embeds, err);
    }
    free(present);
    if (rc == 0 && features_out) *features_out = features;
    else free(features);
    if (rc == 0) *embeds_out = embeds;
    else free(embeds);
    return rc;
}

/* VQ-encodes every request's target_pixels in one batch. */
static int encode_targets(struct janus_runtime *rt, struct score_request *const *reqs, int n, struct dsr_err *err) {
    int m = 0;
    for (int i = 0; i < n; i++) m += reqs[i]->target_pixels != NULL;
    if (!m) return 0;
    size_t px = vq_px(rt);
    float *pixels = malloc((size_t)m * px * sizeof *pixels);
    int32_t *codes = malloc((size_t)m * rt->n_codes * sizeof *codes);
    int rc = -1;
    if (pixels && codes) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (reqs[i]->target_pixels) memcpy(pixels + (size_t)k++ * px, reqs[i]->target_pixels, px * sizeof *pixels);
        rc = vq_encode(rt->model.vq, pixels, m, rt->quantizer, codes, NULL, NULL, err);
        k = 0;
        for (int i = 0; rc == 0 && i < n; i++)
            if (reqs[i]->target_pixels)
                memcpy(reqs[i]->target, codes + (size_t)k++ * rt->n_codes, (size_t)rt->n_codes * sizeof *codes);
    } else {
        dsr_errf(err, "out of memory for VQ encoding");
    }
    free(pixels);
    free(codes);
    return rc;
}

int engine_score(struct janus_runtime *rt, struct score_request *const *reqs, int n, struct dsr_err *err) {
    const struct seen_image **see = calloc((size_t)n, sizeof *see);
    int *slot = malloc((size_t)n * sizeof *slot);
    struct tf_item *items = malloc((size_t)n * sizeof *items);
    float *embeds = NULL, *lp = NULL;
    int rc = -1;
    if (!see || !slot || !items) {
        dsr_errf(err, "out of memory for %d score items", n);
        goto out;
    }
    for (int i = 0; i < n; i++) see[i] = &reqs[i]->see;
    if (see_images(rt, see, n, slot, &embeds, NULL, err) || encode_targets(rt, reqs, n, err)) goto out;
    size_t total = 0, N = (size_t)rt->ids.n_image_tokens, H = (size_t)rt->model.cfg.text.hidden_size;
    for (int i = 0; i < n; i++) {
        items[i] = (struct tf_item){
            .context = reqs[i]->context,
            .n_context = reqs[i]->n_context,
            .image_embeds = slot[i] >= 0 ? embeds + (size_t)slot[i] * N * H : NULL,
            .n_image_rows = slot[i] >= 0 ? (int)N : 0,
            .kind = reqs[i]->kind,
            .target = reqs[i]->target,
            .n_target = reqs[i]->n_target,
        };
        total += (size_t)reqs[i]->n_target;
    }
    if (!(lp = malloc(total * sizeof *lp))) {
        dsr_errf(err, "out of memory for %zu log-probs", total);
        goto out;
    }
    if (tf_logprobs(&rt->model, items, n, lp, err)) goto out;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        memcpy(reqs[i]->logprobs, lp + o, (size_t)reqs[i]->n_target * sizeof *lp);
        o += (size_t)reqs[i]->n_target;
    }
    rc = 0;
out:
    free(see);
    free(slot);
    free(items);
    free(embeds);
    free(lp);
    return rc;
}

void rollout_output_free(struct rollout_output *o) {
    text_group_free(&o->text);
    image_group_free(&o->image);
    free(o->rewards);
    free(o->pixels);
    free(o->features);
    memset(o, 0, sizeof *o);
}

/* R_U of each caption: mean log-prob of the image's codes given the
 * gen_context of the caption's ids (janus_runtime_gen_context_ids). */
static int score_captions(struct janus_runtime *rt, const struct rollout_request *rq, struct rollout_output *out,
                          struct dsr_err *err) {
    int G = rq->n, N = rt->n_codes;
    int32_t *codes = malloc((size_t)N * sizeof *codes);
    struct tok_ids *ctx = calloc((size_t)G, sizeof *ctx);
    struct score_request *reqs = calloc((size_t)G, sizeof *reqs);
    struct score_request **ptrs = calloc((size_t)G, sizeof *ptrs);
    float *lp = malloc((size_t)G * N * sizeof *lp);
    int rc = -1;
    if (!codes || !ctx || !reqs || !ptrs || !lp) {
        dsr_errf(err, "out of memory for caption scores");
        goto out;
    }
    if (rq->see.codes) memcpy(codes, rq->see.codes, (size_t)N * sizeof *codes);
    else if (vq_encode(rt->model.vq, rq->vq_pixels, 1, rt->quantizer, codes, NULL, NULL, err)) goto out;
    for (int g = 0; g < G; g++) {
        if (janus_runtime_gen_context_ids(rt, out->text.tokens + (size_t)g * rq->max_tokens, out->text.lengths[g], &ctx[g],
                                    err))
            goto out;
        reqs[g] = (struct score_request){.context = ctx[g].ids, .n_context = (int)ctx[g].n, .kind = TF_TARGET_CODES,
                                         .target = codes, .n_target = N, .logprobs = lp + (size_t)g * N};
        ptrs[g] = &reqs[g];
    }
    if (engine_score(rt, ptrs, G, err)) goto out;
    for (int g = 0; g < G; g++) out->rewards[g] = reward_of(lp + (size_t)g * N, N).reward;
    rc = 0;
out:
    for (int g = 0; ctx && g < G; g++) tok_ids_free(&ctx[g]);
    free(codes);
    free(ctx);
    free(reqs);
    free(ptrs);
    free(lp);
    return rc;
}

/* R_G of each image: mean log-prob of rg_target(prompt) given
 * und_context(image seen through VQ decode, dual question). */
static int score_images(struct janus_runtime *rt, const struct rollout_request *rq, struct rollout_output *out,
                        struct dsr_err *err) {
    int G = rq->n, T = rq->n_rg_target;
    struct score_request *reqs = calloc((size_t)G, sizeof *reqs);
    struct score_request **ptrs = calloc((size_t)G, sizeof *ptrs);
    int32_t *target = malloc((size_t)T * sizeof *target);
    float *lp = malloc((size_t)G * T * sizeof *lp);
    int rc = -1;
    if (!reqs || !ptrs || !target || !lp) {
        dsr_errf(err, "out of memory for image scores");
        goto out;
    }
    memcpy(target, rq->rg_target, (size_t)T * sizeof *target);
    for (int g = 0; g < G; g++) {
        reqs[g] = (struct score_request){.context = rq->rg_context, .n_context = rq->n_rg_context,
                                         .see = {.codes = out->image.codes + (size_t)g * rt->n_codes},
                                         .kind = TF_TARGET_TOKENS, .target = target, .n_target = T,
                                         .logprobs = lp + (size_t)g * T};
        ptrs[g] = &reqs[g];
    }
    if (engine_score(rt, ptrs, G, err)) goto out;
    for (int g = 0; g < G; g++) out->rewards[g] = reward_of(lp + (size_t)g * T, T).reward;
    rc = 0;
out:
    free(reqs);
    free(ptrs);
    free(target);
    free(lp);
    return rc;
}

const int32_t *rollout_output_tokens(const struct janus_runtime *rt, const struct rollout_request *rq,
                                     const struct rollout_output *o, int g, const float **logprobs, int *n) {
    size_t stride = rq->understanding ? (size_t)rq->max_tokens : (size_t)rt->n_codes;
    *logprobs = (rq->understanding ? o->text.logprobs : o->image.logprobs) + (size_t)g * stride;
    *n = rq->understanding ? o->text.lengths[g] : rt->n_codes;
    return (rq->understanding ? o->text.tokens : o->image.codes) + (size_t)g * stride;
}

int engine_rollout(struct janus_runtime *rt, const struct rollout_request *rq, struct rollout_output *out,
                   struct dsr_err *err) {
    memset(out, 0, sizeof *out);
    float *embeds = NULL;
    int rc = -1;
    out->rewards = calloc((size_t)rq->n, sizeof *out->rewards);
    if (!out->rewards) {
        dsr_errf(err, "out of memory for %d rollouts", rq->n);
        goto out;
    }
    if (rq->understanding) {
        const struct seen_image *see = &rq->see;
        int slot;
        if (see_images(rt, &see, 1, &slot, &embeds, &out->features, err)) goto out;
        if (sample_text_group(&rt->model, rq->context, rq->n_context, embeds, embeds ? rt->ids.n_image_tokens : 0,
                              rq->n, rq->max_tokens, &rq->sp, &out->text, err))
            goto out;
        if (rq->score && score_captions(rt, rq, out, err)) goto out;
    } else {
        if (sample_image_group(&rt->model, rq->context, rq->n_context, rq->n, rq->cfg_scale, &rq->sp, &out->image,
                               err))
            goto out;
        if (rq->score && score_images(rt, rq, out, err)) goto out;
        if (rq->decode_pixels) {
            if (!(out->pixels = malloc((size_t)rq->n * vq_px(rt) * sizeof *out->pixels))) {
                dsr_errf(err, "out of memory for decoded images");
                goto out;
            }
            if (vq_decode(rt->model.vq, out->image.codes, rq->n, out->pixels, err)) goto out;
        }
    }
    rc = 0;
out:
    free(embeds);
    if (rc) rollout_output_free(out);
    return rc;
}
