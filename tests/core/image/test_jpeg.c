/* JPEG decoding (core/image/jpeg_io.c) and format sniffing (core/image/image_io.c):
 * colour and grey files decode to RGB close to their source, and the
 * untrusted-input cases PNG is held to — truncation, random corruption,
 * oversized frame headers, caller limits, silence on stderr — hold too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "image/image_io.h"
#include "image/jpeg_io.h"
#include "image/png_io.h"

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* A smooth w x h gradient (JPEG's best case: errors stay small). */
static uint8_t *gradient(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 255 / (w - 1));
            q[1] = (uint8_t)(y * 255 / (h - 1));
            q[2] = (uint8_t)(128 + (x - y) / 4);
        }
    return p;
}

static uint8_t *encode(int w, int h, int progressive, size_t *n) {
    uint8_t *src = gradient(w, h), *jpg = NULL;
    struct dsr_err err = {{0}};
    if (jpeg_encode_rgb8(src, w, h, 95, progressive, &jpg, n, &err)) fprintf(stderr, "encode: %s\n", err.msg);
    free(src);
    return jpg;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs((int)a[i] - (int)b[i]);
    return s / (double)n;
}

static void test_round_trip(struct th *t) {
    for (int progressive = 0; progressive < 2; progressive++) {
        size_t n;
        uint8_t *jpg = encode(40, 24, progressive, &n), *rgb = NULL;
        int w = 0, h = 0;
        struct dsr_err err = {{0}};
        if (!TH_CHECK(t, jpg && image_sniff(jpg, n) == IMAGE_JPEG, "encode/sniff")) continue;
        /* through the format-neutral entry point, as the API decodes */
        if (TH_CHECK(t, image_decode_rgb8(jpg, n, NULL, &rgb, &w, &h, &err) == 0, "decode: %s", err.msg)) {
            uint8_t *src = gradient(40, 24);
            double d = mean_abs_diff(rgb, src, (size_t)40 * 24 * 3);
            TH_CHECK(t, w == 40 && h == 24 && d < 3.0, "progressive %d: %dx%d, mean |diff| %.2f", progressive, w, h, d);
            free(src);
        }
        free(rgb);
        free(jpg);
    }
}

/* A one-component file: grey replicated into R, G and B. */
static void test_grayscale(struct th *t) {
    int w = 16, h = 8;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)(i * 2);
    uint8_t *jpg = NULL, *out = NULL;
    size_t n = 0;
    struct dsr_err err = {{0}};
    int rc = jpeg_encode_rgb8(rgb, w, h, 100, JPEG_GRAYSCALE, &jpg, &n, &err);
    TH_CHECK(t, rc == 0, "encode: %s", err.msg);
    int ow, oh;
    if (rc == 0 && TH_CHECK(t, jpeg_decode_rgb8(jpg, n, NULL, &out, &ow, &oh, &err) == 0, "%s", err.msg)) {
        int grey = 1;
        for (int i = 0; i < w * h; i++) grey &= abs(out[3 * i] - out[3 * i + 1]) <= 2 && abs(out[3 * i] - out[3 * i + 2]) <= 2;
        TH_CHECK(t, grey && mean_abs_diff(out, rgb, (size_t)w * h * 3) < 2.0, "grey image not grey");
    }
    free(out);
    free(jpg);
    free(rgb);
}

static int rejected(const uint8_t *p, size_t n, const struct png_limits *lim, char *msg, size_t cap) {
    uint8_t *rgb = (uint8_t *)1;
    int w = -1, h = -1;
    struct dsr_err err = {{0}};
    int rc = jpeg_decode_rgb8(p, n, lim, &rgb, &w, &h, &err);
    if (msg) snprintf(msg, cap, "%s", err.msg);
    if (rc == 0) free(rgb);
    return rc != 0 && rgb == NULL && err.msg[0];
}

