/* bench_decode: rollout throughput of the group samplers (core/janus/rollout.h) on
 * the mid-size random Janus config, with the bytes each decode step must read
 * so the driver can compare against the memory-bandwidth ceiling.
 *
 *   caption  sample_text_group after an understanding context (576 image rows
 *            + 8 text tokens), up to --caption-tokens tokens, temperature 1;
 *   image    sample_image_group after a 32-token generation context, CFG
 *            scale 5 (2G rows per step), all 576 codes, temperature 1.
 *
 * The sampler reports how long its setup and shared prefill took
 * (prefill_s), so the decode steps' time is total − prefill of the same
 * call.  (It used to be a separately timed prefill, whose run-to-run spread
 * — as large as the whole decode of a 96-token caption — landed in the step
 * time.)  Per step the weights
 * are read once whatever the batch (decoder layers + the head or generation
 * path); the group's shared prefill is read once per prefix (one for
 * captions, conditional + unconditional for CFG images: kv_cache_share_prefix)
 * and each row reads its own positions after it.  Both byte counts are
 * reported (the KV bytes as the mean over the steps), with the FLOPs of a
 * step (projections, attention, heads) for the compute side of the roofline.
 *
 * Usage: bench_decode [--threads N] [--groups 1,8,16] [--caption-tokens N]
 *                     [--what caption|image|both] [--patches N] [--json FILE]
 *                     [--weights-dtype f32|bf16] [--kv-dtype f32|bf16]
 *   --weights-dtype  how the weight matrices are held (model/params.h); with
 *              bf16 the step's weight bytes count them at 2 bytes (the norm
 *              vectors, float32, are < 0.1% of them and counted at 2 too)
 *   --kv-dtype the rollouts' KV cache (nn/kv_cache.h, dsrd --kv-dtype); with
 *              bf16 the step's KV bytes count 2 bytes an element
 *   --patches  image grid side for the image runs (default 24: 576 codes);
 *              smaller grids bound the run time (fewer, shorter steps) */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/janus_model.h"
#include "nn/kv_cache.h"
#include "cli_args.h"
#include "mid_model.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "janus/rollout.h"

#define UND_TEXT 8
#define GEN_CONTEXT 32
#define MAX_GROUPS 8

struct decode_result {
    double total_s, prefill_s;
    long tokens;   /* sampled tokens (all samples) */
    int steps;     /* decode forwards after the prefill */
    int rows;      /* decoder rows per step (G, or 2G with CFG) */
    double weight_bytes, kv_bytes_mean, flops_mean;
};

static void put(json_t *arr, const char *what, int G, const struct decode_result *r) {
    double decode_s = r->total_s - r->prefill_s;
    double step_s = r->steps > 0 ? decode_s / r->steps : 0;
    printf("%-8s %3d %5d %6d %8.2f %8.2f %9.1f %10.1f %10.1f %9.1f %9.1f\n", what, G, r->rows, r->steps, r->total_s,
           r->prefill_s, step_s * 1e3, r->tokens / r->total_s, step_s > 0 ? G / step_s : 0, r->weight_bytes / 1e6,
           r->kv_bytes_mean / 1e6);
    json_array_append_new(
        arr, json_pack("{s:s, s:i, s:i, s:i, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "what", what, "G", G, "rows",
                       r->rows, "steps", r->steps, "tokens", (json_int_t)r->tokens, "total_s", r->total_s,
                       "prefill_s", r->prefill_s, "step_s", step_s, "tokens_per_s", r->tokens / r->total_s,
                       "decode_tokens_per_s", step_s > 0 ? G / step_s : 0.0, "weight_bytes_per_step",
                       r->weight_bytes, "kv_bytes_per_step", r->kv_bytes_mean, "flops_per_step", r->flops_mean));
}

/* Mean over steps s = 1..steps of the KV bytes read: each of the n_prefixes
 * shared prefixes (context positions) once, plus every row's s own positions. */
static double mean_kv_bytes(const struct text_config *t, int rows, int n_prefixes, int context, int steps) {
    if (steps <= 0) return 0;
    double sum = 0;
    for (int s = 1; s <= steps; s++) sum += n_prefixes * kv_read_bytes(t, context) + rows * kv_read_bytes(t, s);
    return sum / steps;
}

/* Mean FLOPs of a step: rows × (projections + head_flops_per_row) plus each
 * row's attention over context + s positions. */
static double mean_step_flops(const struct text_config *t, int rows, double head_flops_per_row, int context,
                              int steps) {
    if (steps <= 0) return 0;
    double sum = 0;
    for (int s = 1; s <= steps; s++)
        sum += rows * (lm_linear_flops_per_row(t) + head_flops_per_row + lm_attention_flops(t, 1, context + s - 1));
    return sum / steps;
}

