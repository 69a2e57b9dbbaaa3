#include "image/jpeg_io.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int truncated; /* libjpeg reached the end of the data early (it would fill the rest with grey) */
    unsigned char *dest; /* encoder output (jpeg_mem_dest), freed on error */
    unsigned long dest_size;
    unsigned char *row; /* encoder: one grey row */
};

static void on_error(j_common_ptr c) {
    struct jerr *e = (struct jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are kept quiet; the one that means missing image data is noted. */
static void on_message(j_common_ptr c, int level) {
    struct jerr *e = (struct jerr *)c->err;
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

static void on_progress(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->is_decompressor && d->progressive_mode && d->input_scan_number > JPEG_MAX_SCANS) {
        struct jerr *e = (struct jerr *)c->err;
        snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than %d scans", JPEG_MAX_SCANS);
        longjmp(e->jump, 1);
    }
}

int jpeg_sniff(const uint8_t *data, size_t size) {
    return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

int jpeg_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *limits, uint8_t **rgb, int *width,
                     int *height, struct dsr_err *err) {
    struct png_limits lim_copy; /* not a pointer that setjmp could clobber */
    if (limits) lim_copy = *limits;
    else png_limits_default(&lim_copy);
    const struct png_limits *const lim = &lim_copy;
    *rgb = NULL;
    if (!jpeg_sniff(data, size)) return dsr_errf(err, "not a JPEG (bad signature)");
    struct jpeg_decompress_struct d;
    struct jerr e;
    struct jpeg_progress_mgr progress;
    memset(&e, 0, sizeof e);
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = on_message;
    uint8_t *volatile out = NULL;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&d);
        free(out);
        return dsr_errf(err, "corrupt JPEG: %s", e.msg);
    }
    jpeg_create_decompress(&d);
    memset(&progress, 0, sizeof progress);
    progress.progress_monitor = on_progress;
    d.progress = &progress;
    jpeg_mem_src(&d, data, (unsigned long)size);
    jpeg_read_header(&d, TRUE);
    uint32_t w = d.image_width, h = d.image_height;
    if (w == 0 || h == 0 || w > lim->max_width || h > lim->max_height || (uint64_t)w * h > lim->max_pixels) {
        jpeg_destroy_decompress(&d);
        return dsr_errf(err, "JPEG is %ux%u, over the limit of %ux%u and %llu pixels", (unsigned)w, (unsigned)h,
                        (unsigned)lim->max_width, (unsigned)lim->max_height, (unsigned long long)lim->max_pixels);
    }
    if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&d);
        return dsr_errf(err, "CMYK JPEGs are not supported; convert the image to RGB");
    }
    d.out_color_space = JCS_RGB;
    jpeg_start_decompress(&d);
    size_t stride = (size_t)w * 3;
    out = malloc(stride * h);
    if (!out) {
        snprintf(e.msg, sizeof e.msg, "out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        longjmp(e.jump, 1);
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = out + (size_t)d.output_scanline * stride;
        jpeg_read_scanlines(&d, &row, 1);
        if (e.truncated) break;
    }
    if (!e.truncated) jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    if (e.truncated) {
        free(out);
        return dsr_errf(err, "truncated JPEG: the data ends before the image does");
    }
    *rgb = out;
    *width = (int)w;
    *height = (int)h;
    return 0;
}

int jpeg_encode_rgb8(const uint8_t *rgb, int width, int height, int quality, int flags, uint8_t **jpeg,
                     size_t *jpeg_size, struct dsr_err *err) {
    *jpeg = NULL;
    *jpeg_size = 0;
    if (width <= 0 || height <= 0 || quality < 1 || quality > 100)
        return dsr_errf(err, "jpeg_encode_rgb8: bad size %dx%d or quality %d", width, height, quality);
    struct jpeg_compress_struct c;
    struct jerr e;
    memset(&e, 0, sizeof e);
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = on_message;
    if (setjmp(e.jump)) {
        jpeg_destroy_compress(&c);
        free(e.dest);
        free(e.row);
        return dsr_errf(err, "JPEG encode: %s", e.msg);
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &e.dest, &e.dest_size);
    c.image_width = (JDIMENSION)width;
    c.image_height = (JDIMENSION)height;
    int grey = flags & JPEG_GRAYSCALE;
    c.input_components = grey ? 1 : 3;
    c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (flags & JPEG_PROGRESSIVE) jpeg_simple_progression(&c);
    e.row = grey ? malloc((size_t)width) : NULL;
    if (grey && !e.row) {
        snprintf(e.msg, sizeof e.msg, "out of memory");
        longjmp(e.jump, 1);
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        const uint8_t *src = rgb + (size_t)c.next_scanline * width * 3;
        if (grey)
            for (int x = 0; x < width; x++) e.row[x] = src[3 * x];
        JSAMPROW row = grey ? e.row : (JSAMPROW)src;
        jpeg_write_scanlines(&c, &row, 1);
    }
    free(e.row);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *jpeg = e.dest;
    *jpeg_size = e.dest_size;
    return 0;
}
