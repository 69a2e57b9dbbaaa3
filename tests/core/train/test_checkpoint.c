/* Checkpoints: config.json round trip, write → reload gives identical
 * log-probs and optimizer state, tampered or mismatched checkpoints are
 * rejected naming the tensor (model unchanged), failed writes leave nothing. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/checkpoint.h"
#include "harness.h"
#include "model/janus_model.h"
#include "io/model_config_write.h"
#include "io/safetensors_write.h"
#include "janus/teacher_forcing.h"

#define TINY "tests/fixtures/janus-tiny"

/* A fresh scratch directory under /tmp (removed by cleanup()). */
static void make_scratch(char *dir, size_t len) {
    snprintf(dir, len, "/tmp/dsr_ckpt_XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_config_roundtrip(struct th *t) {
    struct janus_config a, b;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_config_load(TINY "/config.json", &a, &err) == 0, "%s", err.msg)) return;
    /* exercise fields the fixture leaves at defaults */
    a.boi_token_id = 259;
    a.eoi_token_id = 260;
    a.vision.intermediate_size = 4304 * a.vision.hidden_size / 1152; /* a ratio float cannot hold exactly */
    a.text.rms_norm_eps = 1e-5f;
    a.text.rope_theta = 500000.0f;
    char *json = janus_config_to_json(&a, &err);
    if (!TH_CHECK(t, json != NULL, "%s", err.msg)) return;
    TH_CHECK(t, janus_config_parse(json, strlen(json), &b, &err) == 0, "parse back: %s", err.msg);
    TH_CHECK(t, memcmp(&a, &b, sizeof a) == 0, "config changed in the round trip:\n%s", json);
    free(json);
}

/* log-probs of a fixed text item and image item */
static int item_logprobs(const struct janus_model *m, float *lp, struct dsr_err *err) {
    static const int32_t ctx[] = {256, 10, 11, 12}, tgt[] = {40, 41, 42, 43, 44};
    static const int32_t gctx[] = {256, 30, 31, 32, 259}, codes[] = {3, 17, 95, 0, 44, 44};
    struct tf_item items[2] = {
        {.context = ctx, .n_context = 4, .kind = TF_TARGET_TOKENS, .target = tgt, .n_target = 5},
        {.context = gctx, .n_context = 5, .kind = TF_TARGET_CODES, .target = codes, .n_target = 6},
    };
    return tf_logprobs(m, items, 2, lp, err);
}

static void test_write_reload(struct th *t) {
    char scratch[64], dir[128];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    snprintf(dir, sizeof dir, "%s/step-1", scratch);
    struct janus_model a, b;
    struct trainer ta, tb;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &a, &err) == 0 && janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &b, &err) == 0, "%s",
                  err.msg))
        return;
    TH_CHECK(t, trainer_init(&ta, &a, 0, &err) == 0 && trainer_init(&tb, &b, 0, &err) == 0, "%s", err.msg);
    /* move a's weights and optimizer state with one real step */
    int32_t ctx[3] = {256, 10, 11}, comp[4] = {50, 51, 52, 53};
    const float old[4] = {-5.5f, -5.9f, -5.6f, -5.8f};
    struct train_sample s = {.kind = TF_TARGET_TOKENS, .context = ctx, .n_context = 3, .completion = comp,
                             .n_completion = 4, .advantage = 1.0f, .old_logprobs = old};
    struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = 0.28f};
    struct adamw_hyper ah = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    struct train_stats st;
    TH_CHECK(t, trainer_grpo_backward(&ta, &a, &s, 1, &gh, &st, &err) == 0 && trainer_step(&ta, &a, &ah, &st, &err) == 0,
             "%s", err.msg);

    TH_CHECK(t, checkpoint_write(&a, &ta, dir, 7, TINY, NULL, 0, &err) == 0, "write: %s", err.msg);
    TH_CHECK(t, count_entries(scratch) == 1, "temporary files left beside the checkpoint");
    char path[256];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    TH_CHECK(t, access(path, R_OK) == 0, "generation_config.json not copied");
    TH_CHECK(t, checkpoint_write(&a, &ta, dir, 8, NULL, NULL, 0, &err) != 0 && strstr(err.msg, "exists"),
             "overwrote an existing checkpoint");

    long version = -1;
    TH_CHECK(t, checkpoint_load_weights(&b, dir, &version, &tb, &err) == 0, "reload: %s", err.msg);
    TH_CHECK(t, version == 7, "policy_version %ld", version);
    float la[11], lb[11];
    if (TH_CHECK(t, item_logprobs(&a, la, &err) == 0 && item_logprobs(&b, lb, &err) == 0, "%s", err.msg))
        TH_CHECK(t, memcmp(la, lb, sizeof la) == 0, "log-probs differ after reload");
    TH_CHECK(t, memcmp(a.params.trainable, b.params.trainable, a.params.n_trainable * sizeof(float)) == 0,
             "weights differ after reload");
    TH_CHECK(t, tb.step == 1 && memcmp(ta.adam_m, tb.adam_m, ta.n_params * sizeof(float)) == 0 &&
                    memcmp(ta.adam_v, tb.adam_v, ta.n_params * sizeof(float)) == 0,
             "optimizer state differs after reload (step %ld)", tb.step);

    /* the directory is also a loadable model */
    struct janus_model c;
    if (TH_CHECK(t, janus_model_load_dir(dir, JANUS_WEIGHTS_F32, NULL, &c, &err) == 0, "load as a model: %s", err.msg)) {
        TH_CHECK(t, memcmp(&c.cfg, &a.cfg, sizeof c.cfg) == 0, "config differs");
        janus_model_free(&c);
    }
    trainer_free(&ta);
    trainer_free(&tb);
    janus_model_free(&a);
    janus_model_free(&b);
    remove_tree(scratch);
}

