#include "train_config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"

const char *reward_source_name(enum reward_source s) {
    switch (s) {
    case REWARD_SELF: return "self";
    case REWARD_SHUFFLED: return "shuffled";
    case REWARD_COMMAND: return "command";
    }
    return "?";
}

void train_config_defaults(struct train_config *c) {
    memset(c, 0, sizeof *c);
    c->batch_images = 2;
    c->batch_prompts = 2;
    c->group_size = 8;
    c->algorithm = ALGO_GRPO;
    c->scale = SCALE_GROUP;
    c->epsilon = 0.2;
    c->epsilon_high = -1; /* TRL: None, i.e. epsilon */
    c->beta = 0.0;
    c->loss_type = "dapo"; /* TRL's GRPOConfig default */
    c->simpo_beta = 2.0;
    c->simpo_gamma = 1.0;
    c->lr = 1e-6;
    c->weight_decay = 0.0;
    c->max_grad_norm = 1.0;
    c->question = "Describe this image.";
    c->cfg_scale = 5.0;
    c->temperature = 1.0;
    c->top_p = 1.0;
    c->top_k = 0;
    c->max_tokens = 64;
    c->reward = REWARD_SELF;
    c->self_score = 1;
    c->seed = 0;
    c->steps = 10;
    c->log_path = "dsr-train.jsonl";
    c->state_path = "dsr-train.state";
    c->retry.max_attempts = 8;
    c->retry.base_delay_s = 0.5;
    c->retry.max_delay_s = 8.0;
    c->retry.max_total_s = 120.0;
    c->timeout_ms = 300000;
}

