/* Checkpoints: config.json round trip, write → reload gives identical
 * log-probs and optimizer state, tampered or mismatched checkpoints are
 * rejected naming the tensor (model unchanged), failed writes leave nothing;
 * LoRA runs write PEFT adapter directories that reload bit-identically,
 * refuse adapters of other settings or bases, and merge into a full
 * checkpoint with the adapted model's log-probs. */
#include <dirent.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/checkpoint.h"
#include "train/adapter.h"
#include <jansson.h>
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

/* A trainer for m and one real GRPO step (moves the weights, or the
 * adapters, and the optimizer moments). */
static int one_step(struct th *t, struct janus_model *m, struct trainer *tr) {
    struct dsr_err err;
    int32_t ctx[3] = {256, 10, 11}, comp[4] = {50, 51, 52, 53};
    const float old[4] = {-5.5f, -5.9f, -5.6f, -5.8f};
    struct train_sample s = {.kind = TF_TARGET_TOKENS, .context = ctx, .n_context = 3, .completion = comp,
                             .n_completion = 4, .advantage = 1.0f, .old_logprobs = old};
    struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = 0.28f};
    struct adamw_hyper ah = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    struct train_stats st;
    return TH_CHECK(t, trainer_init(tr, m, 0, &err) == 0 && trainer_grpo_backward(tr, m, &s, 1, &gh, &st, &err) == 0 &&
                           trainer_step(tr, m, &ah, &st, &err) == 0,
                    "step: %s", err.msg)
               ? 0
               : -1;
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
    TH_CHECK(t, trainer_init(&tb, &b, 0, &err) == 0, "%s", err.msg);
    one_step(t, &a, &ta); /* moves a's weights and optimizer state */

    TH_CHECK(t, checkpoint_write(&a, &ta, dir, 7, TINY, NULL, NULL, 0, &err) == 0, "write: %s", err.msg);
    TH_CHECK(t, count_entries(scratch) == 1, "temporary files left beside the checkpoint");
    char path[256];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    TH_CHECK(t, access(path, R_OK) == 0, "generation_config.json not copied");
    TH_CHECK(t, checkpoint_write(&a, &ta, dir, 8, NULL, NULL, NULL, 0, &err) != 0 && strstr(err.msg, "exists"),
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
    int rc = checkpoint_write(&m, NULL, dir, 1, NULL, NULL, NULL, 0, &err);
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
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 1, src, NULL, NULL, 0, &err) != 0, "copying a directory succeeded");
    TH_CHECK(t, count_entries(scratch) == 2, "debris after a failed write (%d entries)", count_entries(scratch));
    snprintf(dir, sizeof dir, "%s/missing/step-1", scratch);
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 1, NULL, NULL, NULL, 0, &err) != 0, "write under a missing parent succeeded");
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
    TH_CHECK(t, checkpoint_write(&m, NULL, dir, 3, NULL, NULL, NULL, 0, &err) == 0, "write: %s", err.msg);
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

static const struct lora_config LORA4 = {.rank = 4, .alpha = 16.0f, .targets = LORA_EVERY_TARGET};

