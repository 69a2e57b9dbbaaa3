/* bench_forward: the /logprobs-equivalent scoring forward (tf_logprobs) on the
 * mid-size random Janus config (bench/mid_model.h), in tokens/s and GFLOP/s
 * with the FLOPs counted explicitly (projections + causal attention + heads +
 * generation aligner).
 *
 * Cases (rows = tokens through the decoder):
 *   und_607   understanding item: 576 image rows + 8 text tokens of context,
 *             24 text targets (the image rows are given aligner outputs;
 *             the frozen vision tower is not part of this measurement);
 *   gen_607   generation item: 32 text tokens of context, 576 VQ-code targets;
 *   gen_256   the same with 225 code targets (the 256-token point);
 *   both_1214 both 607-row items packed into one forward (a /logprobs batch).
 *
 * Usage: bench_forward [--threads N] [--reps N] [--case NAME] [--json FILE] [--dump FILE]
 *                      [--weights-dtype f32|bf16]
 *   --weights-dtype  how the weight matrices are held (model/params.h; the
 *           scoring forward widens BF16 panels for sgemm); --dump needs f32
 *   --case  run only this case (e.g. both_1214); --dump needs both_1214
 *   --reps  timed repetitions per case after one warm-up (best is kept; default 3)
 *   --dump  write the weights, inputs and dsr's log-probs of both_1214 as
 *           safetensors for bench/torch_peer.py (the cross-check)
 *   --lora-rank R  the model with LoRA adapters of rank R (alpha 2R) on the
 *           seven LM projections, the generation head's two and both
 *           aligners' linears, B random (not zero: every adapter then
 *           gets a gradient); with --dump, also dsr's adapter gradients of
 *           the GRPO loss torch_peer.py checks them against (a caption
 *           sample and an image sample, both after the generation context,
 *           and a caption of random vision features through the
 *           understanding aligner; advantages +1 / -1 / +0.5, old log-probs
 *           detached, loss_type grpo, β 0) */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/janus_model.h"
#include "cli_args.h"
#include "mid_model.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "st_writer.h"
#include "janus/teacher_forcing.h"
#include "train/train.h"

#define UND_TEXT 8
#define UND_TARGET 24
#define GEN_CONTEXT 32
#define N_IMAGE 576

/* Inputs of the two items; one allocation each, owned here. */
struct bench_inputs {
    int32_t und_context[N_IMAGE + UND_TEXT], und_target[UND_TARGET];
    int32_t gen_context[GEN_CONTEXT], gen_target[N_IMAGE];
    float *image_embeds;    /* [N_IMAGE, hidden] */
    float *vision_features; /* [N_IMAGE, vision hidden]: the LoRA check's image, through the aligner */
};

static int make_inputs(const struct janus_config *c, struct bench_inputs *in) {
    struct dsr_rng r;
    rng_seed(&r, 7);
    int V = c->text.vocab_size - 8; /* ordinary ids, clear of the special ones at the top */
    for (int i = 0; i < N_IMAGE; i++) in->und_context[i] = MID_IMAGE;
    for (int i = 0; i < UND_TEXT; i++) in->und_context[N_IMAGE + i] = 3 + (int32_t)(rng_next_u64(&r) % (uint64_t)V);
    for (int i = 0; i < UND_TARGET; i++) in->und_target[i] = 3 + (int32_t)(rng_next_u64(&r) % (uint64_t)V);
    in->gen_context[0] = MID_BOS;
    for (int i = 1; i < GEN_CONTEXT - 1; i++) in->gen_context[i] = 3 + (int32_t)(rng_next_u64(&r) % (uint64_t)V);
    in->gen_context[GEN_CONTEXT - 1] = MID_BOI;
    for (int i = 0; i < N_IMAGE; i++) in->gen_target[i] = (int32_t)(rng_next_u64(&r) % (uint64_t)c->vq.num_embeddings);
    size_t n = (size_t)N_IMAGE * c->text.hidden_size, nf = (size_t)N_IMAGE * c->vision.hidden_size;
    in->image_embeds = malloc(n * sizeof(float));
    in->vision_features = malloc(nf * sizeof(float));
    if (!in->image_embeds || !in->vision_features) return -1;
    /* the scale of an embedding row (init u/sqrt(fan_in)) */
    float scale = 1.0f / sqrtf((float)c->text.hidden_size);
    for (size_t i = 0; i < n; i++) in->image_embeds[i] = (float)rng_normal(&r) * scale;
    /* unit-variance rows, as the tower's post-layernorm leaves them */
    for (size_t i = 0; i < nf; i++) in->vision_features[i] = (float)rng_normal(&r);
    return 0;
}