void train_config_usage(FILE *f) {
    fputs(
        "usage: dsr-train [options]\n"
        "\n"
        "GRPO / SimPO training with dual self-rewards against dsrd servers.\n"
        "Each step samples a group of --group-size rollouts per image (captions,\n"
        "rewarded by R_U) and per prompt (images, rewarded by R_G), computes\n"
        "group-relative advantages and sends one /update to the learner.\n"
        "\n"
        "data (at least one):\n"
        "  --images DIR          unlabelled PNG/JPEG images (understanding direction)\n"
        "  --prompts FILE        one prompt per line (generation direction)\n"
        "  --directions und,gen|und|gen  directions to train (default: every one\n"
        "                        with data); a chosen direction needs its data\n"
        "servers:\n"
        "  --server URL          rollout/score server; repeat for replicas\n"
        "                        (default $DSR_SERVER or http://127.0.0.1:8080)\n"
        "  --learner URL         where /update goes (default: the first --server)\n"
        "  --api-key KEY         model endpoints key (default $DSR_API_KEY)\n"
        "  --admin-key KEY       /update, /checkpoint, /reload key (default $DSR_ADMIN_KEY)\n"
        "batch:\n"
        "  --batch-images N      images per step (default 2)\n"
        "  --batch-prompts N     prompts per step (default 2)\n"
        "  --group-size N        rollouts per image/prompt (default 8)\n"
        "  --steps N             steps to run, in total across resumes (default 10)\n"
        "algorithm:\n"
        "  --algorithm grpo|simpo  (default grpo)\n"
        "  --scale-rewards group|batch|none  advantage scaling (default group;\n"
        "                        'batch' uses the std of the step's rewards of\n"
        "                        the same direction)\n"
        "  --loss-type grpo|dapo|bnpo|dr_grpo  (default dapo, as TRL)\n"
        "  --epsilon X           lower clip (default 0.2, as TRL)\n"
        "  --epsilon-high X      upper clip (default: --epsilon, as TRL; DAPO uses 0.28)\n"
        "  --beta X              KL coefficient (default 0)\n"
        "  --simpo-beta X        SimPO beta (default 2)\n"
        "  --simpo-gamma X       SimPO margin (default 1)\n"
        "  --lr X                AdamW learning rate (default 1e-6)\n"
        "  --weight-decay X      AdamW weight decay (default 0)\n"
        "  --max-grad-norm X     clip the global gradient norm; 0 = off (default 1)\n"
        "sampling:\n"
        "  --question TEXT       understanding question (default \"Describe this image.\")\n"
        "  --max-tokens N        caption length limit (default 64)\n"
        "  --temperature X       (default 1)\n"
        "  --top-k N             0 = off (default 0)\n"
        "  --top-p X             (default 1)\n"
        "  --cfg-scale X         classifier-free guidance for images (default 5)\n"
        "  --seed N              data order, request seeds and the --reward shuffled\n"
        "                        permutation (default 0); the same seed gives the\n"
        "                        same items, seeds and permutations, also across --resume\n"
        "rewards:\n"
        "  --reward self|shuffled|command  (default self)\n"
        "                        self: the server's dual self-reward (R_U, R_G);\n"
        "                        shuffled: the same rewards permuted at random within\n"
        "                        each group (same compute, no signal: the control);\n"
        "                        command: an external grader, --reward-cmd\n"
        "  --reward-cmd \"CMD ARGS\"  grader started once with /bin/sh -c and kept\n"
        "                        running; per rollout it reads one JSON line\n"
        "                        {\"task\": \"understanding\"|\"generation\", \"image\":\n"
        "                        \"/abs/path.png\", \"caption\": TEXT} (understanding: the\n"
        "                        data image and the sampled caption; generation: the\n"
        "                        generated image, in a temporary directory, and the\n"
        "                        prompt) and answers {\"reward\": X} or {\"pass\": BOOL}\n"
        "                        (1/0); {\"error\": ...}, a bad line or no reply within\n"
        "                        --timeout stops the run.\n"
        "                        `dsr world grade --batch` speaks this protocol\n"
        "  --no-self-score       with --reward command: do not ask the server for\n"
        "                        the self-reward too (by default it is logged as\n"
        "                        und/gen_self_reward_mean beside the grader's)\n"
        "run:\n"
        "  --log FILE            JSONL, appended: one record per step (reward source,\n"
        "                        per direction the mean and std of the rewards, the\n"
        "                        mean within-group std and the fraction of groups\n"
        "                        with no spread; loss, kl, clip_fraction, grad_norm,\n"
        "                        seconds, wall_time) and one per evaluation\n"
        "                        (default dsr-train.jsonl)\n"
        "  --state FILE          resumable state (default dsr-train.state)\n"
        "  --resume              continue from --state after a crash\n"
        "  --checkpoint-every K  learner writes checkpoint step-NNNNNN every K steps\n"
        "                        (0 = never; with several servers one is written\n"
        "                        every step so replicas can reload it)\n"
        "  --dry-run             print the plan and exit\n"
        "evaluation:\n"
        "  --eval-cmd \"CMD\"      run with /bin/sh -c at step 0, every --eval-every\n"
        "                        steps and after the last step, with DSR_SERVER (the\n"
        "                        learner), DSR_STEP, DSR_POLICY_VERSION (and\n"
        "                        DSR_API_KEY when set) in its environment; the last\n"
        "                        non-empty line of its stdout, a JSON object, is\n"
        "                        logged as {\"eval\": {...}, \"step\", \"policy_version\",\n"
        "                        \"seconds\"}; a failure is logged as {\"eval_error\"}\n"
        "                        and training goes on; --resume skips logged evals\n"
        "  --eval-every N        steps between evaluations (default 0: only the\n"
        "                        first and the last)\n"
        "retries (transport errors, timeouts, 5xx; 4xx is fatal):\n"
        "  --retries N           attempts per request (default 8)\n"
        "  --retry-delay S       first backoff delay, doubled each retry (default 0.5)\n"
        "  --retry-max-delay S   cap on one delay (default 8)\n"
        "  --retry-max-time S    give up after this long per request (default 120)\n"
        "  --timeout S           per-request timeout (default 300)\n"
        "  -h, --help            this text\n"
        "  --version             the dsr version and source commit\n",
        f);
}

