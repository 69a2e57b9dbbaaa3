/* PNG decoding/encoding with libpng; see png_io.h for the contract.
 *
 * libpng reports errors by longjmp'ing to the jmp_buf of its png_struct.  Each
 * entry point keeps its state (buffers that must be freed) in a struct owned
 * by the caller frame and runs libpng from a separate function that holds the
 * setjmp, so no local that changes after setjmp is read after the longjmp. */
#include "image/png_io.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file_read.h"

void png_limits_default(struct png_limits *lim) {
    lim->max_width = PNG_DEFAULT_MAX_SIDE;
    lim->max_height = PNG_DEFAULT_MAX_SIDE;
    lim->max_pixels = PNG_DEFAULT_MAX_PIXELS;
}

/* error_ptr of every png_struct made here. */
struct png_diag {
    struct dsr_err *err;
    char warning[160]; /* first libpng warning: explains a following error */
};

static void on_png_error(png_structp png, png_const_charp msg) {
    struct png_diag *d = png_get_error_ptr(png);
    if (d->warning[0]) dsr_errf(d->err, "PNG: %s (%s)", msg, d->warning);
    else dsr_errf(d->err, "PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings are kept (not printed): an IHDR warning names the bad field of the
 * "Invalid IHDR data" error that follows it. */
static void on_png_warning(png_structp png, png_const_charp msg) {
    struct png_diag *d = png_get_error_ptr(png);
    if (!d->warning[0]) snprintf(d->warning, sizeof d->warning, "%s", msg);
}

/* ---- decoding ---- */

struct mem_reader {
    const uint8_t *data;
    size_t size, pos;
};

static void read_from_memory(png_structp png, png_bytep out, size_t len) {
    struct mem_reader *r = png_get_io_ptr(png);
    if (len > r->size - r->pos) png_error(png, "truncated data");
    memcpy(out, r->data + r->pos, len);
    r->pos += len;
}

struct decode_state {
    png_structp png;
    png_infop info;
    struct mem_reader src;
    const struct png_limits *lim;
    struct png_diag diag;
    uint8_t *pixels; /* result, width*height*3 */
    png_bytep *rows; /* row pointers into pixels */
    png_uint_32 width, height;
};

/* Sets the transformations that turn any PNG into 8-bit RGB. */
static void request_rgb8(png_structp png, png_infop info, int color_type, int bit_depth) {
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    /* palette_to_rgb also turns a palette tRNS into an alpha channel, which
     * strip_alpha then drops; a gray/RGB tRNS colour key is simply unused. */
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_scale_16(png);
    if ((color_type & PNG_COLOR_MASK_ALPHA) || has_trns) png_set_strip_alpha(png);
    if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
}

/* Runs the libpng read; returns -1 after a libpng error (message already in
 * st->diag.err) or a rejected header. */
static int decode_run(struct decode_state *st) {
    png_structp png = st->png;
    png_infop info = st->info;
    if (setjmp(png_jmpbuf(png))) return -1;

    png_set_read_fn(png, &st->src, read_from_memory);
    /* Our own bound below gives the clearer message; libpng's defaults
     * (1e6 per side) would reject first with a generic one. */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(png, info);

    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &st->width, &st->height, &bit_depth, &color_type, &interlace, NULL, NULL);
    const struct png_limits *lim = st->lim;
    uint64_t npix = (uint64_t)st->width * st->height;
    if (st->width > lim->max_width || st->height > lim->max_height || npix > lim->max_pixels)
        return dsr_errf(st->diag.err,
                        "PNG is %ux%u pixels, over the limit (%u x %u, %llu pixels)", (unsigned)st->width,
                        (unsigned)st->height, (unsigned)lim->max_width, (unsigned)lim->max_height,
                        (unsigned long long)lim->max_pixels);

    request_rgb8(png, info, color_type, bit_depth);
    png_read_update_info(png, info);
    size_t row_bytes = (size_t)st->width * 3;
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != row_bytes)
        return dsr_errf(st->diag.err, "PNG: colour type %d, depth %d did not convert to 8-bit RGB", color_type,
                        bit_depth);

    st->pixels = malloc(row_bytes * st->height);
    st->rows = malloc(sizeof(png_bytep) * st->height);
    if (!st->pixels || !st->rows)
        return dsr_errf(st->diag.err, "PNG: out of memory for %ux%u pixels", (unsigned)st->width,
                        (unsigned)st->height);
    for (png_uint_32 y = 0; y < st->height; y++) st->rows[y] = st->pixels + (size_t)y * row_bytes;
    png_read_image(png, st->rows);
    png_read_end(png, NULL); /* checks the remaining chunks' CRCs and IEND */
    return 0;
}