/* Every prefix is refused: libjpeg would grey-fill the missing rows. */
static void test_truncated(struct th *t) {
    size_t n;
    uint8_t *jpg = encode(24, 16, 0, &n);
    if (!TH_CHECK(t, jpg != NULL, "encode")) return;
    int accepted = 0;
    for (size_t len = 0; len + 2 < n; len++) { /* the last two bytes are the EOI marker */
        uint8_t *copy = malloc(len ? len : 1); /* exact-size copy: ASan sees any over-read */
        memcpy(copy, jpg, len);
        if (!rejected(copy, len, NULL, NULL, 0)) accepted++;
        free(copy);
    }
    TH_CHECK(t, accepted == 0, "%d of %zu truncations accepted", accepted, n - 2);
    char msg[DSR_ERR_MSG_MAX];
    TH_CHECK(t, rejected(jpg, n - 3, NULL, msg, sizeof msg) && strstr(msg, "truncated"), "cut in the scan: %s", msg);
    free(jpg);
}

/* Random multi-byte corruption of baseline and progressive files: never a
 * crash or leak (ASan), anything accepted has its declared size.  JPEG has
 * no checksums, so damaged entropy data may still decode. */
static void test_random_corruption(struct th *t) {
    uint32_t seed = 91;
    int accepted = 0, total = 0;
    for (int progressive = 0; progressive < 2; progressive++) {
        size_t n;
        uint8_t *jpg = encode(33, 17, progressive, &n);
        if (!TH_CHECK(t, jpg != NULL, "encode")) continue;
        uint8_t *copy = malloc(n);
        for (int iter = 0; iter < 600; iter++, total++) {
            memcpy(copy, jpg, n);
            int nflip = 1 + (int)(lcg(&seed) % 4);
            for (int f = 0; f < nflip; f++) copy[3 + lcg(&seed) % (n - 3)] = (uint8_t)lcg(&seed);
            uint8_t *rgb = NULL;
            int w = 0, h = 0;
            struct dsr_err err = {{0}};
            if (jpeg_decode_rgb8(copy, n, NULL, &rgb, &w, &h, &err) == 0) {
                accepted++;
                TH_CHECK(t, rgb && w > 0 && h > 0 && (uint64_t)w * h <= PNG_DEFAULT_MAX_PIXELS, "sizes %dx%d", w, h);
                if (rgb) rgb[(size_t)w * h * 3 - 1] ^= 1; /* the whole buffer is writable */
                free(rgb);
            } else {
                TH_CHECK(t, rgb == NULL && err.msg[0], "failure without a message");
            }
        }
        free(copy);
        free(jpg);
    }
    printf("  random corruption: %d of %d mutants still decoded\n", accepted, total);
}

/* The SOF0 frame header's height and width, rewritten in place. */
static int set_dims(uint8_t *p, size_t n, unsigned w, unsigned h) {
    for (size_t i = 2; i + 9 < n; i++)
        if (p[i] == 0xFF && (p[i + 1] == 0xC0 || p[i + 1] == 0xC2)) {
            p[i + 5] = (uint8_t)(h >> 8), p[i + 6] = (uint8_t)h;
            p[i + 7] = (uint8_t)(w >> 8), p[i + 8] = (uint8_t)w;
            return 0;
        }
    return -1;
}

static void test_oversized(struct th *t) {
    size_t n;
    uint8_t *jpg = encode(6, 5, 0, &n);
    if (!TH_CHECK(t, jpg != NULL, "encode")) return;
    char msg[DSR_ERR_MSG_MAX];
    const unsigned claims[][2] = {{65000, 65000}, {40000, 2}, {2, 40000}, {8193, 8193}};
    for (size_t i = 0; i < 4; i++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, jpg, n);
        TH_CHECK(t, set_dims(copy, n, claims[i][0], claims[i][1]) == 0, "no SOF marker");
        TH_CHECK(t, rejected(copy, n, NULL, msg, sizeof msg) && strstr(msg, "limit"), "%ux%u: %s", claims[i][0],
                 claims[i][1], msg);
        free(copy);
    }
    /* caller-set limits, on the real 6x5 image */
    uint8_t *rgb;
    int w, h;
    struct dsr_err err = {{0}};
    struct png_limits lim = {6, 5, 30};
    if (TH_CHECK(t, jpeg_decode_rgb8(jpg, n, &lim, &rgb, &w, &h, &err) == 0, "at the limits: %s", err.msg)) free(rgb);
    struct png_limits tight[] = {{5, 5, 30}, {6, 4, 30}, {6, 5, 29}};
    for (size_t i = 0; i < 3; i++)
        TH_CHECK(t, rejected(jpg, n, &tight[i], msg, sizeof msg) && strstr(msg, "6x5"), "limit %zu: %s", i, msg);
    free(jpg);
}