static int parse_double(const char *flag, const char *s, double lo, double hi, double *out, struct dsr_err *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return dsr_errf(err, "%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out, struct dsr_err *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return dsr_errf(err, "%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out, struct dsr_err *err) {
    long v;
    if (parse_long(flag, s, lo, hi, &v, err) != 0) return -1;
    *out = (int)v;
    return 0;
}

enum {
    OPT_IMAGES = 256, OPT_PROMPTS, OPT_SERVER, OPT_LEARNER, OPT_API_KEY, OPT_ADMIN_KEY, OPT_BATCH_IMAGES,
    OPT_BATCH_PROMPTS, OPT_GROUP_SIZE, OPT_STEPS, OPT_ALGORITHM, OPT_SCALE, OPT_LOSS_TYPE, OPT_EPSILON,
    OPT_EPSILON_HIGH, OPT_BETA, OPT_SIMPO_BETA, OPT_SIMPO_GAMMA, OPT_LR, OPT_WEIGHT_DECAY, OPT_MAX_GRAD_NORM,
    OPT_QUESTION, OPT_MAX_TOKENS, OPT_TEMPERATURE, OPT_TOP_K, OPT_TOP_P, OPT_CFG, OPT_SEED, OPT_LOG, OPT_STATE,
    OPT_RESUME, OPT_CKPT_EVERY, OPT_DRY_RUN, OPT_RETRIES, OPT_RETRY_DELAY, OPT_RETRY_MAX_DELAY,
    OPT_RETRY_MAX_TIME, OPT_TIMEOUT, OPT_VERSION, OPT_DIRECTIONS, OPT_REWARD, OPT_REWARD_CMD, OPT_NO_SELF_SCORE,
    OPT_EVAL_CMD, OPT_EVAL_EVERY,
};

static const struct option LONG_OPTS[] = {
    {"images", required_argument, 0, OPT_IMAGES},
    {"prompts", required_argument, 0, OPT_PROMPTS},
    {"server", required_argument, 0, OPT_SERVER},
    {"learner", required_argument, 0, OPT_LEARNER},
    {"api-key", required_argument, 0, OPT_API_KEY},
    {"admin-key", required_argument, 0, OPT_ADMIN_KEY},
    {"batch-images", required_argument, 0, OPT_BATCH_IMAGES},
    {"batch-prompts", required_argument, 0, OPT_BATCH_PROMPTS},
    {"group-size", required_argument, 0, OPT_GROUP_SIZE},
    {"steps", required_argument, 0, OPT_STEPS},
    {"algorithm", required_argument, 0, OPT_ALGORITHM},
    {"scale-rewards", required_argument, 0, OPT_SCALE},
    {"loss-type", required_argument, 0, OPT_LOSS_TYPE},
    {"epsilon", required_argument, 0, OPT_EPSILON},
    {"epsilon-high", required_argument, 0, OPT_EPSILON_HIGH},
    {"beta", required_argument, 0, OPT_BETA},
    {"simpo-beta", required_argument, 0, OPT_SIMPO_BETA},
    {"simpo-gamma", required_argument, 0, OPT_SIMPO_GAMMA},
    {"lr", required_argument, 0, OPT_LR},
    {"weight-decay", required_argument, 0, OPT_WEIGHT_DECAY},
    {"max-grad-norm", required_argument, 0, OPT_MAX_GRAD_NORM},
    {"question", required_argument, 0, OPT_QUESTION},
    {"max-tokens", required_argument, 0, OPT_MAX_TOKENS},
    {"temperature", required_argument, 0, OPT_TEMPERATURE},
    {"top-k", required_argument, 0, OPT_TOP_K},
    {"top-p", required_argument, 0, OPT_TOP_P},
    {"cfg-scale", required_argument, 0, OPT_CFG},
    {"seed", required_argument, 0, OPT_SEED},
    {"log", required_argument, 0, OPT_LOG},
    {"state", required_argument, 0, OPT_STATE},
    {"resume", no_argument, 0, OPT_RESUME},
    {"checkpoint-every", required_argument, 0, OPT_CKPT_EVERY},
    {"dry-run", no_argument, 0, OPT_DRY_RUN},
    {"retries", required_argument, 0, OPT_RETRIES},
    {"retry-delay", required_argument, 0, OPT_RETRY_DELAY},
    {"retry-max-delay", required_argument, 0, OPT_RETRY_MAX_DELAY},
    {"retry-max-time", required_argument, 0, OPT_RETRY_MAX_TIME},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"directions", required_argument, 0, OPT_DIRECTIONS},
    {"reward", required_argument, 0, OPT_REWARD},
    {"reward-cmd", required_argument, 0, OPT_REWARD_CMD},
    {"no-self-score", no_argument, 0, OPT_NO_SELF_SCORE},
    {"eval-cmd", required_argument, 0, OPT_EVAL_CMD},
    {"eval-every", required_argument, 0, OPT_EVAL_EVERY},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0},
};

