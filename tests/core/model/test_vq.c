/* VQ-VAE against the janus-tiny fixtures (HF JanusVQVAE in float64): encoder
 * output, quant_conv output, codes in both quantizer modes, decoded images;
 * batching; error cases; and a timed decode at the full Janus-Pro VQ shape
 * (24×24 codes → 384×384, and the encoder back) with random weights
 * (seconds on 2 cores, also under ASan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "io/model_config.h"
#include "model/params.h"
#include "io/safetensors_dir.h"
#include "model/vq.h"

#define TINY_DIR "tests/fixtures/janus-tiny"

struct tiny {
    struct janus_config cfg;
    struct param_table pt;
    struct vq_model *vq;
};

/* Loads janus-tiny's VQ-VAE; returns 0 and records a failure otherwise. */
static int tiny_load(struct th *t, struct tiny *m) {
    struct dsr_err err = {{0}};
    struct st_set set = {0};
    pt_init(&m->pt);
    m->vq = NULL;
    int ok = TH_CHECK(t, janus_config_load(TINY_DIR "/config.json", &m->cfg, &err) == 0, "config: %s", err.msg) &&
             TH_CHECK(t, vq_declare(&m->cfg, &m->pt, &err) == 0, "declare: %s", err.msg) &&
             TH_CHECK(t, pt_alloc(&m->pt, &err) == 0, "alloc: %s", err.msg) &&
             TH_CHECK(t, st_set_open_dir(TINY_DIR, &set, &err) == 0, "open: %s", err.msg) &&
             TH_CHECK(t, pt_load(&m->pt, &set, &err) == 0, "load: %s", err.msg) &&
             TH_CHECK(t, vq_bind(&m->cfg, &m->pt, &m->vq, &err) == 0, "bind: %s", err.msg);
    st_set_close(&set);
    return ok;
}

static void tiny_free(struct tiny *m) {
    vq_free(m->vq);
    pt_free(&m->pt);
}

static double max_rel_err(const float *got, const float *want, size_t n) {
    double mag = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        mag = fmax(mag, fabs(want[i]));
        double d = fabs((double)got[i] - want[i]);
        e = isnan(d) ? INFINITY : fmax(e, d);
    }
    return e / fmax(mag, 1e-30);
}

static void close_and_report(struct th *t, const char *what, const float *got, const float *want, size_t n) {
    printf("  %-18s max rel err %.3g\n", what, max_rel_err(got, want, n));
    TH_CLOSE(t, what, got, want, n, 1e-4);
}