static struct tf_item und_item(const struct bench_inputs *in) {
    return (struct tf_item){.context = in->und_context, .n_context = N_IMAGE + UND_TEXT,
                            .image_embeds = in->image_embeds, .n_image_rows = N_IMAGE, .kind = TF_TARGET_TOKENS,
                            .target = in->und_target, .n_target = UND_TARGET};
}

static struct tf_item gen_item(const struct bench_inputs *in, int n_codes) {
    return (struct tf_item){.context = in->gen_context, .n_context = GEN_CONTEXT, .kind = TF_TARGET_CODES,
                            .target = in->gen_target, .n_target = n_codes};
}

/* FLOPs of one tf_logprobs call over the items, counted from the config. */
static double forward_flops(const struct janus_config *c, const struct tf_item *items, int n_items, long *rows_out) {
    double f = 0;
    long rows = 0;
    for (int i = 0; i < n_items; i++) {
        const struct tf_item *it = &items[i];
        int n = it->n_context + it->n_target - 1;
        rows += n;
        f += lm_linear_flops_per_row(&c->text) * n + lm_attention_flops(&c->text, n, 0);
        if (it->kind == TF_TARGET_CODES)
            f += code_head_flops_per_row(c) * it->n_target + code_embed_flops_per_row(c) * (it->n_target - 1);
        else
            f += text_head_flops_per_row(c) * it->n_target;
    }
    *rows_out = rows;
    return f;
}

struct case_result {
    double best_s, mean_s;
};

static int time_case(const struct janus_model *m, const struct tf_item *items, int n_items, int reps, float *lp,
                     struct case_result *res, struct dsr_err *err) {
    double best = 1e30, total = 0;
    for (int rep = 0; rep <= reps; rep++) {
        double t0 = bench_now_s();
        if (tf_logprobs(m, items, n_items, lp, err)) return -1;
        double dt = bench_now_s() - t0;
        if (rep == 0) continue; /* warm-up: page faults of fresh buffers, thread pools */
        total += dt;
        best = dt < best ? dt : best;
    }
    res->best_s = best;
    res->mean_s = total / reps;
    return 0;
}

/* LM + generation-path weights (HF names), the inputs, dsr's log-probs and the
 * config numbers the peer needs, in one safetensors file. */
/* dsr's gradient of the peer's GRPO check with respect to every adapter
 * (see --lora-rank): grad receives the trainer's gradient arena.  The third
 * sample is an image caption whose image rows come through the understanding
 * aligner, so its adapters get a gradient too. */
static int lora_grads(const struct janus_model *m, const struct bench_inputs *in, float **grad, struct dsr_err *err) {
    struct train_sample s[3] = {
        {.kind = TF_TARGET_TOKENS, .context = in->gen_context, .n_context = GEN_CONTEXT, .completion = in->und_target,
         .n_completion = UND_TARGET, .advantage = 1.0f},
        {.kind = TF_TARGET_CODES, .context = in->gen_context, .n_context = GEN_CONTEXT, .completion = in->gen_target,
         .n_completion = N_IMAGE, .advantage = -1.0f},
        {.kind = TF_TARGET_TOKENS, .context = in->und_context, .n_context = N_IMAGE + UND_TEXT,
         .vision_features = in->vision_features, .n_feature_rows = N_IMAGE, .completion = in->und_target,
         .n_completion = UND_TARGET, .advantage = 0.5f},
    };
    struct grpo_hyper h = {.epsilon = 0.2f, .epsilon_high = 0.2f, .loss_type = GRPO_LOSS_GRPO};
    struct trainer tr;
    struct train_stats st;
    if (trainer_init(&tr, m, 0, err)) return -1;
    if (trainer_grpo_backward(&tr, m, s, 3, &h, &st, err)) {
        trainer_free(&tr);
        return -1;
    }
    *grad = tr.grad;
    tr.grad = NULL;
    trainer_free(&tr);
    return 0;
}