static int is_loss_type(const char *s) {
    return strcmp(s, "grpo") == 0 || strcmp(s, "dapo") == 0 || strcmp(s, "bnpo") == 0 || strcmp(s, "dr_grpo") == 0;
}

/* "und,gen", "gen", ... (also the long names) into a DIR_* mask. */
static int parse_directions(const char *s, unsigned *out, struct dsr_err *err) {
    unsigned mask = 0;
    const char *p = s;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (n == 3 && strncmp(p, "und", 3) == 0) mask |= DIR_UND;
        else if (n == 13 && strncmp(p, "understanding", 13) == 0) mask |= DIR_UND;
        else if (n == 3 && strncmp(p, "gen", 3) == 0) mask |= DIR_GEN;
        else if (n == 10 && strncmp(p, "generation", 10) == 0) mask |= DIR_GEN;
        else return dsr_errf(err, "--directions: '%s' is not und,gen, und or gen", s);
        if (p[n] == '\0') break;
        p += n + 1;
    }
    *out = mask;
    return 0;
}

/* One flag's value into c. */
static int apply_opt(struct train_config *c, int opt, const char *flag, const char *a, struct dsr_err *err) {
    long l;
    double timeout_s;
    switch (opt) {
    case OPT_IMAGES: c->images_dir = a; return 0;
    case OPT_PROMPTS: c->prompts_file = a; return 0;
    case OPT_SERVER:
        if (c->n_servers >= TRAIN_MAX_SERVERS) return dsr_errf(err, "--server: at most %d", TRAIN_MAX_SERVERS);
        c->servers[c->n_servers++] = a;
        return 0;
    case OPT_LEARNER: c->learner = a; return 0;
    case OPT_API_KEY: c->api_key = a; return 0;
    case OPT_ADMIN_KEY: c->admin_key = a; return 0;
    case OPT_BATCH_IMAGES: return parse_int(flag, a, 0, TRAIN_MAX_GROUPS, &c->batch_images, err);
    case OPT_BATCH_PROMPTS: return parse_int(flag, a, 0, TRAIN_MAX_GROUPS, &c->batch_prompts, err);
    case OPT_GROUP_SIZE: return parse_int(flag, a, 2, TRAIN_MAX_GROUP_SIZE, &c->group_size, err);
    case OPT_STEPS: return parse_long(flag, a, 0, 100000000L, &c->steps, err);
    case OPT_ALGORITHM:
        if (strcmp(a, "grpo") == 0) c->algorithm = ALGO_GRPO;
        else if (strcmp(a, "simpo") == 0) c->algorithm = ALGO_SIMPO;
        else return dsr_errf(err, "--algorithm: '%s' is not grpo or simpo", a);
        return 0;
    case OPT_SCALE:
        if (scale_rewards_parse(a, &c->scale) != 0)
            return dsr_errf(err, "--scale-rewards: '%s' is not group, batch or none", a);
        return 0;
    case OPT_LOSS_TYPE:
        if (!is_loss_type(a)) return dsr_errf(err, "--loss-type: '%s' is not grpo, dapo, bnpo or dr_grpo", a);
        c->loss_type = a;
        return 0;
    case OPT_EPSILON: return parse_double(flag, a, 0, 10, &c->epsilon, err);
    case OPT_EPSILON_HIGH: return parse_double(flag, a, 0, 10, &c->epsilon_high, err);
    case OPT_BETA: return parse_double(flag, a, 0, 1e6, &c->beta, err);
    case OPT_SIMPO_BETA: return parse_double(flag, a, 0, 1e6, &c->simpo_beta, err);
    case OPT_SIMPO_GAMMA: return parse_double(flag, a, -1e6, 1e6, &c->simpo_gamma, err);
    case OPT_LR: return parse_double(flag, a, 0, 10, &c->lr, err);
    case OPT_WEIGHT_DECAY: return parse_double(flag, a, 0, 10, &c->weight_decay, err);
    case OPT_MAX_GRAD_NORM: return parse_double(flag, a, 0, 1e12, &c->max_grad_norm, err);
    case OPT_QUESTION: c->question = a; return 0;
    case OPT_MAX_TOKENS: return parse_int(flag, a, 1, 4096, &c->max_tokens, err);
    case OPT_TEMPERATURE: return parse_double(flag, a, 0, 100, &c->temperature, err);
    case OPT_TOP_K: return parse_int(flag, a, 0, 1000000, &c->top_k, err);
    case OPT_TOP_P: return parse_double(flag, a, 0, 1, &c->top_p, err);
    case OPT_CFG: return parse_double(flag, a, 0, 1000, &c->cfg_scale, err);
    case OPT_SEED:
        if (parse_long(flag, a, 0, 2147483647L, &l, err) != 0) return -1;
        c->seed = (uint64_t)l;
        return 0;
    case OPT_LOG: c->log_path = a; return 0;
    case OPT_STATE: c->state_path = a; return 0;
    case OPT_RESUME: c->resume = 1; return 0;
    case OPT_CKPT_EVERY: return parse_long(flag, a, 0, 100000000L, &c->checkpoint_every, err);
    case OPT_DRY_RUN: c->dry_run = 1; return 0;
    case OPT_RETRIES: return parse_int(flag, a, 1, 1000, &c->retry.max_attempts, err);
    case OPT_RETRY_DELAY: return parse_double(flag, a, 0, 3600, &c->retry.base_delay_s, err);
    case OPT_RETRY_MAX_DELAY: return parse_double(flag, a, 0, 3600, &c->retry.max_delay_s, err);
    case OPT_RETRY_MAX_TIME: return parse_double(flag, a, 0, 86400, &c->retry.max_total_s, err);
    case OPT_DIRECTIONS: return parse_directions(a, &c->directions, err);
    case OPT_REWARD:
        if (strcmp(a, "self") == 0) c->reward = REWARD_SELF;
        else if (strcmp(a, "shuffled") == 0) c->reward = REWARD_SHUFFLED;
        else if (strcmp(a, "command") == 0) c->reward = REWARD_COMMAND;
        else return dsr_errf(err, "--reward: '%s' is not self, shuffled or command", a);
        return 0;
    case OPT_REWARD_CMD: c->reward_cmd = a; return 0;
    case OPT_NO_SELF_SCORE: c->self_score = 0; return 0;
    case OPT_EVAL_CMD: c->eval_cmd = a; return 0;
    case OPT_EVAL_EVERY: return parse_long(flag, a, 0, 100000000L, &c->eval_every, err);
    case OPT_TIMEOUT:
        if (parse_double(flag, a, 0.001, 86400, &timeout_s, err) != 0) return -1;
        c->timeout_ms = (long)(timeout_s * 1000.0);
        return 0;
    }
    return dsr_errf(err, "unknown option");
}