static int codes_equal(const int32_t *got, const int64_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

/* Every model.vqmodel.* tensor of the checkpoint is declared, and nothing else. */
static void test_declares_all_vq_tensors(struct th *t) {
    struct tiny m;
    if (!tiny_load(t, &m)) return tiny_free(&m);
    FILE *f = fopen(TINY_DIR "/weights.txt", "r");
    if (!TH_CHECK(t, f != NULL, "weights.txt missing")) return tiny_free(&m);
    char line[512];
    size_t in_file = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model.vqmodel.", 14) == 0) in_file++;
    fclose(f);
    size_t vq_declared = 0;
    for (size_t i = 0; i < m.pt.n; i++) {
        vq_declared += strncmp(m.pt.items[i].name, "model.vqmodel.", 14) == 0;
        TH_CHECK(t, !m.pt.items[i].trainable, "%s declared trainable", m.pt.items[i].name);
    }
    TH_CHECK(t, vq_declared == m.pt.n, "declared %zu tensors outside model.vqmodel", m.pt.n - vq_declared);
    TH_CHECK(t, vq_declared == in_file, "declared %zu vq tensors, checkpoint has %zu", vq_declared, in_file);
    TH_CHECK(t, vq_image_size(&m.cfg) == 32, "image size %d", vq_image_size(&m.cfg));
    tiny_free(&m);
}

static void test_encode(struct th *t) {
    struct tiny m;
    if (!tiny_load(t, &m)) return tiny_free(&m);
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t n_px, n_enc, n_qin, n_codes, n_l2;
    float *px = th_tensor_f32(cases, "vq.pixel_values", &n_px);
    float *want_enc = th_tensor_f32(cases, "vq.encoder_out", &n_enc);
    float *want_qin = th_tensor_f32(cases, "vq.quant_in", &n_qin);
    int64_t *want_codes = th_tensor_i64(cases, "vq.codes", &n_codes);
    int64_t *want_l2 = th_tensor_i64(cases, "vq.codes_l2", &n_l2);
    const struct vq_config *q = &m.cfg.vq;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    TH_CHECK(t, n_px == (size_t)q->in_channels * 32 * 32 && n_enc == q->latent_channels * P2 &&
                    n_qin == q->embed_dim * P2 && n_codes == P2 && n_l2 == P2,
             "fixture shapes");

    float *enc = malloc(n_enc * sizeof *enc), *qin = malloc(n_qin * sizeof *qin);
    int32_t *codes = malloc(P2 * sizeof *codes);
    struct dsr_err err = {{0}};
    int rc = vq_encode(m.vq, px, 1, VQ_QUANT_EUCLIDEAN, codes, enc, qin, &err);
    if (TH_CHECK(t, rc == 0, "encode: %s", err.msg)) {
        close_and_report(t, "vq.encoder_out", enc, want_enc, n_enc);
        close_and_report(t, "vq.quant_in", qin, want_qin, n_qin);
        TH_CHECK(t, codes_equal(codes, want_codes, P2), "vq.codes (euclidean) differ");
    }
    rc = vq_encode(m.vq, px, 1, VQ_QUANT_L2, codes, NULL, NULL, &err);
    if (TH_CHECK(t, rc == 0, "encode l2: %s", err.msg))
        TH_CHECK(t, codes_equal(codes, want_l2, P2), "vq.codes_l2 differ");
    /* the two modes really disagree somewhere on this image, so each check can fail */
    TH_CHECK(t, !codes_equal(codes, want_codes, P2), "fixture cannot tell the quantizers apart");

    /* batch of two: the fixture image and its mirror; the first must be unchanged */
    float *px2 = malloc(2 * n_px * sizeof *px2);
    int32_t *codes2 = malloc(2 * P2 * sizeof *codes2), *mirror_codes = malloc(P2 * sizeof *mirror_codes);
    memcpy(px2, px, n_px * sizeof *px);
    const int S = 32;
    for (size_t c = 0; c < (size_t)q->in_channels; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) px2[n_px + (c * S + y) * S + x] = px[(c * S + y) * S + (S - 1 - x)];
    rc = vq_encode(m.vq, px2, 2, VQ_QUANT_EUCLIDEAN, codes2, NULL, NULL, &err) ||
         vq_encode(m.vq, px2 + n_px, 1, VQ_QUANT_EUCLIDEAN, mirror_codes, NULL, NULL, &err);
    if (TH_CHECK(t, rc == 0, "batch encode: %s", err.msg)) {
        TH_CHECK(t, codes_equal(codes2, want_codes, P2), "batch image 0 codes differ");
        TH_CHECK(t, memcmp(codes2 + P2, mirror_codes, P2 * sizeof *codes2) == 0, "batch image 1 codes differ");
    }
    free(px2);
    free(codes2);
    free(mirror_codes);
    free(enc);
    free(qin);
    free(codes);
    free(px);
    free(want_enc);
    free(want_qin);
    free(want_codes);
    free(want_l2);
    st_close(cases);
    tiny_free(&m);
}

static void test_decode(struct th *t) {
    struct tiny m;
    if (!tiny_load(t, &m)) return tiny_free(&m);
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t n_codes, n_rand, n_dec, n_dec_rand;
    int32_t *codes = th_tensor_i32(cases, "vq.codes", &n_codes);
    int32_t *rand_codes = th_tensor_i32(cases, "vq.random_codes", &n_rand);
    float *want_dec = th_tensor_f32(cases, "vq.decoded", &n_dec);
    float *want_rand = th_tensor_f32(cases, "vq.decoded_random", &n_dec_rand);
    TH_CHECK(t, n_codes == 64 && n_rand == 64 && n_dec == 3 * 32 * 32 && n_dec_rand == n_dec, "fixture shapes");

    /* both code rows as one batch of two */
    int32_t both[128];
    memcpy(both, codes, 64 * sizeof *both);
    memcpy(both + 64, rand_codes, 64 * sizeof *both);
    float *px = malloc(2 * n_dec * sizeof *px);
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, vq_decode(m.vq, both, 2, px, &err) == 0, "decode: %s", err.msg)) {
        close_and_report(t, "vq.decoded", px, want_dec, n_dec);
        close_and_report(t, "vq.decoded_random", px + n_dec, want_rand, n_dec);
    }
    free(px);
    free(codes);
    free(rand_codes);
    free(want_dec);
    free(want_rand);
    st_close(cases);
    tiny_free(&m);
}