static int dump(const char *path, const struct janus_model *m, const struct bench_inputs *in, const float *lp,
                int n_lp, struct dsr_err *err) {
    const struct param_table *pt = &m->params;
    const struct text_config *t = &m->cfg.text;
    float *grad = NULL;
    if (m->lora.rank && lora_grads(m, in, &grad, err)) return -1;
    struct st_out_tensor *out = calloc(2 * pt->n + 10, sizeof *out);
    if (!out) return dsr_errf(err, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (strncmp(p->name, "model.language_model.", 21) != 0 && strncmp(p->name, "model.generation_", 17) != 0 &&
            strncmp(p->name, "model.aligner.", 14) != 0 && strcmp(p->name, "lm_head.weight") != 0)
            continue;
        struct st_out_tensor *o = &out[n++];
        snprintf(o->name, sizeof o->name, "%s", p->name);
        o->dtype = "F32";
        o->ndim = p->ndim;
        memcpy(o->shape, p->shape, sizeof(int64_t) * (size_t)p->ndim);
        o->data = pt_data(pt, p);
        if (p->adapter && grad) { /* and dsr's gradient beside it */
            out[n] = *o;
            snprintf(out[n].name, sizeof out[n].name, "dsr.grad.%s", p->name);
            out[n++].data = grad + p->offset;
        }
    }
    float lora_scale[1] = {m->lora.rank ? m->lora.alpha / (float)m->lora.rank : 0.0f};
    if (m->lora.rank) out[n++] = (struct st_out_tensor){"bench.lora.scale", "F32", 1, {1}, lora_scale};
    int32_t cfg_int[] = {t->n_layers, t->n_heads, t->n_kv_heads, t->head_dim, m->cfg.image_token_id};
    float cfg_float[] = {t->rms_norm_eps, t->rope_theta};
    struct st_out_tensor extra[] = {
        {"bench.config.int", "I32", 1, {5}, cfg_int},
        {"bench.config.float", "F32", 1, {2}, cfg_float},
        {"bench.und.context", "I32", 1, {N_IMAGE + UND_TEXT}, in->und_context},
        {"bench.und.image_embeds", "F32", 2, {N_IMAGE, t->hidden_size}, in->image_embeds},
        {"bench.und.vision_features", "F32", 2, {N_IMAGE, m->cfg.vision.hidden_size}, in->vision_features},
        {"bench.und.target", "I32", 1, {UND_TARGET}, in->und_target},
        {"bench.gen.context", "I32", 1, {GEN_CONTEXT}, in->gen_context},
        {"bench.gen.target", "I32", 1, {N_IMAGE}, in->gen_target},
        {"bench.logprobs", "F32", 1, {n_lp}, lp},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) out[n++] = extra[i];
    int rc = st_write_file(path, out, n, err);
    free(out);
    free(grad);
    return rc;
}

