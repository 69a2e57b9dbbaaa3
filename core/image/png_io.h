/* PNG decoding and encoding with libpng, in memory.
 *
 * Decoding accepts every PNG colour type and bit depth (palette with or
 * without tRNS, gray 1/2/4/8/16, gray+alpha, RGB, RGBA, 16-bit, Adam7
 * interlaced) and returns 8-bit RGB, row-major HWC, the way PIL's
 * `Image.convert("RGB")` sees it:
 *   - alpha (an alpha channel or a tRNS chunk) is discarded, not composited;
 *   - gray is replicated into R, G and B;
 *   - 16-bit samples are scaled to round(v * 255 / 65535) (png_set_scale_16),
 *     not truncated to their high byte;
 *   - gAMA/sRGB/iCCP are ignored (no colour management), as PIL does.
 *
 * Untrusted input: the IHDR dimensions are checked against the limits before
 * any pixel buffer is allocated; corrupt, truncated or non-PNG data returns
 * -1 with a message (libpng's errors are caught with setjmp, nothing leaks).
 * libpng warnings (e.g. unknown ancillary chunks with bad CRCs) are ignored
 * silently rather than printed to stderr.
 *
 * Ownership: every buffer returned through an `**out` is malloc'ed and owned
 * by the caller (free()). */
#ifndef DSR_PNG_IO_H
#define DSR_PNG_IO_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Bounds on what a decode may allocate. */
struct png_limits {
    uint32_t max_width;  /* pixels */
    uint32_t max_height; /* pixels */
    uint64_t max_pixels; /* width * height */
};

/* 64 Mpx (2^26) and 32768 per side: far above any image the vision tower
 * (384 px) needs, far below what would exhaust the host. */
#define PNG_DEFAULT_MAX_PIXELS (64ull * 1024 * 1024)
#define PNG_DEFAULT_MAX_SIDE 32768u

void png_limits_default(struct png_limits *lim);

/* Decodes a PNG held in memory.  lim may be NULL (defaults).  On success
 * *rgb receives width * height * 3 bytes (HWC, 8-bit RGB) and the sizes in
 * width and height; on failure *rgb is NULL. */
int png_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *lim, uint8_t **rgb,
                    int *width, int *height, struct dsr_err *err);

/* Reads the file at path (a regular file, opened without blocking: never a
 * FIFO or device; at most max_file_bytes; 0 = 256 MiB) and decodes it as
 * png_decode_rgb8 does. */
int png_decode_file_rgb8(const char *path, size_t max_file_bytes, const struct png_limits *lim, uint8_t **rgb,
                         int *width, int *height, struct dsr_err *err);

/* Encodes width*height 8-bit RGB pixels (HWC) as a non-interlaced PNG.
 * *png receives the encoded bytes, *png_size their count. */
int png_encode_rgb8(const uint8_t *rgb, int width, int height, uint8_t **png, size_t *png_size,
                    struct dsr_err *err);

#endif
