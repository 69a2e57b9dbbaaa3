/* PNG decoding/encoding: every colour type and bit depth (written here with
 * libpng's own write API from known samples), interlacing, the 16-bit
 * scaling rule, encode/decode round trips, and rejection of corrupt,
 * truncated, non-PNG, empty and oversized inputs without crashing. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "image/png_io.h"

/* ---- a libpng writer for arbitrary colour types ---- */

struct buf {
    uint8_t *data;
    size_t size, cap;
};

static void buf_write(png_structp png, png_bytep in, size_t len) {
    struct buf *b = png_get_io_ptr(png);
    if (b->size + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->size + len) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) png_error(png, "out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->size, in, len);
    b->size += len;
}

static void buf_flush(png_structp png) {
    (void)png;
}

struct png_spec {
    int width, height, color_type, bit_depth, interlace;
    const png_color *palette; /* palette images */
    int n_palette;
    const png_byte *trns_alpha; /* palette tRNS */
    int n_trns;
    const png_color_16 *trns_color; /* gray/RGB tRNS */
};

static int spec_channels(const struct png_spec *s) {
    switch (s->color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_PALETTE: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    default: return 4;
    }
}

struct write_job {
    png_structp png;
    png_infop info;
    struct buf out;
    png_bytep *rows;
};

