/* JPEG decoding and encoding with libjpeg(-turbo), in memory.
 *
 * Decoding returns 8-bit RGB, row-major HWC, as PIL's
 * `Image.open(...).convert("RGB")` does with the same library defaults
 * (islow IDCT, fancy upsampling): YCbCr and RGB files as RGB, grayscale
 * replicated into R, G and B.  CMYK/YCCK files are refused (PIL's inversion
 * rules for Adobe files are not reproduced).  EXIF orientation is ignored,
 * as PIL does without ImageOps.exif_transpose.
 *
 * Untrusted input, under the same bounds as PNG (struct png_limits): the
 * frame header's dimensions are checked before any pixel buffer is
 * allocated; a progressive file may have at most JPEG_MAX_SCANS scans (a
 * file of thousands of tiny scans costs a full-image pass each); a file that
 * ends before its image data does is an error, not a grey-filled image;
 * libjpeg's errors are caught with setjmp and its warnings never reach
 * stderr.  Every buffer returned through an `**out` is malloc'ed and owned by
 * the caller. */
#ifndef DSR_JPEG_IO_H
#define DSR_JPEG_IO_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "image/png_io.h"

#define JPEG_MAX_SCANS 256

/* 1 when data starts with the JPEG SOI marker and a marker byte. */
int jpeg_sniff(const uint8_t *data, size_t size);

/* lim may be NULL (the PNG defaults). */
int jpeg_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *lim, uint8_t **rgb, int *width,
                     int *height, struct dsr_err *err);

/* JPEG of width*height RGB pixels at quality 1..100, baseline with 4:2:0
 * chroma (libjpeg's defaults) unless flags say otherwise; for tests and
 * tools.  JPEG_GRAYSCALE writes one component (the pixels' R channel). */
#define JPEG_PROGRESSIVE 1
#define JPEG_GRAYSCALE 2
int jpeg_encode_rgb8(const uint8_t *rgb, int width, int height, int quality, int flags, uint8_t **jpeg,
                     size_t *jpeg_size, struct dsr_err *err);

#endif