static int bench_caption(const struct janus_model *m, int G, int max_tokens, const int32_t *ctx, int n_ctx,
                         const float *image_embeds, int n_image_rows, enum kv_dtype kv, struct decode_result *r,
                         struct dsr_err *err) {
    memset(r, 0, sizeof *r);
    struct sampling_params p = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 11, .kv_dtype = kv};
    struct text_group out;
    double t0 = bench_now_s();
    if (sample_text_group(m, ctx, n_ctx, image_embeds, n_image_rows, G, max_tokens, &p, &out, err)) return -1;
    r->total_s = bench_now_s() - t0;
    r->prefill_s = out.prefill_s;
    int longest = 0;
    for (int g = 0; g < G; g++) {
        r->tokens += out.lengths[g];
        longest = out.lengths[g] > longest ? out.lengths[g] : longest;
    }
    text_group_free(&out);
    r->steps = longest - 1; /* the first token comes from the prefill's logits */
    r->rows = G;
    r->weight_bytes = lm_layer_weight_bytes(&m->cfg.text) + text_head_weight_bytes(&m->cfg);
    r->kv_bytes_mean = mean_kv_bytes(&m->cfg.text, G, 1, n_ctx, r->steps);
    r->flops_mean = mean_step_flops(&m->cfg.text, G, text_head_flops_per_row(&m->cfg), n_ctx, r->steps);
    return 0;
}

static int bench_image(const struct janus_model *m, int G, const int32_t *ctx, int n_ctx, enum kv_dtype kv,
                       struct decode_result *r, struct dsr_err *err) {
    memset(r, 0, sizeof *r);
    struct sampling_params p = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 11, .kv_dtype = kv};
    struct image_group out;
    double t0 = bench_now_s();
    if (sample_image_group(m, ctx, n_ctx, G, 5.0f, &p, &out, err)) return -1;
    r->total_s = bench_now_s() - t0;
    r->prefill_s = out.prefill_s;
    r->tokens = (long)G * out.n_codes;
    r->steps = out.n_codes - 1;
    image_group_free(&out);
    r->rows = 2 * G;
    r->weight_bytes = lm_layer_weight_bytes(&m->cfg.text) + code_path_weight_bytes(&m->cfg);
    r->kv_bytes_mean = mean_kv_bytes(&m->cfg.text, 2 * G, 2, n_ctx, r->steps);
    r->flops_mean = mean_step_flops(&m->cfg.text, 2 * G,
                                    code_head_flops_per_row(&m->cfg) + code_embed_flops_per_row(&m->cfg), n_ctx,
                                    r->steps);
    return 0;
}

/* "1,8,16" → groups[]; returns the count or -1. */
static int parse_groups(const char *s, int *groups) {
    int n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        long g;
        if (n == MAX_GROUPS || bench_parse_long("bench_decode", tok, "--groups", 1, SAMPLER_MAX_GROUP, &g)) return -1;
        groups[n++] = (int)g;
    }
    return n > 0 ? n : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_decode [--threads N] [--groups 1,8,16] [--caption-tokens N] "
                    "[--what caption|image|both] [--patches N] [--json FILE] [--weights-dtype f32|bf16] "
                    "[--kv-dtype f32|bf16]\n");
}