static int write_run(struct write_job *j, const struct png_spec *s, const uint16_t *samples) {
    if (setjmp(png_jmpbuf(j->png))) return -1;
    png_set_write_fn(j->png, &j->out, buf_write, buf_flush);
    png_set_IHDR(j->png, j->info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(j->png, j->info, s->palette, s->n_palette);
    if (s->trns_alpha || s->trns_color)
        png_set_tRNS(j->png, j->info, s->trns_alpha, s->n_trns, (png_color_16p)s->trns_color);
    png_write_info(j->png, j->info);
    if (s->bit_depth < 8) png_set_packing(j->png); /* rows hold one sample per byte */
    int ch = spec_channels(s), bps = s->bit_depth == 16 ? 2 : 1;
    for (int y = 0; y < s->height; y++) {
        for (size_t i = 0; i < (size_t)s->width * ch; i++) {
            uint16_t v = samples[(size_t)y * s->width * ch + i];
            if (bps == 2) {
                j->rows[y][2 * i] = (png_byte)(v >> 8); /* PNG is big-endian */
                j->rows[y][2 * i + 1] = (png_byte)(v & 0xff);
            } else {
                j->rows[y][i] = (png_byte)v;
            }
        }
    }
    png_write_image(j->png, j->rows); /* handles the Adam7 passes */
    png_write_end(j->png, NULL);
    return 0;
}

/* Encodes samples (width*height*channels values in the spec's bit depth).
 * Returns a malloc'ed PNG or NULL. */
static uint8_t *write_png(const struct png_spec *s, const uint16_t *samples, size_t *size) {
    struct write_job j = {0};
    int ch = spec_channels(s), bps = s->bit_depth == 16 ? 2 : 1;
    j.rows = calloc((size_t)s->height, sizeof(png_bytep));
    for (int y = 0; y < s->height; y++) j.rows[y] = malloc((size_t)s->width * ch * bps);
    j.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    j.info = png_create_info_struct(j.png);
    int rc = write_run(&j, s, samples);
    png_destroy_write_struct(&j.png, &j.info);
    for (int y = 0; y < s->height; y++) free(j.rows[y]);
    free(j.rows);
    if (rc != 0) {
        free(j.out.data);
        return NULL;
    }
    *size = j.out.size;
    return j.out.data;
}

/* ---- expected values ---- */

static uint32_t lcg(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* 16-bit to 8-bit as the PNG spec and png_set_scale_16: round(v * 255 / 65535). */
static uint8_t scale16(uint16_t v) {
    return (uint8_t)(((uint32_t)v * 255u + 32767u) / 65535u);
}

/* Any sample of bit depth d to 8 bits: low depths replicate bits (v * 255 / max). */
static uint8_t to8(uint16_t v, int depth) {
    if (depth == 16) return scale16(v);
    return (uint8_t)(v * 255u / ((1u << depth) - 1u));
}

/* 16-bit values around every rounding boundary of v * 255 / 65535 = v / 257. */
static const uint16_t edge16[] = {0, 1, 128, 129, 257, 385, 386, 32767, 32768, 32896, 32897, 65407, 65408, 65534, 65535};

static uint16_t *make_samples(int n, int depth, uint32_t seed, int max_value) {
    uint16_t *s = malloc(sizeof(uint16_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (depth == 16 && i % 2 == 0) s[i] = edge16[(i / 2) % (sizeof edge16 / sizeof edge16[0])];
        else s[i] = (uint16_t)(lcg(&seed) % (uint32_t)(max_value + 1));
    }
    return s;
}

/* Writes, decodes and compares one spec with the expected RGB8. */
static void check_spec(struct th *t, const char *what, const struct png_spec *s, const uint16_t *samples,
                       const uint8_t *want_rgb) {
    size_t size;
    uint8_t *png = write_png(s, samples, &size);
    if (!TH_CHECK(t, png != NULL, "%s: libpng could not write the test image", what)) return;
    uint8_t *rgb;
    int w, h;
    struct dsr_err err = {{0}};
    int rc = png_decode_rgb8(png, size, NULL, &rgb, &w, &h, &err);
    if (TH_CHECK(t, rc == 0, "%s: %s", what, err.msg)) {
        TH_CHECK(t, w == s->width && h == s->height, "%s: %dx%d", what, w, h);
        size_t n = (size_t)s->width * s->height * 3, bad = 0, first = 0;
        for (size_t i = n; i-- > 0;)
            if (rgb[i] != want_rgb[i]) bad++, first = i;
        TH_CHECK(t, bad == 0, "%s: %zu of %zu bytes wrong, first at %zu: %d want %d", what, bad, n, first,
                 bad ? rgb[first] : 0, bad ? want_rgb[first] : 0);
        free(rgb);
    }
    free(png);
}

#define W 13
#define H 11

/* Gray, gray+alpha, RGB, RGBA at every legal depth, plain and Adam7. */
static void test_direct_color_types(struct th *t) {
    struct {
        int color_type, depth;
    } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1}, {PNG_COLOR_TYPE_GRAY, 2},       {PNG_COLOR_TYPE_GRAY, 4},
        {PNG_COLOR_TYPE_GRAY, 8}, {PNG_COLOR_TYPE_GRAY, 16},      {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB, 8}, {PNG_COLOR_TYPE_RGB, 16},
        {PNG_COLOR_TYPE_RGBA, 8}, {PNG_COLOR_TYPE_RGBA, 16},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int il = 0; il < 2; il++) {
            struct png_spec s = {W, H, kinds[k].color_type, kinds[k].depth,
                                 il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
            int ch = spec_channels(&s), n = W * H * ch;
            uint16_t *samples = make_samples(n, s.bit_depth, (uint32_t)(k * 31 + il), (1 << s.bit_depth) - 1);
            uint8_t want[W * H * 3];
            for (int p = 0; p < W * H; p++)
                for (int c = 0; c < 3; c++) {
                    /* gray replicates; alpha (the last channel) is dropped */
                    int src = (ch <= 2) ? 0 : c;
                    want[3 * p + c] = to8(samples[p * ch + src], s.bit_depth);
                }
            char what[64];
            snprintf(what, sizeof what, "type %d depth %d%s", s.color_type, s.bit_depth, il ? " adam7" : "");
            check_spec(t, what, &s, samples, want);
            free(samples);
        }
}

/* Palette at depths 1/2/4/8, with and without tRNS (alpha ignored). */
static void test_palette(struct th *t) {
    png_color pal[256];
    png_byte alpha[256];
    for (int i = 0; i < 256; i++) {
        pal[i].red = (png_byte)(i * 37 + 5);
        pal[i].green = (png_byte)(255 - i);
        pal[i].blue = (png_byte)(i * 11);
        alpha[i] = (png_byte)(i * 3);
    }
    const int depths[] = {1, 2, 4, 8};
    for (size_t d = 0; d < 4; d++)
        for (int variant = 0; variant < 3; variant++) { /* plain, tRNS, tRNS + Adam7 */
            int depth = depths[d], npal = 1 << depth;
            if (npal > 200) npal = 200; /* a partial palette at depth 8 */
            struct png_spec s = {W, H, PNG_COLOR_TYPE_PALETTE, depth,
                                 variant == 2 ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, pal, npal,
                                 variant ? alpha : NULL, variant ? (npal + 1) / 2 : 0, NULL};
            uint16_t *idx = make_samples(W * H, depth, (uint32_t)(100 + d * 3 + variant), npal - 1);
            uint8_t want[W * H * 3];
            for (int p = 0; p < W * H; p++) {
                want[3 * p + 0] = pal[idx[p]].red;
                want[3 * p + 1] = pal[idx[p]].green;
                want[3 * p + 2] = pal[idx[p]].blue;
            }
            char what[64];
            snprintf(what, sizeof what, "palette depth %d variant %d", depth, variant);
            check_spec(t, what, &s, idx, want);
            free(idx);
        }
}

/* tRNS on gray and RGB images names a transparent colour; it is ignored too. */
static void test_color_key_trns(struct th *t) {
    struct {
        int color_type, depth;
    } kinds[] = {{PNG_COLOR_TYPE_GRAY, 8}, {PNG_COLOR_TYPE_GRAY, 16}, {PNG_COLOR_TYPE_GRAY, 2},
                 {PNG_COLOR_TYPE_RGB, 8},  {PNG_COLOR_TYPE_RGB, 16}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct png_spec s = {W, H, kinds[k].color_type, kinds[k].depth, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
        int ch = spec_channels(&s), max = (1 << s.bit_depth) - 1;
        uint16_t *samples = make_samples(W * H * ch, s.bit_depth, (uint32_t)(200 + k), max);
        png_color_16 key = {0};
        /* key = the first pixel's colour, so some pixels are "transparent" */
        key.gray = samples[0];
        key.red = samples[0];
        key.green = ch == 3 ? samples[1] : 0;
        key.blue = ch == 3 ? samples[2] : 0;
        s.trns_color = &key;
        uint8_t want[W * H * 3];
        for (int p = 0; p < W * H; p++)
            for (int c = 0; c < 3; c++) want[3 * p + c] = to8(samples[p * ch + (ch == 1 ? 0 : c)], s.bit_depth);
        char what[64];
        snprintf(what, sizeof what, "type %d depth %d with tRNS key", s.color_type, s.bit_depth);
        check_spec(t, what, &s, samples, want);
        free(samples);
    }
}

/* The 16-bit rule itself: every value, scale16 == round(v * 255 / 65535)
 * computed in floating point, and libpng agrees on all of them. */
static void test_scale16_rule(struct th *t) {
    int bad = 0;
    for (uint32_t v = 0; v <= 65535; v++) bad += scale16((uint16_t)v) != (uint8_t)(v * 255.0 / 65535.0 + 0.5);
    TH_CHECK(t, bad == 0, "scale16 disagrees with rounding in %d values", bad);
    /* a 256x256 16-bit gray image holding every value once */
    struct png_spec s = {256, 256, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL};
    uint16_t *samples = malloc(sizeof(uint16_t) * 65536);
    uint8_t *want = malloc(65536 * 3);
    for (int v = 0; v < 65536; v++) {
        samples[v] = (uint16_t)v;
        want[3 * v] = want[3 * v + 1] = want[3 * v + 2] = scale16((uint16_t)v);
    }
    check_spec(t, "all 16-bit values", &s, samples, want);
    free(samples);
    free(want);
}

/* ---- encoder ---- */

static void test_round_trip(struct th *t) {
    const int sizes[][2] = {{17, 9}, {1, 1}, {384, 384}, {3, 200}};
    uint32_t seed = 9;
    for (size_t k = 0; k < 4; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        size_t n = (size_t)w * h * 3;
        uint8_t *img = malloc(n);
        for (size_t i = 0; i < n; i++) img[i] = (uint8_t)lcg(&seed);
        uint8_t *png, *back;
        size_t size;
        int bw, bh;
        struct dsr_err err = {{0}};
        if (TH_CHECK(t, png_encode_rgb8(img, w, h, &png, &size, &err) == 0, "encode %dx%d: %s", w, h, err.msg)) {
            int rc = png_decode_rgb8(png, size, NULL, &back, &bw, &bh, &err);
            if (TH_CHECK(t, rc == 0, "decode %dx%d: %s", w, h, err.msg)) {
                TH_CHECK(t, bw == w && bh == h && memcmp(back, img, n) == 0, "round trip %dx%d differs", w, h);
                free(back);
            }
            free(png);
        }
        free(img);
    }
    uint8_t px[3] = {1, 2, 3}, *png;
    size_t size;
    struct dsr_err err = {{0}};
    TH_CHECK(t, png_encode_rgb8(px, 0, 1, &png, &size, &err) != 0 && png == NULL && err.msg[0], "width 0 encoded");
    TH_CHECK(t, png_encode_rgb8(NULL, 1, 1, &png, &size, &err) != 0, "NULL pixels encoded");
}

/* ---- hostile input ---- */

/* Decodes and expects failure with a message; returns 1 when rejected. */
static int rejected(const uint8_t *data, size_t size, const struct png_limits *lim, char *msg, size_t msg_size) {
    uint8_t *rgb = (uint8_t *)1;
    int w, h;
    struct dsr_err err = {{0}};
    int rc = png_decode_rgb8(data, size, lim, &rgb, &w, &h, &err);
    if (msg) snprintf(msg, msg_size, "%s", err.msg);
    if (rc == 0) {
        free(rgb);
        return 0;
    }
    return rgb == NULL && err.msg[0] != '\0';
}

static uint8_t *small_png(size_t *size) {
    uint8_t img[6 * 5 * 3];
    uint32_t seed = 4;
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)lcg(&seed);
    uint8_t *png = NULL;
    struct dsr_err err;
    if (png_encode_rgb8(img, 6, 5, &png, size, &err) != 0) return NULL;
    return png;
}

static void test_truncated(struct th *t) {
    size_t size;
    uint8_t *png = small_png(&size);
    if (!TH_CHECK(t, png != NULL, "encode")) return;
    int accepted = 0;
    for (size_t len = 0; len < size; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact-size copy: ASan sees any over-read */
        memcpy(copy, png, len);
        if (!rejected(copy, len, NULL, NULL, 0)) {
            accepted++;
            TH_CHECK(t, 0, "prefix of %zu of %zu bytes accepted", len, size);
        }
        free(copy);
    }
    TH_CHECK(t, accepted == 0, "%d truncations accepted", accepted);
    free(png);
}

static void test_flipped_bytes(struct th *t) {
    size_t size;
    uint8_t *png = small_png(&size);
    if (!TH_CHECK(t, png != NULL, "encode")) return;
    uint8_t *copy = malloc(size);
    for (size_t i = 0; i < size; i++) {
        for (int mask = 1; mask < 256; mask <<= 3) { /* bits 0, 3, 6 */
            memcpy(copy, png, size);
            copy[i] ^= (uint8_t)mask;
            TH_CHECK(t, rejected(copy, size, NULL, NULL, 0), "byte %zu ^ %d accepted", i, mask);
        }
    }
    /* a wrong IDAT CRC names the problem */
    memcpy(copy, png, size);
    copy[size - 12 - 1] ^= 0x40; /* last CRC byte before IEND (12 bytes) */
    char msg[DSR_ERR_MSG_MAX];
    TH_CHECK(t, rejected(copy, size, NULL, msg, sizeof msg) && strstr(msg, "CRC"), "bad CRC: %s", msg);
    free(copy);
    free(png);
}

/* Random multi-byte corruption of palette/interlaced/16-bit files: never a
 * crash or leak (ASan), and anything accepted has its declared size. */
static void test_random_corruption(struct th *t) {
    png_color pal[16];
    for (int i = 0; i < 16; i++) pal[i].red = pal[i].green = pal[i].blue = (png_byte)(i * 16);
    png_byte alpha[4] = {0, 50, 100, 150};
    struct png_spec specs[] = {
        {9, 7, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_ADAM7, pal, 16, alpha, 4, NULL},
        {9, 7, PNG_COLOR_TYPE_RGBA, 16, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, NULL},
        {9, 7, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, NULL},
    };
    uint32_t seed = 77;
    int accepted = 0;
    for (size_t k = 0; k < 3; k++) {
        int ch = spec_channels(&specs[k]), max = specs[k].color_type == PNG_COLOR_TYPE_PALETTE
                                                    ? 15 : (1 << specs[k].bit_depth) - 1;
        uint16_t *samples = make_samples(9 * 7 * ch, specs[k].bit_depth, (uint32_t)k, max);
        size_t size;
        uint8_t *png = write_png(&specs[k], samples, &size);
        free(samples);
        if (!TH_CHECK(t, png != NULL, "write spec %zu", k)) continue;
        uint8_t *copy = malloc(size);
        for (int iter = 0; iter < 600; iter++) {
            memcpy(copy, png, size);
            int nflip = 1 + (int)(lcg(&seed) % 4);
            for (int f = 0; f < nflip; f++) copy[8 + lcg(&seed) % (size - 8)] = (uint8_t)lcg(&seed);
            uint8_t *rgb = NULL;
            int w = 0, h = 0;
            struct dsr_err err = {{0}};
            if (png_decode_rgb8(copy, size, NULL, &rgb, &w, &h, &err) == 0) {
                accepted++;
                TH_CHECK(t, rgb && w > 0 && h > 0 && (uint64_t)w * h <= PNG_DEFAULT_MAX_PIXELS, "sizes %dx%d", w,
                         h);
                if (rgb) rgb[(size_t)w * h * 3 - 1] ^= 1; /* the whole buffer is writable */
                free(rgb);
            } else {
                TH_CHECK(t, rgb == NULL && err.msg[0], "failure without a message");
            }
        }
        free(copy);
        free(png);
    }
    /* survivors: mutations that wrote the byte already there, or damage to
     * the ancillary tRNS chunk, which libpng drops with a warning */
    printf("  random corruption: %d of 1800 mutants still decoded\n", accepted);
}

static void test_not_png(struct th *t) {
    const char *texts[] = {"hello, world", "GIF89a\x01\x00\x01\x00", "\xff\xd8\xff\xe0\x00\x10JFIF", "\x89PNG"};
    char msg[DSR_ERR_MSG_MAX];
    for (size_t i = 0; i < 4; i++)
        TH_CHECK(t, rejected((const uint8_t *)texts[i], strlen(texts[i]), NULL, msg, sizeof msg),
                 "text %zu accepted", i);
    TH_CHECK(t, rejected((const uint8_t *)"", 0, NULL, msg, sizeof msg) && strstr(msg, "empty"), "empty: %s", msg);
    TH_CHECK(t, rejected(NULL, 0, NULL, msg, sizeof msg), "NULL accepted");
    /* signature alone, signature + IHDR only */
    size_t size;
    uint8_t *png = small_png(&size);
    TH_CHECK(t, rejected(png, 8, NULL, NULL, 0) && rejected(png, 8 + 25, NULL, NULL, 0), "headers only");
    free(png);
    uint8_t *rgb;
    int w, h;
    struct dsr_err err;
    TH_CHECK(t, png_decode_file_rgb8("tests/fixtures/no-such.png", 0, NULL, &rgb, &w, &h, &err) != 0 &&
                    strstr(err.msg, "no-such.png"),
             "missing file");
}

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static size_t put_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t len) {
    out[0] = (uint8_t)(len >> 24), out[1] = (uint8_t)(len >> 16), out[2] = (uint8_t)(len >> 8), out[3] = (uint8_t)len;
    memcpy(out + 4, type, 4);
    if (len) memcpy(out + 8, data, len);
    uint32_t crc = crc32_png(out + 4, len + 4);
    out[8 + len] = (uint8_t)(crc >> 24), out[9 + len] = (uint8_t)(crc >> 16);
    out[10 + len] = (uint8_t)(crc >> 8), out[11 + len] = (uint8_t)crc;
    return 12 + len;
}

/* A well-formed file whose IHDR claims width x height RGB8 (CRCs valid), with
 * a tiny IDAT: only the size check can stop it before allocation. */
static size_t claim_png(uint8_t *out, uint32_t width, uint32_t height) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {(uint8_t)(width >> 24), (uint8_t)(width >> 16), (uint8_t)(width >> 8), (uint8_t)width,
                        (uint8_t)(height >> 24), (uint8_t)(height >> 16), (uint8_t)(height >> 8), (uint8_t)height,
                        8, 2, 0, 0, 0};
    /* zlib stream of 4 zero bytes: one 1x1 RGB row (filter byte + pixel) */
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01};
    size_t n = 8;
    memcpy(out, sig, 8);
    n += put_chunk(out + n, "IHDR", ihdr, 13);
    n += put_chunk(out + n, "IDAT", idat, sizeof idat);
    n += put_chunk(out + n, "IEND", NULL, 0);
    return n;
}

