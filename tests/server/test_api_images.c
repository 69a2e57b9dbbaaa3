/* JPEG everywhere the HTTP API takes an image: inline under "jpeg" (or
 * "png": the signature decides), as a file under --image-root, as a
 * /logprobs target and a rollout's image.  A JPEG scores exactly as the PNG
 * of its decoded pixels; a corrupt one is a 400 naming the field. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_support.h"
#include "base64.h"
#include "harness.h"
#include "image/jpeg_io.h"
#include "image/png_io.h"

#define TINY "tests/fixtures/janus-tiny"
#define W 40
#define H 24

struct api_test {
    struct th t;
    struct dsrd_proc p;
    char root[64];          /* --image-root, holds photo.jpg */
    char *jpeg_b64, *png_b64; /* the JPEG, and the PNG of its decoded pixels */
};

static double reward0(const struct http_resp *r) {
    return json_number_value(json_object_get(json_array_get(json_object_get(r->json, "items"), 0), "reward"));
}

static void score_und(struct api_test *a, json_t *image, struct http_resp *r) {
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:o,s:{s:s}}]}", "items", "task", "understanding", "image", image, "response",
                             "text", "stripes"),
                   NULL, r);
}

static void test_jpeg_scores_as_its_pixels(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp png, jpg, jpg_in_png, path, gen;
    score_und(a, json_pack("{s:s}", "png", a->png_b64), &png);
    score_und(a, json_pack("{s:s}", "jpeg", a->jpeg_b64), &jpg);
    score_und(a, json_pack("{s:s}", "png", a->jpeg_b64), &jpg_in_png);
    score_und(a, json_pack("{s:s}", "path", "photo.jpg"), &path);
    double want = reward0(&png);
    TH_CHECK(t, png.status == 200 && jpg.status == 200 && jpg_in_png.status == 200 && path.status == 200,
             "status png %ld jpeg %ld jpeg-as-png %ld path %ld (%s)", png.status, jpg.status, jpg_in_png.status,
             path.status, jpg.body ? jpg.body : "");
    TH_CHECK(t, reward0(&jpg) == want && reward0(&jpg_in_png) == want && reward0(&path) == want,
             "R_U png %.9g jpeg %.9g jpeg-as-png %.9g path %.9g", want, reward0(&jpg), reward0(&jpg_in_png),
             reward0(&path));
    /* R_G sees the JPEG through the vision tower */
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:{s:s},s:{s:s}}, {s:s,s:{s:s},s:{s:s}}]}", "items", "task", "generation",
                             "prompt", "text", "stripes", "image", "jpeg", a->jpeg_b64, "task", "generation", "prompt",
                             "text", "stripes", "image", "png", a->png_b64),
                   NULL, &gen);
    json_t *items = json_object_get(gen.json, "items");
    double g0 = json_number_value(json_object_get(json_array_get(items, 0), "reward"));
    double g1 = json_number_value(json_object_get(json_array_get(items, 1), "reward"));
    /* one batched forward: rows may differ in the last float bits */
    TH_CHECK(t, gen.status == 200 && fabs(g0 - g1) <= 1e-6 * fabs(g1) && isfinite(g0), "R_G jpeg %.9g png %.9g (%ld)", g0,
             g1, gen.status);
    http_resp_free(&png);
    http_resp_free(&jpg);
    http_resp_free(&jpg_in_png);
    http_resp_free(&path);
    http_resp_free(&gen);
}

static void test_jpeg_target_and_rollout(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp l, r;
    http_post_json(&a->p, "/logprobs",
                   json_pack("{s:[{s:{s:[i,i]},s:{s:s}}]}", "items", "context", "tokens", 256, 259, "target", "jpeg",
                             a->jpeg_b64),
                   NULL, &l);
    json_t *codes = json_object_get(json_array_get(json_object_get(l.json, "items"), 0), "codes");
    TH_CHECK(t, l.status == 200 && json_array_size(codes) == 64, "/logprobs jpeg target: %ld %s", l.status,
             l.body ? l.body : "");
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i,s:i,s:b}", "task", "understanding", "image", "jpeg", a->jpeg_b64,
                             "n", 2, "max_tokens", 4, "seed", 3, "score", 1),
                   NULL, &r);
    TH_CHECK(t, r.status == 200 && json_array_size(json_object_get(r.json, "rollouts")) == 2, "/rollout jpeg: %ld %s",
             r.status, r.body ? r.body : "");
    http_resp_free(&l);
    http_resp_free(&r);
}

