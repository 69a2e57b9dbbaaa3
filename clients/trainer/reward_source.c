#include "reward_source.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "reward_shuffle.h"

int reward_env_open(struct reward_env *r, const struct train_config *cfg, struct dsr_err *err) {
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    if (cfg->reward != REWARD_COMMAND) return 0;
    if (cfg->directions & DIR_GEN) {
        const char *base = getenv("TMPDIR");
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/dsr-train-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(tmpl)) return dsr_errf(err, "cannot create a directory %s for generated images: %s", tmpl, strerror(errno));
        /* the grader gets absolute paths, whatever its working directory */
        if (!realpath(tmpl, r->tmpdir)) {
            int e = errno;
            rmdir(tmpl);
            return dsr_errf(err, "%s: %s", tmpl, strerror(e));
        }
    }
    double timeout_s = (double)cfg->timeout_ms / 1000.0;
    if (reward_cmd_start(&r->grader, cfg->reward_cmd, timeout_s, err) != 0) {
        reward_env_close(r);
        return -1;
    }
    r->grader_running = 1;
    return 0;
}

/* Writes the base64 PNG to path. */
static int write_png(const char *b64, const char *path, struct dsr_err *err) {
    uint8_t *png = NULL;
    size_t n = 0, bad_at;
    if (base64_decode(b64, strlen(b64), &png, &n, &bad_at) != 0)
        return dsr_errf(err, "the server's png is not base64 (offset %zu)", bad_at);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(png, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    free(png);
    if (!ok) {
        unlink(path);
        return dsr_errf(err, "cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

/* The grader's reward for rollout i of group g (group index gi). */
static int grade_one(struct reward_env *r, const struct group *g, int gi, int i, long step, double *reward,
                     struct dsr_err *err) {
    const json_t *ro = json_array_get(json_object_get(g->response, "rollouts"), (size_t)i);
    char path[PATH_MAX + 64];
    int rc;
    if (g->task == TASK_UNDERSTANDING) {
        if (!realpath(g->item, path)) return dsr_errf(err, "%s: %s", g->item, strerror(errno));
        rc = reward_cmd_ask(&r->grader, "understanding", path, json_string_value(json_object_get(ro, "text")), reward,
                            err);
    } else {
        snprintf(path, sizeof path, "%s/step%06ld-g%02d-r%02d.png", r->tmpdir, step, gi, i);
        if (write_png(json_string_value(json_object_get(ro, "png")), path, err) != 0) return -1;
        rc = reward_cmd_ask(&r->grader, "generation", path, g->item, reward, err);
        unlink(path);
    }
    return rc;
}

static int apply_command(struct reward_env *r, struct group *groups, int n_groups, long step, struct dsr_err *err) {
    int G = r->cfg->group_size;
    for (int gi = 0; gi < n_groups; gi++) {
        struct group *g = &groups[gi];
        for (int i = 0; i < G; i++) {
            if (grade_one(r, g, gi, i, step, &g->rewards[i], err) == 0) continue;
            if (g->task == TASK_UNDERSTANDING) {
                const json_t *ro = json_array_get(json_object_get(g->response, "rollouts"), (size_t)i);
                return dsr_err_prefix(err, "--reward-cmd: caption %d of %d for image '%.200s' (\"%.80s\")", i + 1, G,
                                      g->item, json_string_value(json_object_get(ro, "text")));
            }
            return dsr_err_prefix(err, "--reward-cmd: image %d of %d for prompt '%.200s'", i + 1, G, g->item);
        }
    }
    return 0;
}

int rewards_apply(struct reward_env *r, struct group *groups, int n_groups, long step, struct dsr_err *err) {
    switch (r->cfg->reward) {
    case REWARD_SELF: return 0;
    case REWARD_SHUFFLED:
        for (int gi = 0; gi < n_groups; gi++)
            reward_shuffle_group(groups[gi].rewards, r->cfg->group_size, r->cfg->seed, step, gi);
        return 0;
    case REWARD_COMMAND: return apply_command(r, groups, n_groups, step, err);
    }
    return dsr_errf(err, "unknown reward source");
}

void reward_env_close(struct reward_env *r) {
    if (r->grader_running) reward_cmd_stop(&r->grader);
    r->grader_running = 0;
    if (r->tmpdir[0]) rmdir(r->tmpdir); /* each image is removed once graded */
    r->tmpdir[0] = '\0';
}
