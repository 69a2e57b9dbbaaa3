/* Janus image pre/postprocessing against HF JanusImageProcessor fixtures
 * (tests/fixtures/image-processing), plus the config parser, the resize
 * geometry and the no-resize / [-1, 1] input paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/bicubic.h"
#include "harness.h"
#include "image/preprocess.h"
#include "image/png_io.h"

#define FIXDIR "tests/fixtures/image-processing/"
#define S 32

static void fixture_config(struct janus_image_config *c) {
    struct dsr_err err;
    /* processor.json carries the fixture's settings in HF's key names. */
    if (janus_image_config_load(FIXDIR "processor.json", S, c, &err) != 0) {
        fprintf(stderr, "processor.json: %s\n", err.msg);
        janus_image_config_default(c, S);
    }
}

static void test_preprocess_fixtures(struct th *t) {
    struct janus_image_config c;
    fixture_config(&c);
    struct st_file *f = th_open_fixture("image-processing/cases.safetensors");
    const char *names[] = {"wide", "tall", "small", "square"};
    for (size_t i = 0; i < 4; i++) {
        char path[256], key[64];
        snprintf(path, sizeof path, FIXDIR "%s.png", names[i]);
        snprintf(key, sizeof key, "%s.pixel_values", names[i]);
        struct dsr_err err;
        uint8_t *rgb;
        int w, h;
        if (!TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &err) == 0, "%s: %s", path, err.msg))
            continue;
        size_t n;
        float *want = th_tensor_f32(f, key, &n);
        float *got = malloc(sizeof(float) * 3 * S * S);
        TH_CHECK(t, n == 3 * S * S, "%s: %zu values", key, n);
        int rc = janus_image_preprocess(&c, rgb, w, h, got, &err);
        if (TH_CHECK(t, rc == 0, "%s: %s", key, err.msg) && n == 3 * S * S) {
            double max_err = 0;
            size_t n_off = 0; /* values a uint8 level or more away */
            for (size_t j = 0; j < n; j++) {
                double e = fabs((double)got[j] - want[j]);
                max_err = fmax(max_err, e);
                n_off += e > 1e-3;
            }
            printf("  %-6s (%dx%d) max |err| = %.3g, %zu of %zu values off by a level\n", names[i], w, h, max_err,
                   n_off, n);
            TH_CLOSE_ABS(t, key, got, want, n, 2e-2);
            /* The PIL flavour (JanusImageProcessorPil) is within a level. */
            struct janus_image_config pil = c;
            pil.resize_flavor = BICUBIC_PIL;
            if (TH_CHECK(t, janus_image_preprocess(&pil, rgb, w, h, got, &err) == 0, "%s", err.msg))
                TH_CLOSE_ABS(t, key, got, want, n, 1.0 / 127.5 + 1e-6);
        }
        free(got);
        free(want);
        free(rgb);
    }
    st_close(f);
}

static void test_postprocess_fixture(struct th *t) {
    struct janus_image_config c;
    fixture_config(&c);
    struct st_file *f = th_open_fixture("image-processing/cases.safetensors");
    size_t n;
    float *in = th_tensor_f32(f, "post.input", &n);
    const struct st_tensor *ref = st_find(f, "post.uint8");
    if (TH_CHECK(t, n == 3 * S * S && ref && ref->dtype == ST_U8 && ref->numel == n, "fixture shapes")) {
        uint8_t *hwc = malloc(n);
        janus_image_postprocess(&c, in, hwc);
        int max_diff = 0;
        size_t n_diff = 0;
        for (size_t i = 0; i < (size_t)S * S; i++)
            for (int ch = 0; ch < 3; ch++) {
                int d = abs((int)hwc[3 * i + ch] - (int)ref->data[ch * S * S + i]); /* fixture is CHW */
                if (d > max_diff) max_diff = d;
                n_diff += d != 0;
            }
        printf("  postprocess: %zu of %zu values differ, max diff %d\n", n_diff, n, max_diff);
        TH_CHECK(t, max_diff <= 1, "postprocess max diff %d", max_diff);
        free(hwc);
    }
    free(in);
    st_close(f);
}

