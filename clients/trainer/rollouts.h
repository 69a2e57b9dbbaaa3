/* One step's rollout groups: build the /rollout requests, run them
 * concurrently (one thread per group, spread round-robin over the
 * servers), each with bounded retries, and check what came back.
 *
 * Ownership: a struct group owns its request, image span and response
 * (group_free releases them); `item` is borrowed from the dataset. */
#ifndef DSR_TRAIN_ROLLOUTS_H
#define DSR_TRAIN_ROLLOUTS_H

#include <stdint.h>

#include "train_config.h"
#include "dsr_client.h"
#include "retry.h"

enum group_task { TASK_UNDERSTANDING, TASK_GENERATION };

struct group {
    enum group_task task;
    const char *item;   /* image path or prompt */
    json_t *image;      /* {"png": ...} for understanding, else NULL */
    uint32_t seed;      /* request seed */
    int server;         /* index into the server list */
    json_t *request;
    json_t *response;   /* NULL until done; response.context.tokens is the sampling context */
    double rewards[TRAIN_MAX_GROUP_SIZE];      /* behind the advantages (reward_source.h) */
    double self_rewards[TRAIN_MAX_GROUP_SIZE]; /* the server's, as returned */
    int has_self;       /* self_rewards were requested and received */
    int want_text;      /* captions must come with their text (the grader reads it) */
    int n;              /* rollouts received (== group size when ok) */
    int attempts;
    struct dsr_call_err err;
    int rc;
};

/* Builds g->request (and reads the image file): score as cfg->self_score,
 * and generated images as PNG too for --reward command.  Returns -1 with
 * e filled. */
int group_prepare(struct group *g, const struct train_config *cfg, struct dsr_call_err *e);

/* Runs every group's request concurrently; each thread retries with policy
 * p on clients[g->server].  Then validates each response: the context
 * token ids it was sampled from (context.tokens), exactly group_size rollouts, finite rewards (when requested; copied to both
 * rewards and self_rewards), caption text / PNG when the request asked for
 * them, policy_version == want_version
 * (*version_mismatch set to 1 when any differs).  Returns -1 with the first
 * failure described in e. */
int groups_run(struct group *groups, int n_groups, struct dsr_client *const *clients, const struct retry_policy *p,
               int group_size, long want_version, int *version_mismatch, struct dsr_call_err *e);

void group_free(struct group *g);

#endif