static void test_oversized(struct th *t) {
    uint8_t buf[128];
    char msg[DSR_ERR_MSG_MAX];
    const uint32_t claims[][2] = {{100000, 100000}, {0x7fffffffu, 1}, {40000, 2}, {2, 40000}, {8193, 8193}};
    for (size_t i = 0; i < 5; i++) {
        size_t n = claim_png(buf, claims[i][0], claims[i][1]);
        TH_CHECK(t, rejected(buf, n, NULL, msg, sizeof msg) && strstr(msg, "limit"), "%ux%u: %s",
                 (unsigned)claims[i][0], (unsigned)claims[i][1], msg);
    }
    /* IHDR values libpng itself refuses */
    size_t n = claim_png(buf, 0, 10);
    TH_CHECK(t, rejected(buf, n, NULL, msg, sizeof msg), "width 0 accepted");
    n = claim_png(buf, 0x80000000u, 1);
    TH_CHECK(t, rejected(buf, n, NULL, msg, sizeof msg), "width 2^31 accepted");
    /* the claim's parser is sound: 1x1 decodes */
    n = claim_png(buf, 1, 1);
    uint8_t *rgb;
    int w, h;
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, png_decode_rgb8(buf, n, NULL, &rgb, &w, &h, &err) == 0, "1x1 claim: %s", err.msg)) free(rgb);

    /* caller-set limits, on a real 6x5 image */
    size_t size;
    uint8_t *png = small_png(&size);
    struct png_limits lim = {6, 5, 30};
    if (TH_CHECK(t, png_decode_rgb8(png, size, &lim, &rgb, &w, &h, &err) == 0, "at the limits: %s", err.msg))
        free(rgb);
    struct png_limits tight[] = {{5, 5, 30}, {6, 4, 30}, {6, 5, 29}};
    for (size_t i = 0; i < 3; i++)
        TH_CHECK(t, rejected(png, size, &tight[i], msg, sizeof msg) && strstr(msg, "6x5"), "limit %zu: %s", i, msg);
    free(png);
}