static void expect_400(struct th *t, const struct http_resp *r, const char *param, const char *needle) {
    json_t *e = json_object_get(r->json, "error");
    const char *p = json_string_value(json_object_get(e, "param"));
    const char *m = json_string_value(json_object_get(e, "message"));
    TH_CHECK(t, r->status == 400 && p && strcmp(p, param) == 0 && m && strstr(m, needle), "want 400 %s '%s', got %ld %s",
             param, needle, r->status, r->body ? r->body : "");
}

static void test_bad_jpeg(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    size_t n = strlen(a->jpeg_b64);
    char *cut = strdup(a->jpeg_b64);
    cut[n / 2 / 4 * 4] = 0; /* half the file, still valid base64 */
    struct http_resp r;
    score_und(a, json_pack("{s:s}", "jpeg", cut), &r);
    expect_400(t, &r, "items[0].image.jpeg", "JPEG");
    http_resp_free(&r);
    score_und(a, json_pack("{s:s}", "jpeg", "R0lGODlhAQABAAAAACw="), &r); /* a GIF */
    expect_400(t, &r, "items[0].image.jpeg", "not a PNG or JPEG");
    http_resp_free(&r);
    score_und(a, json_pack("{s:s,s:s}", "jpeg", a->jpeg_b64, "png", a->png_b64), &r);
    expect_400(t, &r, "items[0].image", "exactly one");
    http_resp_free(&r);
    free(cut);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    /* a JPEG, and the PNG of the pixels it decodes to */
    uint8_t rgb[W * H * 3], *jpg = NULL, *dec = NULL, *png = NULL;
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = (uint8_t)(i % W * 6);
        rgb[3 * i + 1] = (uint8_t)(i / W * 10);
        rgb[3 * i + 2] = 200;
    }
    size_t jn = 0, pn = 0;
    int w, h;
    struct dsr_err err = {{0}};
    int ok = jpeg_encode_rgb8(rgb, W, H, 90, 0, &jpg, &jn, &err) == 0 &&
             jpeg_decode_rgb8(jpg, jn, NULL, &dec, &w, &h, &err) == 0 && png_encode_rgb8(dec, w, h, &png, &pn, &err) == 0;
    snprintf(a.root, sizeof a.root, "/tmp/dsr-images-XXXXXX");
    ok = ok && mkdtemp(a.root) != NULL;
    char file[128];
    snprintf(file, sizeof file, "%s/photo.jpg", a.root);
    FILE *f = ok ? fopen(file, "wb") : NULL;
    ok = ok && f && fwrite(jpg, 1, jn, f) == jn;
    if (f) fclose(f);
    a.jpeg_b64 = base64_encode(jpg, jn);
    a.png_b64 = png ? base64_encode(png, pn) : NULL;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--image-root", a.root, NULL};
    if (ok) dsrd_start(&a.p, argv[0], args);
    if (TH_CHECK(&a.t, ok && a.p.pid > 0, "set-up: %s; dsrd log %s", err.msg, a.p.log_path)) {
        th_run(&a.t, "jpeg_scores_as_its_pixels", test_jpeg_scores_as_its_pixels);
        th_run(&a.t, "jpeg_target_and_rollout", test_jpeg_target_and_rollout);
        th_run(&a.t, "bad_jpeg", test_bad_jpeg);
        dsrd_stop(&a.p);
    } else {
        a.t.failed++;
    }
    unlink(file);
    rmdir(a.root);
    free(jpg);
    free(dec);
    free(png);
    free(a.jpeg_b64);
    free(a.png_b64);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_images");
}