static void test_adapter_roundtrip(struct th *t) {
    char scratch[64], dir[128], path[256];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    snprintf(dir, sizeof dir, "%s/adapter-1", scratch);
    struct janus_model a, b;
    struct trainer ta, tb;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, &LORA4, &a, &err) == 0 &&
                         janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, &LORA4, &b, &err) == 0,
                  "%s", err.msg))
        return;
    if (one_step(t, &a, &ta) || one_step(t, &b, &tb)) goto out; /* b's adapters and moments differ from a's */
    TH_CHECK(t, checkpoint_write(&a, &ta, dir, 5, TINY, "deepseek-ai/Janus-Pro-1B", NULL, 0, &err) == 0, "write: %s",
             err.msg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    TH_CHECK(t, access(path, F_OK) != 0, "an adapter checkpoint should not hold the base weights");
    snprintf(path, sizeof path, "%s/" ADAPTER_CONFIG_FILE, dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    if (TH_CHECK(t, cfg != NULL, "no adapter_config.json")) {
        TH_CHECK(t, !strcmp(json_string_value(json_object_get(cfg, "peft_type")), "LORA") &&
                        json_integer_value(json_object_get(cfg, "r")) == 4 &&
                        json_number_value(json_object_get(cfg, "lora_alpha")) == 16.0 &&
                        !strcmp(json_string_value(json_object_get(cfg, "base_model_name_or_path")),
                                "deepseek-ai/Janus-Pro-1B"),
                 "adapter_config.json fields");
        const char *tm = json_string_value(json_object_get(cfg, "target_modules"));
        TH_CHECK(t, tm && !strcmp(tm, "model\\.language_model\\.layers\\.\\d+\\.(self_attn|mlp)\\."
                                      "(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
                                      "|model\\.generation_head\\.(proj_out|vision_head)"
                                      "|model\\.aligner\\.(fc1|hidden_layers\\.\\d+)"
                                      "|model\\.generation_aligner\\.(fc1|hidden_layers\\.\\d+)"),
                 "target_modules %s", tm ? tm : "(none)");
        json_decref(cfg);
    }
    snprintf(path, sizeof path, "%s/" ADAPTER_WEIGHTS_FILE, dir);
    struct st_file *f = NULL;
    if (TH_CHECK(t, st_open(path, &f, &err) == 0, "%s", err.msg)) {
        TH_CHECK(t, f->n_tensors == 40,
                 "%zu tensors (want (2 layers × 7 projections + 2 head linears + 2 × 2 aligner linears) × A, B)",
                 f->n_tensors);
        const struct st_tensor *al = st_find(f, "base_model.model.model.generation_aligner.fc1.lora_A.weight");
        TH_CHECK(t, al && al->shape[0] == 4 && al->shape[1] == 8, "PEFT name and shape of the generation aligner "
                 "fc1's A");
        const struct st_tensor *h = st_find(f, "base_model.model.model.generation_head.vision_head.lora_B.weight");
        TH_CHECK(t, h && h->dtype == ST_F32 && h->shape[0] == 96 && h->shape[1] == 4, "PEFT name and shape of "
                 "vision_head's B");
        const struct st_tensor *q = st_find(f, "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight");
        TH_CHECK(t, q && q->dtype == ST_F32 && q->shape[0] == 4 && q->shape[1] == 64, "PEFT name and shape of q_proj's A");
        st_close(f);
    }
    long version = 0;
    TH_CHECK(t, checkpoint_load_weights(&b, dir, &version, &tb, &err) == 0 && version == 5, "reload: %s", err.msg);
    TH_CHECK(t, memcmp(a.params.trainable, b.params.trainable, a.params.n_trainable * sizeof(float)) == 0,
             "adapters differ after the round trip");
    TH_CHECK(t, tb.step == ta.step && memcmp(ta.adam_m, tb.adam_m, ta.n_params * sizeof(float)) == 0 &&
                    memcmp(ta.adam_v, tb.adam_v, ta.n_params * sizeof(float)) == 0,
             "optimizer state differs after the round trip");
    float la[11], lb[11];
    if (TH_CHECK(t, item_logprobs(&a, la, &err) == 0 && item_logprobs(&b, lb, &err) == 0, "%s", err.msg))
        TH_CHECK(t, memcmp(la, lb, sizeof la) == 0, "log-probs differ after the round trip");

    /* merged into the base and written as a full checkpoint: the adapted model's log-probs */
    struct janus_model merged, reloaded;
    char full[160];
    snprintf(full, sizeof full, "%s/merged", scratch);
    if (TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &merged, &err) == 0, "%s", err.msg)) {
        TH_CHECK(t, adapter_merge(&merged, dir, &err) == 0, "merge: %s", err.msg);
        TH_CHECK(t, checkpoint_write(&merged, NULL, full, 5, TINY, NULL, NULL, 0, &err) == 0, "write: %s", err.msg);
        if (TH_CHECK(t, janus_model_load_dir(full, JANUS_WEIGHTS_F32, NULL, &reloaded, &err) == 0, "%s", err.msg)) {
            float lm[11];
            TH_CHECK(t, item_logprobs(&reloaded, lm, &err) == 0, "%s", err.msg);
            TH_CLOSE(t, "merged checkpoint's log-probs vs the adapter model's", lm, la, 11, 1e-4);
            float base[11];
            struct janus_model plain;
            if (janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &plain, &err) == 0) {
                item_logprobs(&plain, base, &err);
                double moved = 0;
                for (int i = 0; i < 11; i++) moved = fmax(moved, fabs(base[i] - la[i]));
                TH_CHECK(t, moved > 1e-3, "the trained adapter should change log-probs (moved %.3g)", moved);
                janus_model_free(&plain);
            }
            janus_model_free(&reloaded);
        }
        janus_model_free(&merged);
    }
    trainer_free(&ta);
    trainer_free(&tb);