/* A damaged ancillary chunk draws a libpng warning: the image still decodes
 * and nothing reaches stderr. */
static void test_warnings_silent(struct th *t) {
    size_t size;
    uint8_t *png = small_png(&size);
    if (!TH_CHECK(t, png != NULL, "encode")) return;
    /* insert a tEXt chunk with a bad CRC after IHDR (8 + 25 bytes) */
    uint8_t chunk[64];
    size_t clen = put_chunk(chunk, "tEXt", (const uint8_t *)"Comment\0hi", 10);
    chunk[clen - 1] ^= 0xff;
    uint8_t *bad = malloc(size + clen);
    memcpy(bad, png, 33);
    memcpy(bad + 33, chunk, clen);
    memcpy(bad + 33 + clen, png + 33, size - 33);

    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    uint8_t *rgb = NULL;
    int w, h;
    struct dsr_err err = {{0}};
    int rc = png_decode_rgb8(bad, size + clen, NULL, &rgb, &w, &h, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long printed = ftell(tmp) >= 0 ? (fseek(tmp, 0, SEEK_END), ftell(tmp)) : -1;
    fclose(tmp);
    TH_CHECK(t, rc == 0 && w == 6 && h == 5, "bad ancillary CRC rejected: %s", err.msg);
    TH_CHECK(t, printed == 0, "%ld bytes printed to stderr", printed);
    free(rgb);
    free(bad);
    free(png);
}

/* The fixture PNGs (written by PIL) decode to their stated sizes. */
static void test_fixture_files(struct th *t) {
    const char *names[] = {"wide", "tall", "small", "square"};
    const int dims[][2] = {{50, 30}, {20, 45}, {10, 12}, {64, 64}};
    for (size_t i = 0; i < 4; i++) {
        char path[128];
        snprintf(path, sizeof path, "tests/fixtures/image-processing/%s.png", names[i]);
        uint8_t *rgb;
        int w, h;
        struct dsr_err err;
        if (TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &err) == 0, "%s", err.msg)) {
            TH_CHECK(t, w == dims[i][0] && h == dims[i][1], "%s is %dx%d", path, w, h);
            free(rgb);
        }
    }
}

int main(void) {
    struct th t = {0};
    th_run(&t, "direct_color_types", test_direct_color_types);
    th_run(&t, "palette", test_palette);
    th_run(&t, "color_key_trns", test_color_key_trns);
    th_run(&t, "scale16_rule", test_scale16_rule);
    th_run(&t, "round_trip", test_round_trip);
    th_run(&t, "truncated", test_truncated);
    th_run(&t, "flipped_bytes", test_flipped_bytes);
    th_run(&t, "random_corruption", test_random_corruption);
    th_run(&t, "not_png", test_not_png);
    th_run(&t, "oversized", test_oversized);
    th_run(&t, "warnings_silent", test_warnings_silent);
    th_run(&t, "fixture_files", test_fixture_files);
    return th_finish(&t, "test_png");
}
