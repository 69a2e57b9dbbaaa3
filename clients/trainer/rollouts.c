#include "rollouts.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int group_prepare(struct group *g, const struct train_config *cfg, struct dsr_call_err *e) {
    if (g->task == TASK_UNDERSTANDING) {
        g->want_text = cfg->reward == REWARD_COMMAND;
        g->image = dsr_image_png_file(g->item, 0, e);
        if (!g->image) return -1;
        g->request = json_pack("{s:s, s:O, s:s, s:i, s:i, s:f, s:i, s:f, s:I, s:b}", "task", "understanding",
                               "image", g->image, "question", cfg->question, "n", cfg->group_size, "max_tokens",
                               cfg->max_tokens, "temperature", cfg->temperature, "top_k", cfg->top_k, "top_p",
                               cfg->top_p, "seed", (json_int_t)g->seed, "score", cfg->self_score);
    } else {
        g->request = json_pack("{s:s, s:{s:s}, s:i, s:f, s:f, s:i, s:f, s:I, s:b, s:b}", "task", "generation",
                               "prompt", "text", g->item, "n", cfg->group_size, "cfg_scale", cfg->cfg_scale,
                               "temperature", cfg->temperature, "top_k", cfg->top_k, "top_p", cfg->top_p, "seed",
                               (json_int_t)g->seed, "score", cfg->self_score, "return_png",
                               cfg->reward == REWARD_COMMAND);
    }
    if (!g->request) {
        memset(e, 0, sizeof *e);
        e->kind = DSR_CALL_USAGE;
        snprintf(e->msg, sizeof e->msg, "cannot build the rollout request for '%s' (not UTF-8?)", g->item);
        return -1;
    }
    return 0;
}

struct group_job {
    struct group *g;
    const struct dsr_client *client;
    const struct retry_policy *policy;
};

static int rollout_attempt(void *ctx, int attempt, struct dsr_call_err *e) {
    (void)attempt;
    struct group_job *job = ctx;
    json_decref(job->g->response);
    job->g->response = NULL;
    return dsr_rollout(job->client, job->g->request, &job->g->response, e);
}

static void *group_thread(void *arg) {
    struct group_job *job = arg;
    struct retry_clock clock;
    retry_clock_system(&clock);
    job->g->rc = retry_run(job->policy, &clock, rollout_attempt, job, NULL, NULL, &job->g->attempts, &job->g->err);
    return NULL;
}

/* Reads rewards out of a successful response into g. */
static int group_check(struct group *g, int group_size, struct dsr_call_err *e) {
    const json_t *rollouts = json_object_get(g->response, "rollouts");
    if (!json_is_array(rollouts) || (int)json_array_size(rollouts) != group_size) {
        e->kind = DSR_CALL_PROTOCOL;
        snprintf(e->msg, sizeof e->msg, "/rollout for '%s': expected %d rollouts", g->item, group_size);
        return -1;
    }
    /* the context the server sampled from: /update cites it as is */
    const json_t *context = json_object_get(json_object_get(g->response, "context"), "tokens");
    if (!json_is_array(context) || json_array_size(context) == 0) {
        e->kind = DSR_CALL_PROTOCOL;
        snprintf(e->msg, sizeof e->msg, "/rollout for '%s': no context.tokens in the response (dsrd too old?)",
                 g->item);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(context); i++)
        if (!json_is_integer(json_array_get(context, i))) {
            e->kind = DSR_CALL_PROTOCOL;
            snprintf(e->msg, sizeof e->msg, "/rollout for '%s': context.tokens[%zu] is not an integer", g->item, i);
            return -1;
        }
    int scored = json_is_true(json_object_get(g->request, "score"));
    int png = json_is_true(json_object_get(g->request, "return_png"));
    for (int i = 0; i < group_size; i++) {
        const json_t *r = json_array_get(rollouts, (size_t)i);
        const json_t *reward = json_object_get(r, "reward");
        const char *field = g->task == TASK_UNDERSTANDING ? "tokens" : "codes";
        if ((scored && (!json_is_number(reward) || !isfinite(json_number_value(reward)))) ||
            !json_is_array(json_object_get(r, field)) || !json_is_array(json_object_get(r, "logprobs")) ||
            (png && !json_is_string(json_object_get(r, "png"))) ||
            (g->want_text && !json_is_string(json_object_get(r, "text")))) {
            e->kind = DSR_CALL_PROTOCOL;
            snprintf(e->msg, sizeof e->msg, "/rollout for '%s': rollout %d lacks a finite reward, %s, logprobs%s",
                     g->item, i, field, g->want_text ? " or text" : png ? " or png" : "");
            return -1;
        }
        g->rewards[i] = g->self_rewards[i] = scored ? json_number_value(reward) : 0.0;
    }
    g->has_self = scored;
    g->n = group_size;
    return 0;
}

int groups_run(struct group *groups, int n_groups, struct dsr_client *const *clients, const struct retry_policy *p,
               int group_size, long want_version, int *version_mismatch, struct dsr_call_err *e) {
    struct group_job jobs[TRAIN_MAX_GROUPS];
    pthread_t threads[TRAIN_MAX_GROUPS];
    int started[TRAIN_MAX_GROUPS] = {0};
    memset(e, 0, sizeof *e);
    *version_mismatch = 0;
    for (int i = 0; i < n_groups; i++) {
        jobs[i] = (struct group_job){&groups[i], clients[groups[i].server], p};
        started[i] = pthread_create(&threads[i], NULL, group_thread, &jobs[i]) == 0;
        if (!started[i]) group_thread(&jobs[i]); /* no thread to spare: run it here */
    }
    for (int i = 0; i < n_groups; i++)
        if (started[i]) pthread_join(threads[i], NULL);
    for (int i = 0; i < n_groups; i++) {
        struct group *g = &groups[i];
        if (g->rc != 0) {
            *e = g->err;
            snprintf(e->msg, sizeof e->msg, "/rollout on %.80s for '%.60s' (after %d attempts): %.300s",
                     dsr_client_base_url(clients[g->server]), g->item, g->attempts, g->err.msg);
            return -1;
        }
        if (dsr_policy_version(g->response) != want_version) *version_mismatch = 1;
        if (group_check(g, group_size, e) != 0) return -1;
    }
    return 0;
}

void group_free(struct group *g) {
    json_decref(g->image);
    json_decref(g->request);
    json_decref(g->response);
    memset(g, 0, sizeof *g);
}