static void test_rejects_mismatch(struct th *t) {
    char scratch[64], path[160];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    struct janus_model m;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "%s", err.msg)) return;
    float *before = malloc(m.params.n_trainable * sizeof(float));
    memcpy(before, m.params.trainable, m.params.n_trainable * sizeof(float));

    /* a checkpoint whose q_proj has the wrong shape */
    const char *victim = "model.language_model.layers.1.self_attn.q_proj.weight";
    struct st_out *out = malloc(m.params.n * sizeof *out);
    int64_t bad_shape[2] = {1, 0};
    for (size_t i = 0; i < m.params.n; i++) {
        const struct param *p = &m.params.items[i];
        out[i] = (struct st_out){p->name, p->ndim, p->shape, pt_data(&m.params, p), NULL};
        if (!strcmp(p->name, victim)) {
            bad_shape[1] = p->shape[0] * p->shape[1];
            out[i].shape = bad_shape;
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", scratch);
    TH_CHECK(t, st_write_f32(path, out, m.params.n, NULL, 0, &err) == 0, "%s", err.msg);
    TH_CHECK(t, checkpoint_load_weights(&m, scratch, NULL, NULL, &err) != 0 && strstr(err.msg, victim),
             "wrong shape accepted: %s", err.msg);
    /* and one that lacks a tensor */
    for (size_t i = 0; i < m.params.n; i++) out[i].shape = m.params.items[i].shape;
    unlink(path);
    TH_CHECK(t, st_write_f32(path, out, m.params.n - 1, NULL, 0, &err) == 0, "%s", err.msg);
    TH_CHECK(t, checkpoint_load_weights(&m, scratch, NULL, NULL, &err) != 0 &&
                    strstr(err.msg, m.params.items[m.params.n - 1].name),
             "missing tensor accepted: %s", err.msg);
    /* a corrupted file (truncated) */
    TH_CHECK(t, truncate(path, 1000) == 0, "truncate");
    TH_CHECK(t, checkpoint_load_weights(&m, scratch, NULL, NULL, &err) != 0, "truncated file accepted");
    TH_CHECK(t, memcmp(before, m.params.trainable, m.params.n_trainable * sizeof(float)) == 0,
             "a rejected checkpoint changed the model");
    free(out);
    free(before);
    janus_model_free(&m);
    remove_tree(scratch);
}

static void test_failed_write_leaves_nothing(struct th *t) {
    char scratch[64], dir[160];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    struct janus_model m;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "%s", err.msg)) return;
    /* unwritable parent */
    snprintf(dir, sizeof dir, "%s/ro", scratch);
    mkdir(dir, 0500);
    snprintf(dir, sizeof dir, "%s/ro/step-1", scratch);
    int rc = checkpoint_write(&m, NULL, dir, 1, NULL, NULL, 0, &err);
    if (geteuid() != 0) TH_CHECK(t, rc != 0 && err.msg[0], "write into a read-only directory succeeded");
    if (rc != 0) {
        snprintf(dir, sizeof dir, "%s/ro", scratch);
        TH_CHECK(t, count_entries(dir) == 0, "partial checkpoint left behind");
    }
    chmod(dir, 0700);
    /* a failure midway, after config.json and model.safetensors are written:
     * the source's tokenizer.json is a directory, so copying it fails */
    char src[160];
    snprintf(src, sizeof src, "%s/src", scratch);
    mkdir(src, 0700);
    snprintf(dir, sizeof dir, "%s/src/tokenizer.json", scratch);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/step-2", scratch);
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 1, src, NULL, 0, &err) != 0, "copying a directory succeeded");
    TH_CHECK(t, count_entries(scratch) == 2, "debris after a failed write (%d entries)", count_entries(scratch));
    snprintf(dir, sizeof dir, "%s/missing/step-1", scratch);
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 1, NULL, NULL, 0, &err) != 0, "write under a missing parent succeeded");
    TH_CHECK(t, count_entries(scratch) == 2, "debris in the scratch directory");
    janus_model_free(&m);
    remove_tree(scratch);
}