int main(int argc, char **argv) {
    enum janus_weights weights = JANUS_WEIGHTS_F32;
    enum kv_dtype kv = KV_F32;
    long threads = 0, caption_tokens = 32, patches = 24;
    int groups[MAX_GROUPS] = {1, 8, 16}, n_groups = 3;
    const char *json_path = NULL, *what = "both";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (bench_parse_long("bench_decode", argv[++i], "--threads", 1, 4096, &threads)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--caption-tokens") == 0) {
            if (bench_parse_long("bench_decode", argv[++i], "--caption-tokens", 2, 1024, &caption_tokens)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--groups") == 0) {
            if ((n_groups = parse_groups(argv[++i], groups)) < 0) {
                usage();
                return 2;
            }
        } else if (i + 1 < argc && strcmp(argv[i], "--patches") == 0) {
            if (bench_parse_long("bench_decode", argv[++i], "--patches", 1, 64, &patches)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--what") == 0) {
            what = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--json") == 0) {
            json_path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--weights-dtype") == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "f32") && strcmp(v, "bf16")) {
                usage();
                return 2;
            }
            weights = strcmp(v, "bf16") == 0 ? JANUS_WEIGHTS_BF16 : JANUS_WEIGHTS_F32;
        } else if (i + 1 < argc && strcmp(argv[i], "--kv-dtype") == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "f32") && strcmp(v, "bf16")) {
                usage();
                return 2;
            }
            kv = strcmp(v, "bf16") == 0 ? KV_BF16 : KV_F32;
        } else {
            usage();
            return 2;
        }
    }
    int do_caption = strcmp(what, "caption") == 0 || strcmp(what, "both") == 0;
    int do_image = strcmp(what, "image") == 0 || strcmp(what, "both") == 0;
    if (!do_caption && !do_image) {
        usage();
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsr_set_threads((int)threads);
    struct janus_config cfg;
    mid_config(&cfg);
    cfg.vq.num_patches = (int)patches;
    struct janus_model m;
    struct dsr_err err;
    if (janus_model_init_random(&cfg, 1, weights, NULL, &m, &err)) {
        fprintf(stderr, "bench_decode: %s\n", err.msg);
        return 1;
    }
    /* contexts as in bench_forward: image rows + a short question; a prompt ending with BOI */
    int n_img = cfg.vision.num_image_tokens, C = cfg.text.hidden_size;
    int32_t *und_ctx = malloc((size_t)(n_img + UND_TEXT) * sizeof *und_ctx);
    float *embeds = malloc((size_t)n_img * C * sizeof *embeds);
    int32_t gen_ctx[GEN_CONTEXT];
    if (!und_ctx || !embeds) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    struct dsr_rng rng;
    rng_seed(&rng, 5);
    for (int i = 0; i < n_img; i++) und_ctx[i] = MID_IMAGE;
    for (int i = 0; i < UND_TEXT; i++) und_ctx[n_img + i] = 3 + (int32_t)(rng_next_u64(&rng) % 30000);
    for (size_t i = 0; i < (size_t)n_img * C; i++) embeds[i] = (float)rng_normal(&rng) / sqrtf((float)C);
    gen_ctx[0] = MID_BOS;
    for (int i = 1; i < GEN_CONTEXT - 1; i++) gen_ctx[i] = 3 + (int32_t)(rng_next_u64(&rng) % 30000);
    gen_ctx[GEN_CONTEXT - 1] = MID_BOI;

    double weight_scale = weights == JANUS_WEIGHTS_BF16 ? 0.5 : 1.0, kv_scale = kv == KV_BF16 ? 0.5 : 1.0;
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "threads", json_integer(dsr_get_threads()));
    json_object_set_new(root, "image_codes", json_integer(patches * patches));
    json_object_set_new(root, "weights_dtype", json_string(weights == JANUS_WEIGHTS_BF16 ? "bf16" : "f32"));
    json_object_set_new(root, "kv_dtype", json_string(kv == KV_BF16 ? "bf16" : "f32"));
    printf("bench_decode: mid-size Janus, %d threads, %s weights, %s KV cache\n", dsr_get_threads(),
           weights == JANUS_WEIGHTS_BF16 ? "bf16" : "f32", kv == KV_BF16 ? "bf16" : "f32");
    printf("%-8s %3s %5s %6s %8s %8s %9s %10s %10s %9s %9s\n", "what", "G", "rows", "steps", "total s", "prefill",
           "step ms", "tokens/s", "decode t/s", "W MB", "KV MB");
    int rc = 0;
    for (int i = 0; rc == 0 && do_caption && i < n_groups; i++) {
        struct decode_result r;
        rc = bench_caption(&m, groups[i], (int)caption_tokens, und_ctx, n_img + UND_TEXT, embeds, n_img, kv, &r,
                           &err);
        r.weight_bytes *= weight_scale;
        r.kv_bytes_mean *= kv_scale;
        if (rc == 0) put(arr, "caption", groups[i], &r);
    }
    for (int i = 0; rc == 0 && do_image && i < n_groups; i++) {
        struct decode_result r;
        rc = bench_image(&m, groups[i], gen_ctx, GEN_CONTEXT, kv, &r, &err);
        r.weight_bytes *= weight_scale;
        r.kv_bytes_mean *= kv_scale;
        if (rc == 0) put(arr, "image", groups[i], &r);
    }
    if (rc) fprintf(stderr, "bench_decode: %s\n", err.msg);
    json_object_set_new(root, "runs", arr);
    if (rc == 0 && json_path && json_dump_file(root, json_path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "bench_decode: cannot write %s\n", json_path);
        rc = 1;
    }
    json_decref(root);
    free(und_ctx);
    free(embeds);
    janus_model_free(&m);
    return rc ? 1 : 0;
}
