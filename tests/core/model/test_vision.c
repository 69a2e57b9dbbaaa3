/* Vision tower + aligner against HF transformers (janus-tiny fixture):
 * pixel_values → last_hidden_state (after post_layernorm) → image_embeds;
 * batching independence; argument and binding errors.  With DSR_SLOW=1 also
 * times the tower at the full Janus-Pro shape on random weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "io/model_config.h"
#include "nn/ops.h"
#include "model/params.h"
#include "io/safetensors_dir.h"
#include "model/vision.h"

#define TINY_DIR "tests/fixtures/janus-tiny"

/* Loaded tiny model: config, parameter table and bound vision weights. */
struct tiny {
    struct janus_config cfg;
    struct param_table pt;
    struct vision_model *vm;
};

/* Prints max|got-want| / max|want| so the report shows the margin. */
static void print_rel_err(const char *what, const float *got, const float *want, size_t n) {
    double maxmag = 0, maxerr = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        maxmag = fmax(maxmag, fabs((double)want[i]));
        maxerr = fmax(maxerr, e);
    }
    printf("  %s: max rel err %.3g\n", what, maxerr / fmax(maxmag, 1e-30));
}

static int tiny_load(struct th *t, struct tiny *m) {
    struct dsr_err err = {{0}};
    struct st_set set = {0};
    pt_init(&m->pt);
    m->vm = NULL;
    int rc = janus_config_load(TINY_DIR "/config.json", &m->cfg, &err);
    if (!TH_CHECK(t, rc == 0, "config: %s", err.msg)) return -1;
    rc = vision_declare(&m->cfg, true, &m->pt, &err) || pt_alloc(&m->pt, &err);
    if (!TH_CHECK(t, rc == 0, "declare/alloc: %s", err.msg)) return -1;
    rc = st_set_open_dir(TINY_DIR, &set, &err);
    if (!TH_CHECK(t, rc == 0, "open checkpoint: %s", err.msg)) return -1;
    rc = pt_load(&m->pt, &set, &err);
    st_set_close(&set);
    if (!TH_CHECK(t, rc == 0, "load: %s", err.msg)) return -1;
    rc = vision_bind(&m->cfg, NULL, &m->pt, &m->vm, &err);
    if (!TH_CHECK(t, rc == 0, "bind: %s", err.msg)) return -1;
    return 0;
}

static void tiny_free(struct tiny *m) {
    vision_free(m->vm);
    pt_free(&m->pt);
}

static void test_tiny_matches_hf(struct th *t) {
    struct tiny m;
    if (tiny_load(t, &m) == 0) {
        struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
        size_t n_px, n_feat, n_emb;
        float *px = th_tensor_f32(cases, "vision.pixel_values", &n_px);
        float *want_feat = th_tensor_f32(cases, "vision.last_hidden_state", &n_feat);
        float *want_emb = th_tensor_f32(cases, "vision.image_embeds", &n_emb);
        const struct vision_config *v = &m.cfg.vision;
        size_t per_image = (size_t)v->num_channels * v->image_size * v->image_size;
        int n_images = (int)(n_px / per_image);
        int rows = n_images * v->num_image_tokens;
        TH_CHECK(t, n_px == per_image * (size_t)n_images && n_images >= 1, "pixel_values size %zu", n_px);
        TH_CHECK(t, n_feat == (size_t)rows * v->hidden_size, "last_hidden_state size %zu", n_feat);
        TH_CHECK(t, n_emb == (size_t)rows * v->projection_dim, "image_embeds size %zu", n_emb);

        float *feat = malloc(n_feat * sizeof(float));
        float *emb = malloc(n_emb * sizeof(float));
        struct dsr_err err = {{0}};
        int rc = vision_tower_forward(m.vm, px, n_images, feat, &err);
        if (TH_CHECK(t, rc == 0, "tower: %s", err.msg)) {
            TH_CLOSE(t, "vision.last_hidden_state", feat, want_feat, n_feat, 1e-4);
            print_rel_err("vision.last_hidden_state", feat, want_feat, n_feat);
            /* The aligner on the fixture's own features isolates its error. */
            rc = vision_aligner_forward(m.vm, want_feat, rows, emb, &err);
            if (TH_CHECK(t, rc == 0, "aligner: %s", err.msg))
                TH_CLOSE(t, "vision.image_embeds (aligner only)", emb, want_emb, n_emb, 1e-4);
            rc = vision_aligner_forward(m.vm, feat, rows, emb, &err);
            if (TH_CHECK(t, rc == 0, "aligner: %s", err.msg)) {
                TH_CLOSE(t, "vision.image_embeds", emb, want_emb, n_emb, 1e-4);
                print_rel_err("vision.image_embeds", emb, want_emb, n_emb);
            }
        }
        free(feat);
        free(emb);
        free(px);
        free(want_feat);
        free(want_emb);
        st_close(cases);
    }
    tiny_free(&m);
}