static void test_resized_size(struct th *t) {
    struct janus_image_config c;
    janus_image_config_default(&c, 384);
    int rw, rh;
    struct {
        int w, h, rw, rh;
    } cases[] = {
        {1000, 500, 384, 192}, /* aspect kept */
        {500, 1000, 192, 384},
        {1000, 10, 384, 14},   /* 3.84 -> min_size */
        {47, 20, 384, 163},    /* HF's int(47 * (384/47)) is 383; the long side stays 384 */
        {640, 480, 384, 288},
        {333, 1000, 128, 384}, /* 127.87 rounds */
        {20, 80, 96, 384},     /* 96.0 */
        {7, 7, 384, 384},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        janus_image_resized_size(&c, cases[i].w, cases[i].h, &rw, &rh);
        TH_CHECK(t, rw == cases[i].rw && rh == cases[i].rh, "%dx%d -> %dx%d, want %dx%d", cases[i].w, cases[i].h,
                 rw, rh, cases[i].rw, cases[i].rh);
    }
    /* Python's round() is half to even: 2.5 -> 2, 3.5 -> 4 */
    c.min_size = 1;
    janus_image_resized_size(&c, 768, 5, &rw, &rh);
    TH_CHECK(t, rw == 384 && rh == 2, "768x5 -> %dx%d, want 384x2", rw, rh);
    janus_image_resized_size(&c, 7, 768, &rw, &rh);
    TH_CHECK(t, rw == 4 && rh == 384, "7x768 -> %dx%d, want 4x384", rw, rh);
    janus_image_config_default(&c, 8); /* min_size above S is capped at S */
    janus_image_resized_size(&c, 100, 10, &rw, &rh);
    TH_CHECK(t, rw == 8 && rh == 8, "S=8: %dx%d", rw, rh);
}

/* Padding: a wide image sits centred vertically on the background. */
static void test_padding_layout(struct th *t) {
    struct janus_image_config c;
    janus_image_config_default(&c, 16);
    c.background[0] = 10, c.background[1] = 20, c.background[2] = 30;
    c.do_normalize = false;
    c.min_size = 1;
    uint8_t img[16 * 5 * 3];
    for (size_t i = 0; i < sizeof img; i++) img[i] = 200; /* uniform: resize keeps 200 */
    float out[3 * 16 * 16];
    struct dsr_err err;
    if (!TH_CHECK(t, janus_image_preprocess(&c, img, 16, 5, out, &err) == 0, "%s", err.msg)) return;
    int bad = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                int inside = y >= 5 && y < 10; /* top = (16 - 5) / 2 */
                float want = (float)((inside ? 200 : c.background[ch]) * (1.0 / 255.0));
                bad += out[(ch * 16 + y) * 16 + x] != want;
            }
    TH_CHECK(t, bad == 0, "%d padded values wrong", bad);
    /* tall: centred horizontally */
    if (!TH_CHECK(t, janus_image_preprocess(&c, img, 5, 16, out, &err) == 0, "%s", err.msg)) return;
    TH_CHECK(t, out[0 * 256 + 3 * 16 + 4] == (float)(10 / 255.0) && out[0 * 256 + 3 * 16 + 5] == (float)(200 / 255.0) &&
                    out[0 * 256 + 3 * 16 + 9] == (float)(200 / 255.0) && out[0 * 256 + 3 * 16 + 10] == (float)(10 / 255.0),
             "tall padding columns");
}

/* Resampler basics: constant images stay constant (weights sum to one),
 * same-size resizes copy, bad sizes are errors. */
static void test_bicubic_basics(struct th *t) {
    struct dsr_err err;
    uint8_t src[4 * 3 * 3], dst[9 * 7 * 3];
    for (int flavor = BICUBIC_TORCH; flavor <= BICUBIC_PIL; flavor++) {
        memset(src, 77, sizeof src);
        TH_CHECK(t, bicubic_resize_rgb8(src, 4, 3, dst, 9, 7, flavor, &err) == 0, "%s", err.msg);
        int bad = 0;
        for (size_t i = 0; i < sizeof dst; i++) bad += dst[i] != 77;
        TH_CHECK(t, bad == 0, "flavor %d: constant image changed in %d values", flavor, bad);
        for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7);
        uint8_t same[sizeof src];
        TH_CHECK(t,
                 bicubic_resize_rgb8(src, 4, 3, same, 4, 3, flavor, &err) == 0 && memcmp(same, src, sizeof src) == 0,
                 "identity resize");
        TH_CHECK(t, bicubic_resize_rgb8(src, 0, 3, dst, 4, 3, flavor, &err) != 0 && err.msg[0], "zero width");
    }
}

/* BICUBIC_PIL against Pillow's own output (tests/fixtures/bicubic-pil),
 * exactly; the torch flavour must differ somewhere on this noise input, or
 * the two modes would not be telling anything apart. */
