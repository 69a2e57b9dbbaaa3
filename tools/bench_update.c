/* bench_update: GRPO update throughput (forward + backward + AdamW) on a
 * mid-size random Janus, and its achieved GFLOP/s as a fraction of this
 * machine's sgemm peak measured in the same run.
 *
 * Usage: bench_update [--threads N] [--layers L] [--hidden C] [--samples S] [--tokens T] [--budget MIB]
 *                     [--json FILE]
 * Defaults: LM hidden 1024, 12 layers, 16 heads, intermediate 2816, vocab
 * 32000; 8 text samples of 256 rows each (32-token context, 225-token
 * completion); unbounded activation memory.
 *
 * FLOPs counted (what is executed, matmuls only): decoder layers 2·P·T for
 * the forward, again for the backward's recompute, 4·P·T for the backward;
 * attention 4·n²·(heads·head_dim) per layer and sample forward (full n×n
 * products), 10·n²·(heads·head_dim) backward incl. recompute; lm_head 2·V·C
 * per completion token forward, 6·V·C backward (logits recomputed). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "janus_model.h"
#include "ops.h"
#include "rng.h"
#include "train.h"
#include "train_graph.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best GFLOP/s of C[m,n] = A[m,k]·B[n,k]ᵀ over a few runs after a warm-up. */
static double sgemm_peak(int m, int n, int k) {
    float *a = malloc((size_t)m * k * sizeof(float)), *b = malloc((size_t)n * k * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    if (!a || !b || !c) return -1;
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)n * k; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double dt = now_s() - t0;
        if (rep && dt < best) best = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * k / best * 1e-9;
}

static struct janus_config bench_config(int layers, int hidden) {
    struct janus_config c;
    janus_config_defaults(&c);
    c.text.vocab_size = 32000;
    c.text.hidden_size = hidden;
    c.text.intermediate_size = hidden * 11 / 4;
    c.text.n_layers = layers;
    c.text.n_heads = hidden / 64;
    c.text.n_kv_heads = hidden / 64;
    c.text.head_dim = 64;
    c.vision.hidden_size = 64; /* a small tower: only the LM is benchmarked */
    c.vision.n_layers = 1;
    c.vision.n_heads = 1;
    c.vision.intermediate_size = 256;
    c.vision.image_size = 64;
    c.vision.patch_size = 16;
    c.vision.num_image_tokens = 16;
    c.vision.projection_dim = hidden;
    c.vq.num_embeddings = 4096;
    c.vq.projection_dim = hidden;
    c.vq.image_token_embed_dim = hidden;
    c.image_token_id = 31999;
    return c;
}

int main(int argc, char **argv) {
    int threads = 0, layers = 12, hidden = 1024, n_samples = 8, rows = 256;
    long budget_mib = 0;
    const char *json_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) hidden = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples")) n_samples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) rows = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--budget")) budget_mib = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json_path = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (layers < 1 || hidden < 64 || hidden % 64 || n_samples < 1 || n_samples > 1024 || rows < 34 || rows > 8192) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    dsr_set_threads(threads);
    struct janus_config cfg = bench_config(layers, hidden);
    struct janus_model m;
    struct trainer tr;
    struct dsr_err err;
    if (janus_model_init_random(&cfg, 1, &m, &err) ||
        trainer_init(&tr, &m, (size_t)budget_mib << 20, &err)) {
        fprintf(stderr, "bench_update: %s\n", err.msg);
        return 1;
    }
    int ctx_len = 32, comp_len = rows - ctx_len + 1;
    int32_t *ids = malloc((size_t)n_samples * (ctx_len + comp_len) * sizeof(int32_t));
    float *old = malloc((size_t)n_samples * comp_len * sizeof(float));
    struct train_sample *s = calloc((size_t)n_samples, sizeof *s);
    struct dsr_rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < n_samples; i++) {
        int32_t *seq = ids + (size_t)i * (ctx_len + comp_len);
        for (int j = 0; j < ctx_len + comp_len; j++) seq[j] = (int32_t)(rng_uniform(&rng) * 30000);
        for (int j = 0; j < comp_len; j++) old[(size_t)i * comp_len + j] = -10.4f + 0.1f * (float)rng_uniform(&rng);
        s[i] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = seq, .n_context = ctx_len,
                                     .completion = seq + ctx_len, .n_completion = comp_len,
                                     .advantage = (float)(rng_uniform(&rng) - 0.5),
                                     .old_logprobs = old + (size_t)i * comp_len};
    }
    struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = 0.28f};
    struct adamw_hyper ah = {.lr = 1e-6f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .max_grad_norm = 1.0f};
    struct train_stats st;

    const struct text_config *t = &cfg.text;
    double C = t->hidden_size, Q = (double)t->n_heads * t->head_dim, KV = (double)t->n_kv_heads * t->head_dim;
    double P = C * Q + 2 * C * KV + Q * C + 3 * C * t->intermediate_size;
    double T = (double)n_samples * rows, targets = (double)n_samples * comp_len, n2 = (double)rows * rows;
    double flops = 8 * P * T * t->n_layers + 14 * n2 * Q * t->n_layers * n_samples + 8 * t->vocab_size * C * targets;

    double peak = sgemm_peak((int)T < 2048 ? (int)T : 2048, t->intermediate_size, t->hidden_size);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        if (trainer_grpo_backward(&tr, &m, s, n_samples, &gh, &st, &err) || trainer_step(&tr, &m, &ah, &st, &err)) {
            fprintf(stderr, "bench_update: %s\n", err.msg);
            return 1;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    double gflops = flops / best * 1e-9;
    printf("bench_update: LM hidden %d, %d layers, %d heads, vocab %d, %d samples x %d rows (%ld completion tokens), "
           "%d threads\n",
           hidden, layers, t->n_heads, t->vocab_size, n_samples, rows, st.tokens, dsr_get_threads());
    printf("  GRPO update (forward + backward + AdamW): %.3f s, %.0f tokens/s (rows), %.0f completion tokens/s\n",
           best, T / best, targets / best);
    printf("  achieved %.1f GFLOP/s; sgemm peak at %dx%dx%d: %.1f GFLOP/s; fraction %.2f\n", gflops,
           (int)T < 2048 ? (int)T : 2048, t->intermediate_size, t->hidden_size, peak, gflops / peak);
    printf("  activation estimate %.1f MiB for the batch\n",
           (double)tg_estimate_bytes(&cfg, s, n_samples) / (1 << 20));
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "bench_update: cannot write %s\n", json_path);
            return 1;
        }
        fprintf(f,
                "{\"rows\": %.0f, \"completion_tokens\": %.0f, \"best_s\": %.6f, \"rows_per_s\": %.3f, "
                "\"gflops\": %.3f, \"sgemm_peak_gflops\": %.3f, \"threads\": %d}\n",
                T, targets, best, T / best, gflops, peak, dsr_get_threads());
        fclose(f);
    }
    free(ids), free(old), free(s);
    trainer_free(&tr);
    janus_model_free(&m);
    return 0;
}
