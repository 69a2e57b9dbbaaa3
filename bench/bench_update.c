/* bench_update: GRPO update throughput (forward + backward + AdamW) on a
 * mid-size random Janus, and its achieved GFLOP/s as a fraction of this
 * machine's sgemm peak measured in the same run.
 *
 * Usage: bench_update [--threads N] [--layers L] [--hidden C] [--samples S] [--tokens T] [--budget MIB]
 *                     [--reps N] [--peer-batch] [--profile] [--lora-rank R] [--json FILE]
 * Defaults: LM hidden 1024, 12 layers, 16 heads, intermediate 2816, vocab
 * 32000; 8 text samples of 256 rows each (32-token context, 225-token
 * completion); unbounded activation memory; 3 timed repetitions (best kept).
 *
 * --peer-batch: the batch bench/torch_peer.py trains instead, on the same
 *   config (mid_config()): an understanding item (576 image rows + 8 text
 *   tokens of context, 24 text targets) and a generation item (32 text
 *   tokens, 576 VQ-code targets), 607 rows each, advantages +1 / −1, old
 *   log-probs detached, loss_type grpo, β 0.  (dsr's image rows pass through
 *   the tiny understanding aligner; the peer is given them directly.)
 * --profile: prints the phase breakdown (core/train/train_prof.h) of the best rep.
 * --lora-rank R: also times a LoRA update (rank R, all seven projections,
 *   the same random base and batch) and prints its time as a fraction of
 *   the full update's: no weight-gradient GEMMs for the frozen base, AdamW
 *   over the adapters only.
 *
 * Times are reported for forward + backward and for the AdamW step (clipping
 * norm included) separately, and for their sum.
 *
 * FLOPs counted (matmuls only, the causal work: attention over the visible
 * positions, n(n+1)/2 per sample and head, as bench_forward counts it):
 * decoder layers 2·P·T for the forward, again for the backward's recompute
 * (only under a --budget: unbounded, the layer internals are kept), 4·P·T
 * for the backward; attention 4·vis·(heads·head_dim) per layer and sample
 * forward, 6·vis·(heads·head_dim) backward (+4·vis·… recompute), vis =
 * n(n+1)/2 (core/nn/attention_train.h skips the masked blocks, so this is
 * close to what runs); lm_head 2·V·C (generation head: its two linears)
 * per completion token forward, 6·V·C
 * backward (logits recomputed).  GFLOP/s are over forward + backward time. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/janus_model.h"
#include "mid_model.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "train/train.h"
#include "train/train_graph.h"
#include "train/train_prof.h"

#define PEER_IMAGE 576
#define PEER_UND_TEXT 8
#define PEER_UND_TARGET 24
#define PEER_GEN_CONTEXT 32

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

/* The torch peer's two items (see the header); buffers owned by the caller's
 * struct, filled from a fixed seed. */
struct peer_batch {
    int32_t und_ids[PEER_IMAGE + PEER_UND_TEXT + PEER_UND_TARGET];
    int32_t gen_ids[PEER_GEN_CONTEXT + PEER_IMAGE];
    float *features; /* [PEER_IMAGE, vision hidden] */
};

static int make_peer_batch(const struct janus_config *c, struct peer_batch *pb, struct train_sample s[2]) {
    struct dsr_rng r;
    rng_seed(&r, 7);
    int V = c->text.vocab_size - 8; /* ordinary ids, clear of the special ones at the top */
    int n_und = PEER_IMAGE + PEER_UND_TEXT;
    for (int i = 0; i < PEER_IMAGE; i++) pb->und_ids[i] = c->image_token_id;
    for (int i = PEER_IMAGE; i < n_und + PEER_UND_TARGET; i++) pb->und_ids[i] = 3 + (int32_t)(rng_next_u64(&r) % (uint64_t)V);
    pb->gen_ids[0] = MID_BOS;
    for (int i = 1; i < PEER_GEN_CONTEXT - 1; i++) pb->gen_ids[i] = 3 + (int32_t)(rng_next_u64(&r) % (uint64_t)V);
    pb->gen_ids[PEER_GEN_CONTEXT - 1] = MID_BOI;
    for (int i = 0; i < PEER_IMAGE; i++)
        pb->gen_ids[PEER_GEN_CONTEXT + i] = (int32_t)(rng_next_u64(&r) % (uint64_t)c->vq.num_embeddings);
    size_t nf = (size_t)PEER_IMAGE * c->vision.hidden_size;
    pb->features = malloc(nf * sizeof(float));
    if (!pb->features) return -1;
    for (size_t i = 0; i < nf; i++) pb->features[i] = (float)rng_normal(&r);
    s[0] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = pb->und_ids, .n_context = n_und,
                                 .vision_features = pb->features, .n_feature_rows = PEER_IMAGE,
                                 .completion = pb->und_ids + n_und, .n_completion = PEER_UND_TARGET,
                                 .advantage = 1.0f};
    s[1] = (struct train_sample){.kind = TF_TARGET_CODES, .context = pb->gen_ids, .n_context = PEER_GEN_CONTEXT,
                                 .completion = pb->gen_ids + PEER_GEN_CONTEXT, .n_completion = PEER_IMAGE,
                                 .advantage = -1.0f};
    return 0;
}