static void test_not_jpeg(struct th *t) {
    static const uint8_t junk[] = "GIF89a....";
    char msg[DSR_ERR_MSG_MAX];
    TH_CHECK(t, rejected(junk, sizeof junk, NULL, msg, sizeof msg) && strstr(msg, "not a JPEG"), "%s", msg);
    TH_CHECK(t, rejected(NULL, 0, NULL, msg, sizeof msg), "empty accepted");
    uint8_t *rgb = NULL;
    int w, h;
    struct dsr_err err = {{0}};
    TH_CHECK(t, image_decode_rgb8(junk, sizeof junk, NULL, &rgb, &w, &h, &err) != 0 && strstr(err.msg, "PNG or JPEG"),
             "sniffing junk: %s", err.msg);
    /* the PNG path is unchanged through image_decode_rgb8 */
    uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, *png = NULL;
    size_t pn = 0;
    if (TH_CHECK(t, png_encode_rgb8(px, 2, 2, &png, &pn, &err) == 0, "png encode") &&
        TH_CHECK(t, image_decode_rgb8(png, pn, NULL, &rgb, &w, &h, &err) == 0, "png: %s", err.msg)) {
        TH_CHECK(t, w == 2 && h == 2 && memcmp(rgb, px, 12) == 0, "png pixels");
        free(rgb);
    }
    free(png);
}

/* Files: read, sniffed and decoded; a missing file names its path. */
static void test_files(struct th *t) {
    size_t n;
    uint8_t *jpg = encode(20, 10, 1, &n);
    char path[] = "/tmp/dsr-jpeg-XXXXXX";
    int fd = mkstemp(path);
    if (!TH_CHECK(t, jpg && fd >= 0 && write(fd, jpg, n) == (ssize_t)n, "write temp file")) return;
    close(fd);
    uint8_t *rgb = NULL;
    int w, h;
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, image_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &err) == 0, "%s", err.msg))
        TH_CHECK(t, w == 20 && h == 10, "%dx%d", w, h);
    free(rgb);
    TH_CHECK(t, image_decode_file_rgb8(path, n - 1, NULL, &rgb, &w, &h, &err) != 0 && strstr(err.msg, "over the limit"),
             "size bound: %s", err.msg);
    unlink(path);
    TH_CHECK(t, image_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &err) != 0 && strstr(err.msg, path), "missing: %s",
             err.msg);
    free(jpg);
}

/* Corrupt data draws libjpeg warnings; none may reach stderr. */
static void test_warnings_silent(struct th *t) {
    size_t n;
    uint8_t *jpg = encode(24, 16, 0, &n);
    if (!TH_CHECK(t, jpg != NULL, "encode")) return;
    fflush(stderr);
    int saved = dup(2);
    char path[] = "/tmp/dsr-jpeg-err-XXXXXX";
    int fd = mkstemp(path);
    dup2(fd, 2);
    uint32_t seed = 5;
    for (int i = 0; i < 200; i++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, jpg, n);
        copy[3 + lcg(&seed) % (n - 3)] ^= 0x5a;
        uint8_t *rgb = NULL;
        int w, h;
        struct dsr_err err = {{0}};
        if (jpeg_decode_rgb8(copy, n, NULL, &rgb, &w, &h, &err) == 0) free(rgb);
        free(copy);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    TH_CHECK(t, size == 0, "%lld bytes written to stderr", (long long)size);
    free(jpg);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "round_trip", test_round_trip);
    th_run(&t, "grayscale", test_grayscale);
    th_run(&t, "truncated", test_truncated);
    th_run(&t, "random_corruption", test_random_corruption);
    th_run(&t, "oversized", test_oversized);
    th_run(&t, "not_jpeg", test_not_jpeg);
    th_run(&t, "files", test_files);
    th_run(&t, "warnings_silent", test_warnings_silent);
    return th_finish(&t, "test_jpeg");
}
