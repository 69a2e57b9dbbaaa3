/* Slow check (make test-slow): builds a Janus-Pro shape (1B or 7B) with
 * random weights in memory — no checkpoint file — and runs what a server
 * does with it, reporting each phase's time and the resident memory after
 * it (VmHWM: the peak so far), so a real checkpoint is known to fit:
 *   - one teacher-forced forward over N tokens (a /score's work);
 *   - --decode N: a greedy caption of N tokens after a short prompt, with a
 *     KV cache (the rollout phase);
 *   - --lora-rank R: a LoRA /update (rank R on the seven LM projections,
 *     base frozen) on --und understanding samples (576 image rows + 8
 *     prompt tokens, 24 caption targets) and --gen generation samples (32
 *     prompt tokens, 576 code targets), activations within --budget MiB
 *     (dsrd's default 4096).
 *
 * Usage: janus_pro_shape [--shape 1b|7b] [--weights-dtype f32|bf16] [--tokens N] [--decode N]
 *                        [--lora-rank R] [--und N] [--gen N] [--budget MIB] [--threads N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/rng.h"
#include "janus/teacher_forcing.h"
#include "model/janus_model.h"
#include "nn/ops.h"
#include "train/train.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A /proc/self/status value (VmRSS: now, VmHWM: peak), GiB. */
static double status_gib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) kb = atol(line + n);
    if (f) fclose(f);
    return (double)kb / (1024.0 * 1024.0);
}

/* deepseek-community/Janus-Pro-1B (and -7B) hyper-parameters. */
static void janus_pro(struct janus_config *c, int seven) {
    janus_config_defaults(c);
    c->text.vocab_size = 102400;
    c->text.hidden_size = seven ? 4096 : 2048;
    c->text.intermediate_size = seven ? 11008 : 5632;
    c->text.n_layers = seven ? 30 : 24;
    c->text.n_heads = c->text.n_kv_heads = seven ? 32 : 16;
    c->text.head_dim = 128;
    c->text.max_position_embeddings = 16384;
    c->text.bos_token_id = 100000;
    c->text.eos_token_id = 100001;
    c->text.pad_token_id = 100002;
    c->vision.projection_dim = c->vq.projection_dim = c->vq.image_token_embed_dim = c->text.hidden_size;
    c->vq.num_patches = 24;
    c->image_token_id = 100581;
}

static void phase(const char *what, double seconds) {
    printf("  %-44s %8.1f s   resident %.2f GiB, peak so far %.2f GiB\n", what, seconds, status_gib("VmRSS:"),
           status_gib("VmHWM:"));
    fflush(stdout);
}

static int forward(const struct janus_model *m, int n_tokens) {
    int32_t *ids = malloc((size_t)n_tokens * sizeof *ids);
    for (int i = 0; i < n_tokens; i++) ids[i] = (int32_t)((i * 7919u) % 100000u);
    struct tf_item it = {.context = ids, .n_context = n_tokens - 1, .kind = TF_TARGET_TOKENS,
                         .target = ids + n_tokens - 1, .n_target = 1};
    float lp = NAN;
    struct dsr_err err;
    double t0 = now_s();
    int rc = tf_logprobs(m, &it, 1, &lp, &err);
    double dt = now_s() - t0;
    free(ids);
    if (rc || !isfinite(lp)) {
        fprintf(stderr, "forward: %s\n", rc ? err.msg : "log-prob not finite");
        return -1;
    }
    const struct text_config *t = &m->cfg.text;
    double per_token = 2.0 * t->n_layers *
                       ((double)t->hidden_size * (t->n_heads + 2 * t->n_kv_heads) * t->head_dim +
                        (double)t->n_heads * t->head_dim * t->hidden_size + 3.0 * t->hidden_size * t->intermediate_size);
    double attn = 2.0 * 2.0 * t->n_layers * t->n_heads * t->head_dim * (double)n_tokens * n_tokens / 2;
    double gflop = (per_token * n_tokens + attn) / 1e9;
    char what[96];
    snprintf(what, sizeof what, "forward of %d tokens (%.0f GFLOP/s)", n_tokens, gflop / dt);
    phase(what, dt);
    return 0;
}