/* Two different images in one call give what each gives alone. */
static void test_batch_matches_single(struct th *t) {
    struct tiny m;
    if (tiny_load(t, &m) == 0) {
        const struct vision_config *v = &m.cfg.vision;
        size_t per_image = (size_t)v->num_channels * v->image_size * v->image_size;
        size_t per_feat = (size_t)v->num_image_tokens * v->hidden_size;
        float *px = malloc(2 * per_image * sizeof(float));
        float *batch = malloc(2 * per_feat * sizeof(float));
        float *single = malloc(per_feat * sizeof(float));
        /* Deterministic, distinct images in [-1, 1]. */
        for (size_t i = 0; i < 2 * per_image; i++) px[i] = (float)((i * 7919 % 2001) / 1000.0 - 1.0);

        struct dsr_err err = {{0}};
        int rc = vision_tower_forward(m.vm, px, 2, batch, &err);
        TH_CHECK(t, rc == 0, "batch: %s", err.msg);
        for (int img = 0; rc == 0 && img < 2; img++) {
            rc = vision_tower_forward(m.vm, px + img * per_image, 1, single, &err);
            if (!TH_CHECK(t, rc == 0, "single %d: %s", img, err.msg)) break;
            TH_CLOSE(t, img == 0 ? "image 0" : "image 1", batch + img * per_feat, single, per_feat, 1e-6);
        }
        /* The two images really differ, so the comparison above is not trivial. */
        double diff = 0;
        for (size_t i = 0; i < per_feat; i++) diff += (double)(batch[i] - batch[per_feat + i]) * (batch[i] - batch[per_feat + i]);
        TH_CHECK(t, diff > 1e-3, "the two images gave identical features");
        free(px);
        free(batch);
        free(single);
    }
    tiny_free(&m);
}

static void test_errors(struct th *t) {
    struct tiny m;
    if (tiny_load(t, &m) == 0) {
        struct dsr_err err = {{0}};
        float dummy[4] = {0};
        TH_CHECK(t, vision_tower_forward(m.vm, dummy, 0, dummy, &err) != 0 && err.msg[0], "0 images accepted");
        err.msg[0] = '\0';
        TH_CHECK(t, vision_aligner_forward(m.vm, dummy, -1, dummy, &err) != 0 && err.msg[0], "-1 rows accepted");
    }
    tiny_free(&m);

    /* Binding against a table without the vision tensors names what is missing. */
    struct janus_config c;
    struct param_table empty;
    struct vision_model *vm = NULL;
    struct dsr_err err = {{0}};
    janus_config_defaults(&c);
    pt_init(&empty);
    int rc = vision_bind(&c, NULL, &empty, &vm, &err);
    TH_CHECK(t, rc != 0 && vm == NULL && strstr(err.msg, "patch_embedding"), "bind on empty table: %s", err.msg);
    pt_free(&empty);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Full Janus-Pro vision shape on random weights: a timing print, no assertion
 * beyond "it runs" (the numbers themselves are checked on janus-tiny). */
static void test_janus_pro_timing(struct th *t) {
    const char *slow = getenv("DSR_SLOW");
    if (!slow || strcmp(slow, "1") != 0) return;
    struct janus_config c;
    janus_config_defaults(&c);
    struct vision_config *v = &c.vision;
    v->hidden_size = 1024;
    v->n_layers = 24;
    v->n_heads = 16;
    v->intermediate_size = 4096;
    v->image_size = 384;
    v->patch_size = 16;
    v->num_image_tokens = 576;
    v->projection_dim = 2048;
    v->depth = 2;

    struct param_table pt;
    struct vision_model *vm = NULL;
    struct dsr_err err = {{0}};
    pt_init(&pt);
    int rc = vision_declare(&c, true, &pt, &err) || pt_alloc(&pt, &err);
    if (TH_CHECK(t, rc == 0, "declare/alloc: %s", err.msg)) {
        pt_init_random(&pt, 1234);
        rc = vision_bind(&c, NULL, &pt, &vm, &err);
        TH_CHECK(t, rc == 0, "bind: %s", err.msg);
    }
    if (rc == 0) {
        size_t n_px = (size_t)3 * 384 * 384, rows = 576;
        float *px = malloc(n_px * sizeof(float));
        float *feat = malloc(rows * 1024 * sizeof(float));
        float *emb = malloc(rows * 2048 * sizeof(float));
        for (size_t i = 0; i < n_px; i++) px[i] = (float)((i * 7919 % 2001) / 1000.0 - 1.0);
        /* ≈ 2·params·tokens for the linears + 4·T²·D per layer for attention */
        double flops = 24 * (2.0 * 576 * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096) + 4.0 * 576 * 576 * 1024);
        /* The first run also pays for thread start-up and page faults. */
        for (int run = 0; rc == 0 && run < 2; run++) {
            double t0 = now_s();
            rc = vision_tower_forward(vm, px, 1, feat, &err);
            double t1 = now_s();
            if (rc == 0) rc = vision_aligner_forward(vm, feat, (int)rows, emb, &err);
            double t2 = now_s();
            if (!TH_CHECK(t, rc == 0, "forward: %s", err.msg)) break;
            printf("  janus-pro vision tower, %s run (1 image, 576 tokens, %zu params, %d threads): %.3f s "
                   "(%.1f GFLOP/s); aligner %.3f s\n",
                   run == 0 ? "cold" : "warm", pt_count(&pt, false), dsr_get_threads(), t1 - t0,
                   flops / (t1 - t0) * 1e-9, t2 - t1);
        }
        free(px);
        free(feat);
        free(emb);
    }
    vision_free(vm);
    pt_free(&pt);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "tiny_matches_hf", test_tiny_matches_hf);
    th_run(&t, "batch_matches_single", test_batch_matches_single);
    th_run(&t, "errors", test_errors);
    th_run(&t, "janus_pro_timing", test_janus_pro_timing);
    return th_finish(&t, "test_vision");
}
