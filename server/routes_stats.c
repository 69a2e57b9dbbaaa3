/* GET /stats: the learner's recent history (train_history.h) as JSON, for
 * the web page's training view and any dashboard. */
#include <stdlib.h>

#include "routes.h"

/* {"rollouts": n, "reward_mean": m, "reward_min": lo, "reward_max": hi};
 * the reward fields are null when no scored rollout was served. */
static json_t *tally_json(const struct reward_tally *t) {
    bool any = t->count > 0;
    return json_pack("{s:I,s:o,s:o,s:o}", "rollouts", (json_int_t)t->count, "reward_mean",
                     any ? json_real(t->sum / (double)t->count) : json_null(), "reward_min",
                     any ? json_real(t->min) : json_null(), "reward_max", any ? json_real(t->max) : json_null());
}

static json_t *update_json(const struct history_update *u) {
    return json_pack("{s:I,s:f,s:s,s:i,s:f,s:f,s:f,s:f,s:I,s:o,s:o}", "policy_version", (json_int_t)u->policy_version,
                     "time", u->time, "algorithm", u->simpo ? "simpo" : "grpo", "samples", u->samples, "loss",
                     u->stats.loss, "kl", u->stats.kl, "clip_fraction", u->stats.clip_fraction, "grad_norm",
                     u->stats.grad_norm, "tokens", (json_int_t)u->stats.tokens, "und", tally_json(&u->und), "gen",
                     tally_json(&u->gen));
}

void route_stats(struct server *s, const struct request *rq, struct reply *out) {
    (void)rq;
    struct janus_runtime *rt = route_runtime(s, out);
    if (!rt) return;
    struct history_snapshot h;
    if (history_snapshot(&s->worker.history, &h)) {
        reply_errorf(out, 500, NULL, "out of memory copying the stats history");
        return;
    }
    json_t *updates = json_array();
    for (int i = 0; updates && i < h.n; i++)
        if (json_array_append_new(updates, update_json(&h.updates[i]))) {
            json_decref(updates);
            updates = NULL;
        }
    free(h.updates);
    /* the version is read after the copy: never behind the last update listed */
    json_t *o = updates ? json_pack("{s:o,s:i,s:I,s:{s:o,s:o},s:{s:I,s:I},s:s,s:I}", "updates", updates, "capacity",
                                    h.capacity, "updates_recorded", (json_int_t)h.recorded, "since_last_update", "und",
                                    tally_json(&h.und), "gen", tally_json(&h.gen), "rollouts_total", "und",
                                    (json_int_t)h.und_total, "gen", (json_int_t)h.gen_total, "model", rt->name,
                                    "policy_version", (json_int_t)atomic_load(&s->worker.policy_version))
                        : NULL;
    reply_json(out, 200, o);
}