static void print_profile(const struct train_prof *p, double total) {
    printf("  phase breakdown of the best rep (s, %% of the update):\n");
    double sum = 0;
    for (int i = 0; i < TP_COUNT; i++) {
        const char *name = tp_name((enum tp_phase)i);
        if (name[0] != ' ') sum += p->seconds[i];
        printf("    %-40s %8.3f  %5.1f%%\n", name, p->seconds[i], 100.0 * p->seconds[i] / total);
    }
    printf("    %-40s %8.3f  %5.1f%%\n", "(unattributed)", total - sum, 100.0 * (total - sum) / total);
}

struct update_time {
    double best, fwd_bwd, adamw; /* seconds of the fastest rep: all, backward pass, AdamW step */
    struct train_prof prof;      /* its phases, when profiled */
};

/* Times reps GRPO updates (forward + backward, then AdamW) of m on the
 * batch, keeping the fastest; prof (may be NULL) is tr's profile. */
static int time_updates(struct trainer *tr, struct janus_model *m, const struct train_sample *s, int n,
                        const struct grpo_hyper *gh, const struct adamw_hyper *ah, int reps, struct train_prof *prof,
                        struct update_time *out, struct train_stats *st) {
    struct dsr_err err;
    out->best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        if (prof) memset(prof, 0, sizeof *prof);
        double t0 = now_s();
        if (trainer_grpo_backward(tr, m, s, n, gh, st, &err)) {
            fprintf(stderr, "bench_update: %s\n", err.msg);
            return -1;
        }
        double t1 = now_s();
        if (trainer_step(tr, m, ah, st, &err)) {
            fprintf(stderr, "bench_update: %s\n", err.msg);
            return -1;
        }
        double t2 = now_s();
        if (t2 - t0 < out->best) {
            *out = (struct update_time){.best = t2 - t0, .fwd_bwd = t1 - t0, .adamw = t2 - t1};
            if (prof) out->prof = *prof;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int threads = 0, layers = 12, hidden = 1024, n_samples = 8, rows = 256, reps = 3, peer = 0, profile = 0;
    int lora_rank = 0;
    long budget_mib = 0;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peer-batch")) peer = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (i + 1 >= argc) {
            fprintf(stderr, "option %s needs a value\n", argv[i]);
            return 2;
        } else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers")) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden")) hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples")) n_samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens")) rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget")) budget_mib = atol(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json_path = argv[++i];
        else if (!strcmp(argv[i], "--lora-rank")) lora_rank = atoi(argv[++i]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (layers < 1 || hidden < 64 || hidden % 64 || n_samples < 1 || n_samples > 1024 || rows < 34 || rows > 8192 ||
        reps < 1 || reps > 100 || lora_rank < 0 || lora_rank > 256) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    dsr_set_threads(threads);
    struct janus_config cfg;
    if (peer) mid_config(&cfg);
    else cfg = bench_config(layers, hidden);
    struct janus_model m;
    struct trainer tr;
    struct dsr_err err;
    if (janus_model_init_random(&cfg, 1, JANUS_WEIGHTS_F32, NULL, &m, &err) ||
        trainer_init(&tr, &m, (size_t)budget_mib << 20, &err)) {
        fprintf(stderr, "bench_update: %s\n", err.msg);
        return 1;
    }
    struct train_prof prof, best_prof;
    if (profile) tr.prof = &prof;
    int ctx_len = 32, comp_len = rows - ctx_len + 1;
    if (peer) n_samples = 2;
    int32_t *ids = malloc((size_t)n_samples * (ctx_len + comp_len) * sizeof(int32_t));
    float *old = malloc((size_t)n_samples * comp_len * sizeof(float));
    struct train_sample *s = calloc((size_t)n_samples, sizeof *s);
    struct peer_batch pb = {0};
    if (!ids || !old || !s || (peer && make_peer_batch(&cfg, &pb, s))) {
        fprintf(stderr, "bench_update: out of memory\n");
        return 1;
    }
    struct dsr_rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < n_samples && !peer; i++) {
        int32_t *seq = ids + (size_t)i * (ctx_len + comp_len);
        for (int j = 0; j < ctx_len + comp_len; j++) seq[j] = (int32_t)(rng_uniform(&rng) * 30000);
        for (int j = 0; j < comp_len; j++) old[(size_t)i * comp_len + j] = -10.4f + 0.1f * (float)rng_uniform(&rng);
        s[i] = (struct train_sample){.kind = TF_TARGET_TOKENS, .context = seq, .n_context = ctx_len,
                                     .completion = seq + ctx_len, .n_completion = comp_len,
                                     .advantage = (float)(rng_uniform(&rng) - 0.5),
                                     .old_logprobs = old + (size_t)i * comp_len};
    }
    struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = peer ? 0.2f : 0.28f};
    struct adamw_hyper ah = {.lr = 1e-6f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .max_grad_norm = 1.0f};
    struct train_stats st;

    /* matmul FLOPs: decoder 2·P per row forward, again recomputed, 4·P
     * backward; attention 4·vis·Q forward, 10·vis·Q backward incl. recompute
     * (vis = n(n+1)/2 causal pairs); heads 2·(weights) per target forward
     * and recomputed, 4·(weights) backward */
    const struct text_config *t = &cfg.text;
    double C = t->hidden_size, Q = (double)t->n_heads * t->head_dim, KV = (double)t->n_kv_heads * t->head_dim;
    double P = C * Q + 2 * C * KV + Q * C + 3 * C * t->intermediate_size;
    double text_head = (double)t->vocab_size * C, code_head = C * m.gen.width + (double)m.gen.width * m.gen.codebook_size;
    double T = 0, targets = 0, flops = 0;
    for (int i = 0; i < n_samples; i++) {
        double n = s[i].n_context + s[i].n_completion - 1;
        T += n;
        targets += s[i].n_completion;
        /* with unbounded memory the layer internals are kept: no recompute */
        double vis = n * (n + 1) / 2;
        flops += (budget_mib ? 8 : 6) * P * n * t->n_layers + (budget_mib ? 14 : 10) * vis * Q * t->n_layers;
        flops += 8 * (s[i].kind == TF_TARGET_CODES ? code_head : text_head) * s[i].n_completion;
    }

    double peak = sgemm_peak((int)T < 2048 ? (int)T : 2048, t->intermediate_size, t->hidden_size);
    struct update_time full, lora = {0};
    if (time_updates(&tr, &m, s, n_samples, &gh, &ah, reps, profile ? &prof : NULL, &full, &st)) return 1;
    double best = full.best, best_fb = full.fwd_bwd, best_adam = full.adamw;
    best_prof = full.prof;
    size_t lora_params = 0;
    if (lora_rank) {
        struct janus_model lm;
        struct trainer ltr;
        struct lora_config lc = {.rank = lora_rank, .alpha = 2.0f * (float)lora_rank, .targets = LORA_LM_TARGETS};
        if (janus_model_init_random(&cfg, 1, JANUS_WEIGHTS_F32, &lc, &lm, &err) ||
            trainer_init(&ltr, &lm, (size_t)budget_mib << 20, &err)) {
            fprintf(stderr, "bench_update: %s\n", err.msg);
            return 1;
        }
        lora_params = pt_count_adapters(&lm.params);
        if (time_updates(&ltr, &lm, s, n_samples, &gh, &ah, reps, NULL, &lora, &st)) return 1;
        trainer_free(&ltr);
        janus_model_free(&lm);
    }
    double lora_best = lora.best, lora_fb = lora.fwd_bwd, lora_adam = lora.adamw;
    double gflops = flops / best_fb * 1e-9;
    printf("bench_update: %s; LM hidden %d, %d layers, %d heads, vocab %d; %d samples, %.0f rows "
           "(%ld completion tokens); %d threads\n",
           peer ? "torch peer's batch (und 607 + gen 607 rows)" : "text samples", t->hidden_size, t->n_layers,
           t->n_heads, t->vocab_size, n_samples, T, st.tokens, dsr_get_threads());
    printf("  GRPO update: %.3f s = forward + backward %.3f s + AdamW (norm, clip, step) %.3f s; %.0f rows/s\n",
           best, best_fb, best_adam, T / best);
    printf("  forward + backward: %.2f ms per row; %.1f GFLOP/s; sgemm peak at %dx%dx%d: %.1f GFLOP/s; "
           "fraction %.2f\n",
           1e3 * best_fb / T, gflops, (int)T < 2048 ? (int)T : 2048, t->intermediate_size, t->hidden_size, peak,
           gflops / peak);
    printf("  activation estimate %.1f MiB for the batch\n",
           (double)tg_estimate_bytes(&m, s, n_samples, budget_mib == 0) / (1 << 20));
    if (lora_rank)
        printf("  LoRA r=%d update (%zu adapter parameters, base frozen): %.3f s = forward + backward %.3f s + AdamW "
               "%.3f s; %.2f of the full update's time\n",
               lora_rank, lora_params, lora_best, lora_fb, lora_adam, lora_best / best);
    if (profile) print_profile(&best_prof, best);
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "bench_update: cannot write %s\n", json_path);
            return 1;
        }
        fprintf(f,
                "{\"batch\": \"%s\", \"rows\": %.0f, \"completion_tokens\": %.0f, \"best_s\": %.6f, "
                "\"fwd_bwd_s\": %.6f, \"adamw_s\": %.6f, \"rows_per_s\": %.3f, \"gflops\": %.3f, "
                "\"sgemm_peak_gflops\": %.3f, \"threads\": %d, \"lora_rank\": %d, \"lora_best_s\": %.6f, "
                "\"lora_fwd_bwd_s\": %.6f, \"lora_adamw_s\": %.6f}\n",
                peer ? "peer" : "text", T, targets, best, best_fb, best_adam, T / best, gflops, peak,
                dsr_get_threads(), lora_rank, lora_best, lora_fb, lora_adam);
        fclose(f);
    }
    free(ids), free(old), free(s), free(pb.features);
    trainer_free(&tr);
    janus_model_free(&m);
    return 0;
}