static void test_errors(struct th *t) {
    struct tiny m;
    if (!tiny_load(t, &m)) return tiny_free(&m);
    int32_t codes[64] = {0};
    float *px = malloc(3 * 32 * 32 * sizeof *px);
    struct dsr_err err = {{0}};
    codes[17] = 96; /* == num_embeddings */
    TH_CHECK(t, vq_decode(m.vq, codes, 1, px, &err) != 0 && strstr(err.msg, "96"), "code 96 accepted: %s", err.msg);
    codes[17] = -1;
    TH_CHECK(t, vq_decode(m.vq, codes, 1, px, &err) != 0 && strstr(err.msg, "-1"), "code -1 accepted: %s", err.msg);
    TH_CHECK(t, vq_decode(m.vq, codes, -1, px, &err) != 0, "negative count accepted");
    TH_CHECK(t, vq_encode(m.vq, px, -2, VQ_QUANT_L2, codes, NULL, NULL, &err) != 0, "negative count accepted");
    free(px);

    /* binding against a table that lacks the tensors names the first one */
    struct param_table empty;
    struct vq_model *vq = NULL;
    pt_init(&empty);
    TH_CHECK(t, vq_bind(&m.cfg, &empty, &vq, &err) != 0 && vq == NULL && strstr(err.msg, "model.vqmodel."),
             "bind on empty table: %s", err.msg);
    pt_free(&empty);

    /* unsupported configs are rejected before anything is declared */
    struct janus_config bad = m.cfg;
    bad.vq.ch_mult[1] = 0;
    struct param_table pt;
    pt_init(&pt);
    TH_CHECK(t, vq_declare(&bad, &pt, &err) != 0 && pt.n == 0, "zero channel multiplier accepted");
    bad = m.cfg;
    bad.vq.base_channels = 48; /* 48·1 channels: not a multiple of 32 groups */
    TH_CHECK(t, vq_declare(&bad, &pt, &err) != 0 && vq_image_size(&bad) == 0, "48 channels accepted");
    bad = m.cfg;
    bad.vq.double_latent = true;
    TH_CHECK(t, vq_declare(&bad, &pt, &err) != 0, "double_latent accepted");
    bad = m.cfg;
    bad.vq.num_patches = 1 << 20;
    TH_CHECK(t, vq_declare(&bad, &pt, &err) != 0, "huge num_patches accepted");
    pt_free(&pt);
    tiny_free(&m);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Janus-Pro's VQ-16 shape with random weights: 24×24 codes → 3×384×384. */
static void test_full_shape_decode(struct th *t) {
    struct janus_config c;
    janus_config_defaults(&c);
    const int mult[5] = {1, 1, 2, 2, 4};
    c.vq.base_channels = 128;
    c.vq.n_ch_mult = 5;
    memcpy(c.vq.ch_mult, mult, sizeof mult);
    c.vq.num_res_blocks = 2;
    c.vq.latent_channels = 256;
    c.vq.embed_dim = 8;
    c.vq.num_embeddings = 16384;
    c.vq.num_patches = 24;
    c.vq.in_channels = c.vq.out_channels = 3;
    c.vq.double_latent = false;
    TH_CHECK(t, vq_image_size(&c) == 384, "image size %d", vq_image_size(&c));

    struct param_table pt;
    struct vq_model *vq = NULL;
    struct dsr_err err = {{0}};
    pt_init(&pt);
    if (!TH_CHECK(t, vq_declare(&c, &pt, &err) == 0 && pt_alloc(&pt, &err) == 0, "declare: %s", err.msg)) {
        pt_free(&pt);
        return;
    }
    pt_init_random(&pt, 1234);
    if (!TH_CHECK(t, vq_bind(&c, &pt, &vq, &err) == 0, "bind: %s", err.msg)) {
        pt_free(&pt);
        return;
    }
    const size_t n_codes = 24 * 24, n_px = (size_t)3 * 384 * 384;
    int32_t *codes = malloc(n_codes * sizeof *codes);
    float *px = malloc(n_px * sizeof *px);
    for (size_t i = 0; i < n_codes; i++) codes[i] = (int32_t)((i * 7919u + 13u) % 16384u);
    double t0 = now_s();
    int rc = vq_decode(vq, codes, 1, px, &err);
    double dt = now_s() - t0;
    if (TH_CHECK(t, rc == 0, "decode: %s", err.msg)) {
        size_t bad = 0;
        double mag = 0;
        for (size_t i = 0; i < n_px; i++) {
            bad += !isfinite(px[i]);
            mag = fmax(mag, fabs(px[i]));
        }
        TH_CHECK(t, bad == 0, "%zu non-finite pixels", bad);
        TH_CHECK(t, mag > 0, "all-zero image");
        printf("  decode 24x24 codes -> 3x384x384: %.2f s (%zu VQ parameters, max |pixel| %.3g)\n", dt,
               pt_count(&pt, false), mag);
        /* and back: the encoder at full size yields in-range codes */
        int32_t *back = malloc(n_codes * sizeof *back);
        t0 = now_s();
        rc = vq_encode(vq, px, 1, VQ_QUANT_L2, back, NULL, NULL, &err);
        dt = now_s() - t0;
        if (TH_CHECK(t, rc == 0, "encode: %s", err.msg)) {
            size_t out_of_range = 0;
            for (size_t i = 0; i < n_codes; i++) out_of_range += back[i] < 0 || back[i] >= 16384;
            TH_CHECK(t, out_of_range == 0, "%zu codes out of range", out_of_range);
            printf("  encode 3x384x384 -> 24x24 codes: %.2f s\n", dt);
        }
        free(back);
    }
    free(codes);
    free(px);
    vq_free(vq);
    pt_free(&pt);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "declares_all_vq_tensors", test_declares_all_vq_tensors);
    th_run(&t, "encode", test_encode);
    th_run(&t, "decode", test_decode);
    th_run(&t, "errors", test_errors);
    th_run(&t, "full_shape_decode", test_full_shape_decode);
    return th_finish(&t, "test_vq");
}