int png_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *lim, uint8_t **rgb,
                    int *width, int *height, struct dsr_err *err) {
    *rgb = NULL;
    if (!data || size == 0) return dsr_errf(err, "PNG: empty input");
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) return dsr_errf(err, "not a PNG (bad signature)");

    struct png_limits default_lim;
    if (!lim) {
        png_limits_default(&default_lim);
        lim = &default_lim;
    }
    struct decode_state st = {.src = {data, size, 0}, .lim = lim, .diag = {.err = err}};
    st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st.diag, on_png_error, on_png_warning);
    if (!st.png) return dsr_errf(err, "PNG: cannot create the libpng reader");
    st.info = png_create_info_struct(st.png);
    int rc = st.info ? decode_run(&st) : dsr_errf(err, "PNG: cannot create the libpng info struct");

    png_destroy_read_struct(&st.png, st.info ? &st.info : NULL, NULL);
    free(st.rows);
    if (rc != 0) {
        free(st.pixels);
        return -1;
    }
    *rgb = st.pixels;
    *width = (int)st.width;
    *height = (int)st.height;
    return 0;
}

int png_decode_file_rgb8(const char *path, size_t max_file_bytes, const struct png_limits *lim, uint8_t **rgb,
                         int *width, int *height, struct dsr_err *err) {
    *rgb = NULL;
    if (max_file_bytes == 0) max_file_bytes = (size_t)256 << 20;
    char *buf;
    size_t len;
    if (file_read_regular(path, max_file_bytes, &buf, &len, err)) return -1;
    int rc = png_decode_rgb8((const uint8_t *)buf, len, lim, rgb, width, height, err);
    if (rc != 0) dsr_err_prefix(err, "%s", path);
    free(buf);
    return rc;
}

/* ---- encoding ---- */

struct mem_writer {
    uint8_t *data;
    size_t size, cap;
};

static void write_to_memory(png_structp png, png_bytep in, size_t len) {
    struct mem_writer *w = png_get_io_ptr(png);
    if (len > w->cap - w->size) {
        size_t ncap = w->cap ? w->cap : 4096;
        while (ncap - w->size < len) {
            if (ncap > SIZE_MAX / 2) png_error(png, "output too large");
            ncap *= 2;
        }
        uint8_t *nd = realloc(w->data, ncap);
        if (!nd) png_error(png, "out of memory for the encoded image");
        w->data = nd;
        w->cap = ncap;
    }
    memcpy(w->data + w->size, in, len);
    w->size += len;
}

static void flush_memory(png_structp png) {
    (void)png;
}

struct encode_state {
    png_structp png;
    png_infop info;
    struct mem_writer out;
    struct png_diag diag;
    const uint8_t *rgb;
    int width, height;
};

static int encode_run(struct encode_state *st) {
    png_structp png = st->png;
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, &st->out, write_to_memory, flush_memory);
    png_set_IHDR(png, st->info, (png_uint_32)st->width, (png_uint_32)st->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, st->info);
    size_t row_bytes = (size_t)st->width * 3;
    for (int y = 0; y < st->height; y++) png_write_row(png, st->rgb + (size_t)y * row_bytes);
    png_write_end(png, NULL);
    return 0;
}

int png_encode_rgb8(const uint8_t *rgb, int width, int height, uint8_t **png, size_t *png_size,
                    struct dsr_err *err) {
    *png = NULL;
    *png_size = 0;
    if (!rgb || width <= 0 || height <= 0 || (uint64_t)width * (uint64_t)height > PNG_DEFAULT_MAX_PIXELS)
        return dsr_errf(err, "PNG encode: bad image size %dx%d", width, height);
    struct encode_state st = {.diag = {.err = err}, .rgb = rgb, .width = width, .height = height};
    st.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st.diag, on_png_error, on_png_warning);
    if (!st.png) return dsr_errf(err, "PNG: cannot create the libpng writer");
    st.info = png_create_info_struct(st.png);
    int rc = st.info ? encode_run(&st) : dsr_errf(err, "PNG: cannot create the libpng info struct");
    png_destroy_write_struct(&st.png, st.info ? &st.info : NULL);
    if (rc != 0) {
        free(st.out.data);
        return -1;
    }
    *png = st.out.data;
    *png_size = st.out.size;
    return 0;
}