out:
    janus_model_free(&a);
    janus_model_free(&b);
    remove_tree(scratch);
}

/* Adapters of other settings, another base, or the wrong kind of directory
 * are refused naming the cause, and nothing changes. */
static void test_adapter_rejects(struct th *t) {
    char scratch[64], ad4[128], ad8[128], other[128], full[128];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    snprintf(ad4, sizeof ad4, "%s/r4", scratch);
    snprintf(ad8, sizeof ad8, "%s/r8", scratch);
    snprintf(other, sizeof other, "%s/other-base", scratch);
    snprintf(full, sizeof full, "%s/full", scratch);
    struct lora_config r8 = LORA4;
    r8.rank = 8;
    struct janus_model m4, m8, plain, wide;
    struct dsr_err err;
    struct janus_config wcfg;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, &LORA4, &m4, &err) == 0 &&
                         janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, &r8, &m8, &err) == 0 &&
                         janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &plain, &err) == 0 &&
                         janus_config_load(TINY "/config.json", &wcfg, &err) == 0,
                  "%s", err.msg))
        return;
    wcfg.text.intermediate_size = 96; /* another base: the MLP adapters' shapes differ */
    if (!TH_CHECK(t, janus_model_init_random(&wcfg, 3, JANUS_WEIGHTS_F32, &LORA4, &wide, &err) == 0, "%s", err.msg))
        return;
    TH_CHECK(t, checkpoint_write(&m4, NULL, ad4, 1, NULL, NULL, NULL, 0, &err) == 0 &&
                    checkpoint_write(&m8, NULL, ad8, 1, NULL, NULL, NULL, 0, &err) == 0 &&
                    checkpoint_write(&wide, NULL, other, 1, NULL, NULL, NULL, 0, &err) == 0 &&
                    checkpoint_write(&plain, NULL, full, 1, NULL, NULL, NULL, 0, &err) == 0,
             "write: %s", err.msg);
    float *before = malloc(m4.params.n_trainable * sizeof(float));
    memcpy(before, m4.params.trainable, m4.params.n_trainable * sizeof(float));
    const struct {
        struct janus_model *m;
        const char *dir, *needle;
    } cases[] = {
        {&m4, ad8, "adapter rank r=8, the model's adapters have rank 4"},
        {&m4, full, "reloads adapter directories"},
        {&plain, ad4, "is a LoRA adapter"},
        {&m4, other, "mlp.gate_proj.lora_B.weight has a different shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = checkpoint_load_weights(cases[i].m, cases[i].dir, NULL, NULL, &err);
        TH_CHECK(t, rc != 0 && strstr(err.msg, cases[i].needle), "case %zu: rc %d, '%s' (want '%s')", i, rc,
                 rc ? err.msg : "", cases[i].needle);
    }
    TH_CHECK(t, memcmp(before, m4.params.trainable, m4.params.n_trainable * sizeof(float)) == 0,
             "a refused adapter changed the model");
    /* merge refuses an adapter whose shapes are another base's, before changing anything */
    float lp0[11], lp1[11];
    item_logprobs(&plain, lp0, &err);
    int rc = adapter_merge(&plain, other, &err);
    TH_CHECK(t, rc != 0 && strstr(err.msg, "mlp.gate_proj.lora_B.weight has shape [96, 4], the base model implies "
                                           "[128, 4]"),
             "merge of another base's adapter: %s", rc ? err.msg : "accepted");
    item_logprobs(&plain, lp1, &err);
    TH_CHECK(t, memcmp(lp0, lp1, sizeof lp0) == 0, "a refused merge changed the base");
    free(before);
    janus_model_free(&m4);
    janus_model_free(&m8);
    janus_model_free(&plain);
    janus_model_free(&wide);
    remove_tree(scratch);
}

/* adapter_config.json as PEFT writes it in its several forms: what dsr
 * adapts is read back, anything else is refused naming the field. */
