#include "update_req.h"

#include <stdlib.h>

#include "advantage.h"

/* Explicit sample for rollout i of group g (advantage added by the caller for GRPO). */
static json_t *sample_json(const struct group *g, int i, json_t *context) {
    const json_t *r = json_array_get(json_object_get(g->response, "rollouts"), (size_t)i);
    json_t *s;
    if (g->task == TASK_UNDERSTANDING) {
        s = json_pack("{s:s, s:{s:O}, s:O, s:{s:O}, s:O}", "task", "understanding", "context", "tokens", context,
                      "image", g->image, "completion", "tokens", json_object_get(r, "tokens"), "old_logprobs",
                      json_object_get(r, "logprobs"));
    } else {
        s = json_pack("{s:s, s:{s:O}, s:{s:O}, s:O}", "task", "generation", "context", "tokens", context,
                      "completion", "codes", json_object_get(r, "codes"), "old_logprobs",
                      json_object_get(r, "logprobs"));
    }
    return s;
}

/* Advantages of every group of one task, so "batch" scaling sees only its
 * own direction's rewards (R_U and R_G live on different scales). */
static void task_advantages(const struct train_config *cfg, const struct group *groups, int n_groups,
                            enum group_task task, double adv[][TRAIN_MAX_GROUP_SIZE]) {
    int G = cfg->group_size;
    double rewards[TRAIN_MAX_GROUPS * TRAIN_MAX_GROUP_SIZE];
    double out[TRAIN_MAX_GROUPS * TRAIN_MAX_GROUP_SIZE];
    int idx[TRAIN_MAX_GROUPS];
    int k = 0;
    for (int i = 0; i < n_groups; i++) {
        if (groups[i].task != task) continue;
        for (int j = 0; j < G; j++) rewards[k * G + j] = groups[i].rewards[j];
        idx[k++] = i;
    }
    if (k == 0) return;
    grpo_advantages(rewards, k, G, cfg->scale, out);
    for (int q = 0; q < k; q++)
        for (int j = 0; j < G; j++) adv[idx[q]][j] = out[q * G + j];
}

static json_t *grpo_request(const struct train_config *cfg, const struct group *groups, int n_groups,
                            json_t *const *contexts, int *n_units) {
    double (*adv)[TRAIN_MAX_GROUP_SIZE] = calloc((size_t)n_groups, sizeof *adv);
    if (!adv) return NULL;
    task_advantages(cfg, groups, n_groups, TASK_UNDERSTANDING, adv);
    task_advantages(cfg, groups, n_groups, TASK_GENERATION, adv);
    json_t *samples = json_array();
    for (int i = 0; i < n_groups; i++) {
        for (int j = 0; j < cfg->group_size; j++) {
            json_t *s = sample_json(&groups[i], j, contexts[i]);
            if (!s) {
                json_decref(samples);
                free(adv);
                return NULL;
            }
            json_object_set_new(s, "advantage", json_real(adv[i][j]));
            json_array_append_new(samples, s);
        }
    }
    free(adv);
    *n_units = (int)json_array_size(samples);
    json_t *hyper = json_pack("{s:f, s:f, s:f, s:s, s:f, s:f, s:f}", "epsilon", cfg->epsilon, "epsilon_high",
                              cfg->epsilon_high, "beta", cfg->beta, "loss_type", cfg->loss_type, "lr", cfg->lr,
                              "weight_decay", cfg->weight_decay, "max_grad_norm", cfg->max_grad_norm);
    return json_pack("{s:s, s:o, s:o}", "algorithm", "grpo", "samples", samples, "hyper", hyper);
}

static json_t *simpo_request(const struct train_config *cfg, const struct group *groups, int n_groups,
                             json_t *const *contexts, int *n_units) {
    json_t *pairs = json_array();
    for (int i = 0; i < n_groups; i++) {
        int best, worst;
        if (!simpo_pair_pick(groups[i].rewards, cfg->group_size, &best, &worst)) continue;
        json_t *pair = json_pack("{s:o, s:o}", "chosen", sample_json(&groups[i], best, contexts[i]), "rejected",
                                 sample_json(&groups[i], worst, contexts[i]));
        if (!pair) {
            json_decref(pairs);
            return NULL;
        }
        json_array_append_new(pairs, pair);
    }
    *n_units = (int)json_array_size(pairs);
    json_t *hyper = json_pack("{s:f, s:f, s:f, s:f, s:f}", "beta", cfg->simpo_beta, "gamma", cfg->simpo_gamma, "lr",
                              cfg->lr, "weight_decay", cfg->weight_decay, "max_grad_norm", cfg->max_grad_norm);
    return json_pack("{s:s, s:o, s:o}", "algorithm", "simpo", "pairs", pairs, "hyper", hyper);
}

json_t *update_request_build(const struct train_config *cfg, const struct group *groups, int n_groups,
                             json_t *const *contexts, const char *idempotency_key, int *n_units) {
    *n_units = 0;
    json_t *req = cfg->algorithm == ALGO_GRPO ? grpo_request(cfg, groups, n_groups, contexts, n_units)
                                              : simpo_request(cfg, groups, n_groups, contexts, n_units);
    if (req) json_object_set_new(req, "idempotency_key", json_string(idempotency_key));
    return req;
}
