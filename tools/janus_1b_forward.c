/* Slow check (make test-slow): builds the full Janus-Pro-1B shape with random
 * weights in memory — no checkpoint file — and runs one teacher-forced
 * forward over 600 tokens, reporting load time, forward time, achieved
 * GFLOP/s, resident memory after the load and at peak, so a real
 * checkpoint is known to fit.
 *
 * Usage: janus_1b_forward [--tokens N] [--threads N] [--weights-dtype f32|bf16] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "model/janus_model.h"
#include "nn/ops.h"
#include "janus/teacher_forcing.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Resident memory now (VmRSS), GiB. */
static double rss_gib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return (double)kb / (1024.0 * 1024.0);
}

static double peak_rss_gib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is KiB on Linux */
}

/* deepseek-community/Janus-Pro-1B hyper-parameters. */
static void janus_pro_1b(struct janus_config *c) {
    janus_config_defaults(c);
    c->text.vocab_size = 102400;
    c->text.hidden_size = 2048;
    c->text.intermediate_size = 5632;
    c->text.n_layers = 24;
    c->text.n_heads = 16;
    c->text.n_kv_heads = 16;
    c->text.head_dim = 128;
    c->text.max_position_embeddings = 16384;
    c->text.bos_token_id = 100000;
    c->text.eos_token_id = 100001;
    c->text.pad_token_id = 100002;
    c->vision.projection_dim = 2048;
    c->vq.projection_dim = 2048;
    c->vq.image_token_embed_dim = 2048;
    c->vq.num_patches = 24;
    c->image_token_id = 100581;
}

int main(int argc, char **argv) {
    enum janus_weights weights = JANUS_WEIGHTS_F32;
    int n_tokens = 600, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc) n_tokens = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--weights-dtype") == 0 && i + 1 < argc && !strcmp(argv[i + 1], "bf16")) {
            weights = JANUS_WEIGHTS_BF16;
            i++;
        } else if (strcmp(argv[i], "--weights-dtype") == 0 && i + 1 < argc && !strcmp(argv[i + 1], "f32")) {
            weights = JANUS_WEIGHTS_F32;
            i++;
        } else {
            fprintf(stderr, "usage: %s [--tokens N (default 600)] [--threads N] [--weights-dtype f32|bf16]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n_tokens < 2) n_tokens = 2;
    dsr_set_threads(threads);
    struct janus_config cfg;
    janus_pro_1b(&cfg);
    struct janus_model m;
    struct dsr_err err;
    double t0 = now_s();
    if (janus_model_init_random(&cfg, 1, weights, NULL, &m, &err)) {
        fprintf(stderr, "init: %s\n", err.msg);
        return 1;
    }
    double t_init = now_s() - t0;
    printf("Janus-Pro-1B shape: %.3f B parameters (%.3f B trainable), %s weights %.2f GiB, init %.1f s, "
           "resident after the load %.2f GiB\n",
           (double)pt_count(&m.params, false) / 1e9, (double)pt_count(&m.params, true) / 1e9,
           weights == JANUS_WEIGHTS_BF16 ? "bf16" : "float32", (double)pt_weight_bytes(&m.params) / (1 << 30), t_init,
           rss_gib());

    /* one text item: 599 context tokens, the last token as target */
    int32_t *ids = malloc((size_t)n_tokens * sizeof *ids);
    for (int i = 0; i < n_tokens; i++) ids[i] = (int32_t)((i * 7919u) % 100000u);
    struct tf_item it = {.context = ids, .n_context = n_tokens - 1, .kind = TF_TARGET_TOKENS,
                         .target = ids + n_tokens - 1, .n_target = 1};
    float lp;
    t0 = now_s();
    int rc = tf_logprobs(&m, &it, 1, &lp, &err);
    double t_fwd = now_s() - t0;
    if (rc) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return 1;
    }
    const struct text_config *t = &cfg.text;
    double per_token = 2.0 * t->n_layers *
                       ((double)t->hidden_size * (t->n_heads + 2 * t->n_kv_heads) * t->head_dim +
                        (double)t->n_heads * t->head_dim * t->hidden_size + 3.0 * t->hidden_size * t->intermediate_size);
    double attn = 2.0 * 2.0 * t->n_layers * t->n_heads * t->head_dim * (double)n_tokens * n_tokens / 2;
    double gflop = (per_token * n_tokens + attn) / 1e9;
    printf("forward of %d tokens: %.2f s, %.1f GFLOP, %.1f GFLOP/s, %d threads, log-prob %.4f (finite: %s)\n",
           n_tokens, t_fwd, gflop, gflop / t_fwd, dsr_get_threads(), lp, isfinite(lp) ? "yes" : "NO");
    printf("peak resident memory: %.2f GiB\n", peak_rss_gib());
    free(ids);
    janus_model_free(&m);
    return isfinite(lp) ? 0 : 1;
}