int train_config_parse(struct train_config *c, int argc, char **argv, FILE *help_out, struct dsr_err *err) {
    optind = 1;
    opterr = 0;
    for (;;) {
        int idx = -1;
        int opt = getopt_long(argc, argv, "h", LONG_OPTS, &idx);
        if (opt == -1) break;
        if (opt == 'h') {
            train_config_usage(help_out);
            return 1;
        }
        if (opt == OPT_VERSION) {
            fprintf(help_out, "dsr-train %s (commit %s)\n", dsr_version(), dsr_commit());
            return 1;
        }
        if (opt == '?' || opt == ':') {
            const char *bad = argv[optind - 1];
            return dsr_errf(err, "%s: unknown option or missing value (see --help)", bad ? bad : "?");
        }
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", idx >= 0 ? LONG_OPTS[idx].name : "?");
        if (apply_opt(c, opt, flag, optarg, err) != 0) return -1;
    }
    if (optind < argc) return dsr_errf(err, "unexpected argument '%s' (see --help)", argv[optind]);

    if (c->n_servers == 0) {
        const char *env = getenv("DSR_SERVER");
        c->servers[c->n_servers++] = env && env[0] ? env : "http://127.0.0.1:8080";
    }
    if (!c->learner) c->learner = c->servers[0];
    if (!c->api_key) c->api_key = getenv("DSR_API_KEY");
    if (!c->admin_key) c->admin_key = getenv("DSR_ADMIN_KEY");
    if (!c->images_dir && !c->prompts_file) return dsr_errf(err, "give --images DIR and/or --prompts FILE");
    if (c->directions) {
        if ((c->directions & DIR_UND) && !c->images_dir)
            return dsr_errf(err, "--directions: und needs understanding data (--images DIR)");
        if ((c->directions & DIR_GEN) && !c->prompts_file)
            return dsr_errf(err, "--directions: gen needs generation data (--prompts FILE)");
        if ((c->directions & DIR_UND) && c->batch_images == 0)
            return dsr_errf(err, "--directions: und with --batch-images 0");
        if ((c->directions & DIR_GEN) && c->batch_prompts == 0)
            return dsr_errf(err, "--directions: gen with --batch-prompts 0");
    } else {
        c->directions = (c->images_dir ? DIR_UND : 0u) | (c->prompts_file ? DIR_GEN : 0u);
    }
    if (!(c->directions & DIR_UND)) c->batch_images = 0;
    if (!(c->directions & DIR_GEN)) c->batch_prompts = 0;
    if (c->batch_images == 0) c->directions &= ~DIR_UND;
    if (c->batch_prompts == 0) c->directions &= ~DIR_GEN;
    if (c->batch_images + c->batch_prompts == 0) return dsr_errf(err, "--batch-images and --batch-prompts are both 0");
    if (c->batch_images + c->batch_prompts > TRAIN_MAX_GROUPS)
        return dsr_errf(err, "at most %d groups per step (--batch-images + --batch-prompts)", TRAIN_MAX_GROUPS);
    if ((c->reward_cmd && !c->reward_cmd[0]) || (c->eval_cmd && !c->eval_cmd[0]))
        return dsr_errf(err, "%s: empty command", c->reward_cmd && !c->reward_cmd[0] ? "--reward-cmd" : "--eval-cmd");
    if (c->reward == REWARD_COMMAND && !c->reward_cmd) return dsr_errf(err, "--reward command needs --reward-cmd \"CMD\"");
    if (c->reward != REWARD_COMMAND && c->reward_cmd) return dsr_errf(err, "--reward-cmd needs --reward command");
    if (c->reward != REWARD_COMMAND && !c->self_score)
        return dsr_errf(err, "--no-self-score needs --reward command (the self-reward is the reward)");
    if (c->eval_every > 0 && !c->eval_cmd) return dsr_errf(err, "--eval-every needs --eval-cmd \"CMD\"");
    if (c->epsilon_high < 0) c->epsilon_high = c->epsilon;
    if (c->epsilon_high < c->epsilon) return dsr_errf(err, "--epsilon-high must be >= --epsilon");
    return 0;
}