static void test_adapter_config_forms(struct th *t) {
    char scratch[64], path[160];
    make_scratch(scratch, sizeof scratch);
    if (!TH_CHECK(t, scratch[0], "mkdtemp failed")) return;
    struct dsr_err err;
    /* what dsr writes reads back as the same settings */
    struct lora_config head_only = {.rank = 8, .alpha = 16, .targets = 1u << LORA_GEN_VISION_HEAD}, back;
    const struct lora_config *written[] = {&LORA4, &head_only};
    for (size_t i = 0; i < 2; i++) {
        char *text = adapter_config_json(written[i], "base", &err);
        snprintf(path, sizeof path, "%s/" ADAPTER_CONFIG_FILE, scratch);
        FILE *f = fopen(path, "w");
        if (!TH_CHECK(t, text && f, "write config")) {
            free(text);
            if (f) fclose(f);
            continue;
        }
        fputs(text, f);
        fclose(f);
        free(text);
        TH_CHECK(t, adapter_config_read(scratch, &back, NULL, 0, &err) == 0 && back.rank == written[i]->rank &&
                        back.alpha == written[i]->alpha && back.targets == written[i]->targets,
                 "config %zu: read back 0x%x (want 0x%x): %s", i, back.targets, written[i]->targets, err.msg);
    }
    const struct {
        const char *extra; /* fields after peft_type, r and lora_alpha */
        unsigned targets;  /* 0: refused */
        const char *needle;
    } cases[] = {
        {"\"target_modules\": [\"q_proj\", \"v_proj\"]", (1u << LORA_Q) | (1u << LORA_V), NULL},
        {"\"target_modules\": [\"down_proj\", \"generation_head.proj_out\"]",
         (1u << LORA_DOWN) | (1u << LORA_GEN_PROJ_OUT), NULL},
        {"\"target_modules\": \"model\\\\.generation_head\\\\.vision_head\"", 1u << LORA_GEN_VISION_HEAD, NULL},
        {"\"target_modules\": \"model\\\\.aligner\\\\.(fc1|hidden_layers\\\\.\\\\d+)\"", 1u << LORA_UND_ALIGNER,
         NULL},
        {"\"target_modules\": [\"generation_aligner\", \"q_proj\"]", (1u << LORA_GEN_ALIGNER) | (1u << LORA_Q), NULL},
        {"\"target_modules\": [\"proj_out\"]", 0, "target_modules[0]: \"proj_out\" is not a module dsr adapts"},
        {"\"target_modules\": \"model\\\\.vision_model\\\\..*\\\\.q_proj\"", 0, "adapts modules dsr does not"},
        {"\"target_modules\": [\"q_proj\"], \"use_dora\": true", 0, "use_dora"},
        {"\"target_modules\": [\"q_proj\"], \"bias\": \"all\"", 0, "bias"},
        {"\"target_modules\": [\"q_proj\"], \"modules_to_save\": [\"lm_head\"]", 0, "modules_to_save"},
        {"\"target_modules\": 7", 0, "target_modules: must be a list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/" ADAPTER_CONFIG_FILE, scratch);
        FILE *f = fopen(path, "w");
        if (!TH_CHECK(t, f != NULL, "write config")) continue;
        fprintf(f, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, %s}", cases[i].extra);
        fclose(f);
        struct lora_config got;
        int rc = adapter_config_read(scratch, &got, NULL, 0, &err);
        if (cases[i].targets)
            TH_CHECK(t, rc == 0 && got.targets == cases[i].targets, "case %zu: rc %d targets 0x%x (want 0x%x): %s",
                     i, rc, rc ? 0 : got.targets, cases[i].targets, rc ? err.msg : "");
        else
            TH_CHECK(t, rc != 0 && strstr(err.msg, cases[i].needle), "case %zu: rc %d, '%s' (want '%s')", i, rc,
                     rc ? err.msg : "", cases[i].needle);
    }
    remove_tree(scratch);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "config_roundtrip", test_config_roundtrip);
    th_run(&t, "write_reload", test_write_reload);
    th_run(&t, "rejects_mismatch", test_rejects_mismatch);
    th_run(&t, "failed_write_leaves_nothing", test_failed_write_leaves_nothing);
    th_run(&t, "partials", test_partials);
    th_run(&t, "adapter_roundtrip", test_adapter_roundtrip);
    th_run(&t, "adapter_rejects", test_adapter_rejects);
    th_run(&t, "adapter_config_forms", test_adapter_config_forms);
    return th_finish(&t, "test_checkpoint");
}