int main(int argc, char **argv) {
    long threads = 0, reps = 3, lora_rank = 0;
    const char *json_path = NULL, *dump_path = NULL, *only = NULL;
    enum janus_weights weights = JANUS_WEIGHTS_F32;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (bench_parse_long("bench_forward", argv[++i], "--threads", 1, 4096, &threads)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) {
            if (bench_parse_long("bench_forward", argv[++i], "--reps", 1, 1000, &reps)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--json") == 0) {
            json_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--case") == 0) {
            only = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--lora-rank") == 0) {
            if (bench_parse_long("bench_forward", argv[++i], "--lora-rank", 1, 256, &lora_rank)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--dump") == 0) {
            dump_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--weights-dtype") == 0 &&
                   (!strcmp(argv[i + 1], "f32") || !strcmp(argv[i + 1], "bf16"))) {
            weights = strcmp(argv[++i], "bf16") == 0 ? JANUS_WEIGHTS_BF16 : JANUS_WEIGHTS_F32;
        } else {
            fprintf(stderr, "usage: bench_forward [--threads N] [--reps N] [--case NAME] [--json FILE] [--dump FILE] "
                            "[--weights-dtype f32|bf16] [--lora-rank R]\n");
            return 2;
        }
    }
    if (dump_path && only && strcmp(only, "both_1214") != 0) {
        fprintf(stderr, "bench_forward: --dump needs the both_1214 case\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsr_set_threads((int)threads);
    struct janus_config cfg;
    mid_config(&cfg);
    struct janus_model m;
    struct dsr_err err;
    double t0 = bench_now_s();
    if (dump_path && weights == JANUS_WEIGHTS_BF16) {
        fprintf(stderr, "bench_forward: --dump writes float32 weights; use --weights-dtype f32\n");
        return 2;
    }
    struct lora_config lora = {.rank = (int)lora_rank, .alpha = 2.0f * (float)lora_rank,
                               .targets = LORA_LM_TARGETS | LORA_GEN_TARGETS | LORA_ALIGNER_TARGETS};
    if (janus_model_init_random(&cfg, 1, weights, lora_rank ? &lora : NULL, &m, &err)) {
        fprintf(stderr, "bench_forward: %s\n", err.msg);
        return 1;
    }
    if (lora_rank) { /* B random: a B = 0 adapter would hide A's gradient */
        struct dsr_rng r;
        rng_seed(&r, 17);
        for (size_t i = 0; i < m.params.n; i++) {
            const struct param *p = &m.params.items[i];
            if (!p->adapter || !strstr(p->name, "lora_B")) continue;
            float *b = pt_data(&m.params, p);
            for (size_t j = 0; j < p->numel; j++) b[j] = (float)(0.02 * rng_normal(&r));
        }
    }
    printf("bench_forward: mid-size Janus, %.1f M trainable parameters, %s weights, init %.1f s, %d threads\n",
           (double)pt_count(&m.params, true) / 1e6, weights == JANUS_WEIGHTS_BF16 ? "bf16" : "f32",
           bench_now_s() - t0, dsr_get_threads());
    struct bench_inputs in;
    if (make_inputs(&cfg, &in)) {
        fprintf(stderr, "bench_forward: out of memory\n");
        return 1;
    }
    struct {
        const char *name;
        struct tf_item items[2];
        int n_items;
    } cases[] = {
        {"und_607", {und_item(&in)}, 1},
        {"gen_607", {gen_item(&in, N_IMAGE)}, 1},
        {"gen_256", {gen_item(&in, 256 - GEN_CONTEXT + 1)}, 1},
        {"both_1214", {und_item(&in), gen_item(&in, N_IMAGE)}, 2},
    };
    float *lp = malloc((UND_TARGET + N_IMAGE) * sizeof(float));
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "threads", json_integer(dsr_get_threads()));
    int rc = lp ? 0 : 1;
    printf("%-10s %6s %9s %9s %10s %9s\n", "case", "rows", "GFLOP", "best s", "tokens/s", "GFLOP/s");
    for (size_t c = 0; rc == 0 && c < sizeof cases / sizeof cases[0]; c++) {
        if (only && strcmp(only, cases[c].name) != 0) continue;
        struct case_result res;
        long rows;
        double flops = forward_flops(&cfg, cases[c].items, cases[c].n_items, &rows);
        if (time_case(&m, cases[c].items, cases[c].n_items, (int)reps, lp, &res, &err)) {
            fprintf(stderr, "bench_forward: %s: %s\n", cases[c].name, err.msg);
            rc = 1;
            break;
        }
        printf("%-10s %6ld %9.1f %9.3f %10.0f %9.1f\n", cases[c].name, rows, flops * 1e-9, res.best_s,
               rows / res.best_s, flops / res.best_s * 1e-9);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f}", "case", cases[c].name, "rows",
                                             (json_int_t)rows, "gflop", flops * 1e-9, "best_s", res.best_s, "mean_s",
                                             res.mean_s, "tokens_per_s", rows / res.best_s, "gflops",
                                             flops / res.best_s * 1e-9));
    }
    json_object_set_new(root, "cases", arr);
    /* lp now holds both_1214's log-probs (the last case) */
    if (rc == 0 && dump_path) {
        if (dump(dump_path, &m, &in, lp, UND_TARGET + N_IMAGE, &err)) {
            fprintf(stderr, "bench_forward: %s\n", err.msg);
            rc = 1;
        } else {
            printf("wrote %s\n", dump_path);
        }
    }
    if (rc == 0 && json_path && json_dump_file(root, json_path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "bench_forward: cannot write %s\n", json_path);
        rc = 1;
    }
    json_decref(root);
    free(lp);
    free(in.image_embeds);
    free(in.vision_features);
    janus_model_free(&m);
    return rc;
}