/* Greedy decode of n tokens after a 16-token prompt, one row per step. */
static int decode(const struct janus_model *m, int n) {
    const struct text_config *t = &m->cfg.text;
    struct kv_cache cache;
    struct dsr_err err;
    int prompt = 16, C = t->hidden_size, V = t->vocab_size;
    if (kv_cache_init(&cache, 1, t->n_layers, prompt + n, t->n_kv_heads, t->head_dim, KV_F32, &err)) {
        fprintf(stderr, "decode: %s\n", err.msg);
        return -1;
    }
    float *rows = malloc((size_t)prompt * C * sizeof(float)), *hidden = malloc((size_t)prompt * C * sizeof(float));
    float *logits = malloc((size_t)V * sizeof(float));
    int32_t ids[16], next = 0;
    for (int i = 0; i < prompt; i++) ids[i] = (int32_t)(100 + 37 * i);
    int rc = lm_embed_tokens(&m->lm, ids, prompt, rows, &err);
    struct lm_segment seg = {0, prompt};
    double t0 = now_s(), t_prefill = 0;
    for (int step = 0; step <= n && rc == 0; step++) {
        rc = lm_forward(&m->lm, &cache, &seg, 1, rows, hidden, &err) ||
             lm_logits(&m->lm, hidden + (size_t)(seg.n - 1) * C, 1, logits, &err);
        if (step == 0) t_prefill = now_s() - t0;
        for (int v = 1; v < V && rc == 0; v++) next = logits[v] > logits[next] ? v : next;
        seg.n = 1;
        if (rc == 0 && step < n) rc = lm_embed_tokens(&m->lm, &next, 1, rows, &err);
    }
    double dt = now_s() - t0 - t_prefill;
    free(rows), free(hidden), free(logits);
    kv_cache_free(&cache);
    if (rc) {
        fprintf(stderr, "decode: %s\n", err.msg);
        return -1;
    }
    char what[96];
    snprintf(what, sizeof what, "greedy caption: %d tokens, %.2f s per token", n, dt / n);
    phase(what, dt);
    return 0;
}

/* A LoRA update on n_und understanding and n_gen generation samples. */
static int lora_update(struct janus_model *m, int n_und, int n_gen, long budget_mib) {
    const struct janus_config *c = &m->cfg;
    int n = n_und + n_gen, img = c->vision.num_image_tokens, Dv = c->vision.hidden_size;
    struct train_sample *s = calloc((size_t)n, sizeof *s);
    int32_t *ids = malloc((size_t)n * 1200 * sizeof *ids);
    float *feat = malloc((size_t)img * Dv * sizeof *feat);
    struct dsr_rng rng;
    rng_seed(&rng, 5);
    for (size_t i = 0; i < (size_t)img * Dv; i++) feat[i] = (float)rng_normal(&rng);
    for (int i = 0; i < n; i++) {
        int32_t *seq = ids + (size_t)i * 1200;
        if (i < n_und) { /* BOS, 576 placeholders, 8 prompt tokens; 24 caption tokens */
            int k = 0;
            seq[k++] = c->text.bos_token_id;
            for (int j = 0; j < img; j++) seq[k++] = c->image_token_id;
            for (int j = 0; j < 8; j++) seq[k++] = (int32_t)(1000 + 17 * j);
            for (int j = 0; j < 24; j++) seq[k + j] = (int32_t)(rng_uniform(&rng) * 100000);
            s[i] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = seq, .n_context = k, .vision_features = feat,
                                         .n_feature_rows = img, .completion = seq + k, .n_completion = 24,
                                         .advantage = i % 2 ? -1.0f : 1.0f};
        } else { /* 32 prompt tokens; 576 codes */
            for (int j = 0; j < 32; j++) seq[j] = (int32_t)(2000 + 13 * j);
            for (int j = 0; j < img; j++) seq[32 + j] = (int32_t)(rng_uniform(&rng) * c->vq.num_embeddings);
            s[i] = (struct train_sample){.kind = TF_TARGET_CODES, .context = seq, .n_context = 32,
                                         .completion = seq + 32, .n_completion = img,
                                         .advantage = i % 2 ? -1.0f : 1.0f};
        }
    }
    struct trainer tr;
    struct dsr_err err;
    struct train_stats st;
    struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = 0.28f};
    struct adamw_hyper ah = {.lr = 1e-5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .max_grad_norm = 1.0f};
    double t0 = now_s();
    int rc = trainer_init(&tr, m, (size_t)budget_mib << 20, &err) ||
             trainer_grpo_backward(&tr, m, s, n, &gh, &st, &err) || trainer_step(&tr, m, &ah, &st, &err);
    double dt = now_s() - t0;
    if (rc) fprintf(stderr, "update: %s\n", err.msg);
    else {
        char what[128];
        snprintf(what, sizeof what, "LoRA /update, %d und + %d gen samples (loss %.3f)", n_und, n_gen, st.loss);
        phase(what, dt);
        trainer_free(&tr);
    }
    free(s), free(ids), free(feat);
    return rc ? -1 : 0;
}