/* A checkpoint left half-written (a crash between mkdtemp and rename) is
 * unmistakable: a directory named CHECKPOINT_PARTIAL_PREFIX..., with a
 * marker file inside until the very end.  Neither is ever loaded, and
 * checkpoint_remove_partials() deletes them, except one a live writer
 * still holds (flock), and never a complete checkpoint. */
static void test_partials(struct th *t) {
    char scratch[64], dir[96], partial[128], marked[96], held[128], path[1024];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    struct janus_model m;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "%s", err.msg)) return;
    snprintf(dir, sizeof dir, "%s/step-1", scratch);
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 3, NULL, NULL, 0, &err) == 0, "write: %s", err.msg);
    /* complete contents under a partial name, and under a normal name with the marker */
    snprintf(partial, sizeof partial, "%s/" CHECKPOINT_PARTIAL_PREFIX "step-2.a1b2c3", scratch);
    snprintf(marked, sizeof marked, "%s/step-3", scratch);
    snprintf(held, sizeof held, "%s/" CHECKPOINT_PARTIAL_PREFIX "step-4.d4e5f6", scratch);
    snprintf(path, sizeof path, "cp -r %s %s && cp -r %s %s && cp -r %s %s", dir, partial, dir, marked, dir, held);
    TH_CHECK(t, system(path) == 0, "%s", path);
    snprintf(path, sizeof path, "%s/" CHECKPOINT_PARTIAL_MARKER, marked);
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    long v = -1;
    TH_CHECK(t, checkpoint_load_weights(&m, dir, &v, NULL, &err) == 0 && v == 3, "complete: %s", err.msg);
    TH_CHECK(t, checkpoint_load_weights(&m, partial, &v, NULL, &err) != 0 && strstr(err.msg, "partial"),
             "a partial directory loaded: %s", err.msg);
    TH_CHECK(t, checkpoint_load_weights(&m, marked, &v, NULL, &err) != 0 && strstr(err.msg, "partial"),
             "a directory with the partial marker loaded: %s", err.msg);
    /* held by a live writer: kept */
    int fd = open(held, O_RDONLY | O_DIRECTORY);
    TH_CHECK(t, fd >= 0 && flock(fd, LOCK_EX) == 0, "lock %s", held);
    int removed = -1;
    TH_CHECK(t, checkpoint_remove_partials(scratch, &removed, &err) == 0 && removed == 1, "removed %d: %s", removed,
             err.msg);
    TH_CHECK(t, access(partial, F_OK) != 0 && access(held, F_OK) == 0 && access(dir, F_OK) == 0 &&
                    access(marked, F_OK) == 0,
             "removed exactly the unheld partial directory");
    if (fd >= 0) close(fd);
    TH_CHECK(t, checkpoint_remove_partials(scratch, &removed, &err) == 0 && removed == 1 && access(held, F_OK) != 0,
             "released: removed %d", removed);
    janus_model_free(&m);
    remove_tree(scratch);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "config_roundtrip", test_config_roundtrip);
    th_run(&t, "write_reload", test_write_reload);
    th_run(&t, "rejects_mismatch", test_rejects_mismatch);
    th_run(&t, "failed_write_leaves_nothing", test_failed_write_leaves_nothing);
    th_run(&t, "partials", test_partials);
    return th_finish(&t, "test_checkpoint");
}
