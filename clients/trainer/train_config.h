/* dsr-train's command line: every flag, its default, and validation.
 *
 * The config only borrows strings from argv (which outlives it). */
#ifndef DSR_TRAIN_CONFIG_H
#define DSR_TRAIN_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "advantage.h"
#include "base/error.h"
#include "retry.h"

#define TRAIN_MAX_SERVERS 16
#define TRAIN_MAX_GROUPS 64   /* batch-images + batch-prompts */
#define TRAIN_MAX_GROUP_SIZE 64

enum train_algorithm { ALGO_GRPO, ALGO_SIMPO };

/* Directions trained (bit mask). */
#define DIR_UND 1u /* understanding: captions of --images, rewarded by R_U */
#define DIR_GEN 2u /* generation: images of --prompts, rewarded by R_G */

/* Where the rewards behind the advantages come from. */
enum reward_source {
    REWARD_SELF,     /* the server's dual self-reward (/rollout with score) */
    REWARD_SHUFFLED, /* the same, permuted within each group (the no-signal control) */
    REWARD_COMMAND,  /* an external grader process (reward_cmd.h) */
};

const char *reward_source_name(enum reward_source s);

struct train_config {
    const char *images_dir;   /* understanding data, or NULL */
    const char *prompts_file; /* generation data, or NULL */
    unsigned directions;      /* DIR_* trained; after parsing, a direction's batch is 0 unless chosen */
    const char *servers[TRAIN_MAX_SERVERS];
    int n_servers;
    const char *learner;      /* defaults to servers[0] */
    const char *api_key, *admin_key;

    int batch_images, batch_prompts, group_size;
    enum train_algorithm algorithm;
    enum scale_rewards scale;
    /* GRPO (TRL defaults) */
    double epsilon, epsilon_high, beta;
    const char *loss_type;
    /* SimPO */
    double simpo_beta, simpo_gamma;
    /* AdamW */
    double lr, weight_decay, max_grad_norm;
    /* sampling */
    const char *question;     /* understanding rollouts */
    double cfg_scale, temperature, top_p;
    int top_k, max_tokens;

    /* rewards */
    enum reward_source reward;
    const char *reward_cmd;   /* --reward command: "CMD ARGS" for /bin/sh -c */
    int self_score;           /* ask /rollout for the self-reward (off only with --no-self-score) */

    /* evaluation hook: run eval_cmd at step 0, every eval_every steps (0:
     * only at the start and the end) and after the last step */
    const char *eval_cmd;     /* or NULL */
    long eval_every;

    uint64_t seed;            /* data order, request seeds, the shuffle */
    long steps;
    const char *log_path;     /* JSONL, appended */
    const char *state_path;
    int resume;
    long checkpoint_every;    /* 0: only when several servers need it */
    int dry_run;

    struct retry_policy retry;
    long timeout_ms;          /* per request */
};

void train_config_defaults(struct train_config *c);

/* Parses argv.  Returns 0 on success, 1 when --help was printed (exit 0),
 * -1 with a message on bad arguments. */
int train_config_parse(struct train_config *c, int argc, char **argv, FILE *help_out, struct dsr_err *err);

void train_config_usage(FILE *f);

#endif