int main(int argc, char **argv) {
    enum janus_weights weights = JANUS_WEIGHTS_F32;
    int n_tokens = 600, threads = 0, seven = 0, n_decode = 0, n_und = 2, n_gen = 2;
    long budget = 4096;
    struct lora_config lora = {.rank = 0, .alpha = 32.0f, .targets = LORA_LM_TARGETS};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = v != NULL;
        if (ok && !strcmp(a, "--tokens")) n_tokens = atoi(v);
        else if (ok && !strcmp(a, "--threads")) threads = atoi(v);
        else if (ok && !strcmp(a, "--decode")) n_decode = atoi(v);
        else if (ok && !strcmp(a, "--lora-rank")) lora.rank = atoi(v);
        else if (ok && !strcmp(a, "--und")) n_und = atoi(v);
        else if (ok && !strcmp(a, "--gen")) n_gen = atoi(v);
        else if (ok && !strcmp(a, "--budget")) budget = atol(v);
        else if (ok && !strcmp(a, "--shape") && (!strcmp(v, "1b") || !strcmp(v, "7b"))) seven = !strcmp(v, "7b");
        else if (ok && !strcmp(a, "--weights-dtype") && (!strcmp(v, "bf16") || !strcmp(v, "f32")))
            weights = !strcmp(v, "bf16") ? JANUS_WEIGHTS_BF16 : JANUS_WEIGHTS_F32;
        else {
            fprintf(stderr,
                    "usage: %s [--shape 1b|7b] [--weights-dtype f32|bf16] [--tokens N (default 600)] [--decode N] "
                    "[--lora-rank R] [--und N (default 2)] [--gen N (default 2)] [--budget MIB (default 4096)] "
                    "[--threads N]\n",
                    argv[0]);
            return 2;
        }
        i++;
    }
    if (n_tokens < 2) n_tokens = 2;
    if (n_und < 0 || n_gen < 0 || n_und + n_gen > 64 || n_decode < 0 || n_decode > 4096 || budget < 0) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    dsr_set_threads(threads);
    struct janus_config cfg;
    janus_pro(&cfg, seven);
    struct janus_model m;
    struct dsr_err err;
    double t0 = now_s();
    if (janus_model_init_random(&cfg, 1, weights, lora.rank ? &lora : NULL, &m, &err)) {
        fprintf(stderr, "init: %s\n", err.msg);
        return 1;
    }
    printf("Janus-Pro-%s shape: %.3f B parameters (%.4f B trainable%s), %s weights %.2f GiB, %d threads\n",
           seven ? "7B" : "1B", (double)pt_count(&m.params, false) / 1e9, (double)pt_count(&m.params, true) / 1e9,
           lora.rank ? ": LoRA adapters" : "", weights == JANUS_WEIGHTS_BF16 ? "bf16" : "float32",
           (double)pt_weight_bytes(&m.params) / (1 << 30), dsr_get_threads());
    phase("random init (the load)", now_s() - t0);
    int rc = forward(&m, n_tokens);
    if (rc == 0 && n_decode) rc = decode(&m, n_decode);
    if (rc == 0 && lora.rank && n_und + n_gen) rc = lora_update(&m, n_und, n_gen, budget);
    printf("peak resident memory: %.2f GiB\n", status_gib("VmHWM:"));
    janus_model_free(&m);
    return rc ? 1 : 0;
}