static void test_bicubic_matches_pillow(struct th *t) {
    const char *dir = "tests/fixtures/bicubic-pil/";
    const int sizes[][2] = {{16, 10}, {80, 50}, {37, 9}, {12, 23}, {50, 11}, {1, 1}, {3, 40}, {5, 4}};
    char path[256];
    struct dsr_err err;
    uint8_t *src;
    int sw, sh;
    snprintf(path, sizeof path, "%ssrc.png", dir);
    if (!TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &src, &sw, &sh, &err) == 0, "%s", err.msg)) return;
    size_t torch_differs = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int w = sizes[i][0], h = sizes[i][1], ew, eh;
        uint8_t *want;
        snprintf(path, sizeof path, "%s%dx%d.png", dir, w, h);
        if (!TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &want, &ew, &eh, &err) == 0, "%s", err.msg)) continue;
        uint8_t *got = malloc((size_t)w * h * 3), *got_t = malloc((size_t)w * h * 3);
        int rc = bicubic_resize_rgb8(src, sw, sh, got, w, h, BICUBIC_PIL, &err);
        rc |= bicubic_resize_rgb8(src, sw, sh, got_t, w, h, BICUBIC_TORCH, &err);
        if (TH_CHECK(t, rc == 0 && ew == w && eh == h, "%dx%d: %s", w, h, err.msg)) {
            size_t n_bad = 0;
            for (size_t j = 0; j < (size_t)w * h * 3; j++) {
                n_bad += got[j] != want[j];
                torch_differs += got_t[j] != want[j];
                TH_CHECK(t, abs((int)got_t[j] - (int)want[j]) <= 1, "torch flavour %dx%d[%zu] off by more than 1",
                         w, h, j);
            }
            TH_CHECK(t, n_bad == 0, "%dx%d: %zu of %d values differ from Pillow", w, h, n_bad, w * h * 3);
        }
        free(got);
        free(got_t);
        free(want);
    }
    printf("  torch flavour: %zu values one level from Pillow's\n", torch_differs);
    TH_CHECK(t, torch_differs > 0, "flavours indistinguishable on noise");
    free(src);
}

static void test_square_and_pm1(struct th *t) {
    struct janus_image_config c;
    janus_image_config_default(&c, 4);
    uint8_t img[4 * 4 * 3];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 5);
    float out[3 * 16];
    struct dsr_err err;
    TH_CHECK(t, janus_image_normalize_square(&c, img, 4, 4, out, &err) == 0, "%s", err.msg);
    TH_CHECK(t, out[0] == -1.0f && fabsf(out[16 + 0] - (5 / 255.0f - 0.5f) / 0.5f) < 1e-6f &&
                    fabsf(out[2 * 16 + 15] - (235 / 255.0f - 0.5f) / 0.5f) < 1e-6f,
             "CHW layout / values");
    TH_CHECK(t, janus_image_normalize_square(&c, img, 4, 3, out, &err) != 0 && strstr(err.msg, "4x3"),
             "non-square rejected");
    /* preprocess of an S x S image equals the no-resize path */
    float full[3 * 16];
    TH_CHECK(t, janus_image_preprocess(&c, img, 4, 4, full, &err) == 0 && memcmp(full, out, sizeof out) == 0,
             "preprocess of S x S skips resampling");

    /* [-1, 1] input: identity (after clamping) for mean = std = 0.5 */
    float in[3 * 16], got[3 * 16];
    for (int i = 0; i < 48; i++) in[i] = -1.5f + i * (3.0f / 47) + 1e-7f * i;
    janus_image_from_pm1(&c, in, got);
    int bad = 0;
    for (int i = 0; i < 48; i++) bad += got[i] != fminf(1.0f, fmaxf(-1.0f, in[i]));
    TH_CHECK(t, bad == 0, "pm1 path not the identity in %d values", bad);
    /* other mean/std: equals uint8-free formula */
    c.image_mean[1] = 0.25, c.image_std[1] = 0.2;
    janus_image_from_pm1(&c, in, got);
    float want = (float)((((double)in[20] + 1) / 2 - 0.25) / 0.2);
    TH_CHECK(t, fabsf(got[20] - want) < 1e-6f, "pm1 with mean .25 std .2: %g vs %g", got[20], want);
}

