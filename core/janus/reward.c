#include "janus/reward.h"

#include <stdlib.h>

#include "janus/teacher_forcing.h"

struct reward reward_of(const float *logprobs, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += logprobs[i];
    return (struct reward){n > 0 ? s / n : 0.0, s, n};
}

/* Teacher-forces one item and reduces its log-probs to the reward. */
static int score_one(const struct janus_model *m, const struct tf_item *it, float *logprobs, struct reward *out,
                     struct dsr_err *err) {
    float *lp = logprobs ? logprobs : malloc((size_t)(it->n_target > 0 ? it->n_target : 1) * sizeof *lp);
    if (!lp) return dsr_errf(err, "out of memory for %d log-probs", it->n_target);
    int rc = tf_logprobs(m, it, 1, lp, err);
    if (rc == 0) *out = reward_of(lp, it->n_target);
    if (lp != logprobs) free(lp);
    return rc;
}

int reward_understanding(const struct janus_model *m, const int32_t *gen_context, int n_context, const int32_t *codes,
                         int n_codes, float *logprobs, struct reward *out, struct dsr_err *err) {
    struct tf_item it = {.context = gen_context, .n_context = n_context, .kind = TF_TARGET_CODES, .target = codes,
                         .n_target = n_codes};
    return score_one(m, &it, logprobs, out, err);
}

int reward_generation(const struct janus_model *m, const int32_t *und_context, int n_context, const float *image_embeds,
                      int n_image_rows, const int32_t *target, int n_target, float *logprobs, struct reward *out,
                      struct dsr_err *err) {
    struct tf_item it = {.context = und_context, .n_context = n_context, .image_embeds = image_embeds,
                         .n_image_rows = n_image_rows, .kind = TF_TARGET_TOKENS, .target = target,
                         .n_target = n_target};
    return score_one(m, &it, logprobs, out, err);
}