static void test_postprocess_rounding(struct th *t) {
    struct janus_image_config c;
    janus_image_config_default(&c, 1);
    /* 3 channels of one pixel: -1 -> 0, 1 -> 255, 0 -> 127.5 truncates to 127 */
    float chw[3] = {-1.0f, 1.0f, 0.0f};
    uint8_t px[3];
    janus_image_postprocess(&c, chw, px);
    TH_CHECK(t, px[0] == 0 && px[1] == 255 && px[2] == 127, "got %d %d %d", px[0], px[1], px[2]);
    float wild[3] = {-7.0f, 9.0f, NAN};
    janus_image_postprocess(&c, wild, px);
    TH_CHECK(t, px[0] == 0 && px[1] == 255 && px[2] == 0, "clip: %d %d %d", px[0], px[1], px[2]);
}

static void test_config_parse(struct th *t) {
    struct janus_image_config c;
    struct dsr_err err;
    const char *hf = "{\"background_color\": [127,127,127], \"do_normalize\": true, \"do_pad\": true,"
                     " \"image_mean\": [0.5,0.5,0.5], \"image_std\": [0.5,0.5,0.5], \"min_size\": 14,"
                     " \"resample\": 3, \"rescale_factor\": 0.00392156862745098,"
                     " \"size\": {\"height\": 384, \"width\": 384}}";
    int rc = janus_image_config_parse(hf, strlen(hf), 384, &c, &err);
    TH_CHECK(t, rc == 0, "HF config: %s", err.msg);
    TH_CHECK(t, c.image_size == 384 && c.min_size == 14 && c.background[2] == 127 && c.image_mean[0] == 0.5 &&
                    c.do_normalize && c.resize_flavor == BICUBIC_TORCH,
             "HF config values");
    const char *pil = "{\"image_processor_type\": \"JanusImageProcessorPil\", \"size\": 384}";
    rc = janus_image_config_parse(pil, strlen(pil), 384, &c, &err);
    TH_CHECK(t, rc == 0 && c.resize_flavor == BICUBIC_PIL, "PIL backend selected: %s", err.msg);
    const char *orig = "{\"image_size\": 384, \"image_mean\": [0.48145466, 0.4578275, 0.40821073],"
                       " \"image_std\": 0.25, \"min_size\": 20, \"do_normalize\": false}";
    rc = janus_image_config_parse(orig, strlen(orig), 384, &c, &err);
    TH_CHECK(t, rc == 0, "original Janus config: %s", err.msg);
    TH_CHECK(t, c.background[0] == 122 && c.background[1] == 116 && c.background[2] == 104 && c.image_std[2] == 0.25 &&
                    c.min_size == 20 && !c.do_normalize,
             "derived background %d %d %d", c.background[0], c.background[1], c.background[2]);
    rc = janus_image_config_parse("{}", 2, 224, &c, &err);
    TH_CHECK(t, rc == 0 && c.image_size == 224 && c.background[0] == 127 && c.image_std[1] == 0.5, "defaults");

    const char *bad[] = {
        "[]",
        "{\"size\": 256}",
        "{\"size\": {\"height\": 384, \"width\": 200}}",
        "{\"image_mean\": [0.5, 0.5]}",
        "{\"image_std\": [0.5, 0, 0.5]}",
        "{\"background_color\": [300, 0, 0]}",
        "{\"min_size\": -1}",
        "{\"resample\": 2}",
        "{\"do_pad\": false}",
        "{\"rescale_factor\": \"x\"}",
        "{\"size\": 384",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        rc = janus_image_config_parse(bad[i], strlen(bad[i]), 384, &c, &err);
        TH_CHECK(t, rc != 0 && err.msg[0], "accepted bad config %s", bad[i]);
    }
    rc = janus_image_config_load("tests/fixtures/image-processing/missing.json", 32, &c, &err);
    TH_CHECK(t, rc != 0 && strstr(err.msg, "missing.json"), "missing file: %s", err.msg);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "preprocess_fixtures", test_preprocess_fixtures);
    th_run(&t, "postprocess_fixture", test_postprocess_fixture);
    th_run(&t, "resized_size", test_resized_size);
    th_run(&t, "padding_layout", test_padding_layout);
    th_run(&t, "bicubic_basics", test_bicubic_basics);
    th_run(&t, "bicubic_matches_pillow", test_bicubic_matches_pillow);
    th_run(&t, "square_and_pm1", test_square_and_pm1);
    th_run(&t, "postprocess_rounding", test_postprocess_rounding);
    th_run(&t, "config_parse", test_config_parse);
    return th_finish(&t, "test_preprocess");
}
