/* Image files of either supported format (PNG, JPEG), recognised by their
 * signature, decoded to 8-bit RGB HWC under the same limits (png_io.h,
 * jpeg_io.h).  What the API, the CLI and the trainer call wherever an image
 * is accepted. */
#ifndef DSR_IMAGE_IO_H
#define DSR_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "image/png_io.h"

enum image_format { IMAGE_UNKNOWN, IMAGE_PNG, IMAGE_JPEG };

enum image_format image_sniff(const uint8_t *data, size_t size);

/* PNG or JPEG in memory; anything else: -1, "not a PNG or JPEG image". */
int image_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *lim, uint8_t **rgb, int *width,
                      int *height, struct dsr_err *err);

/* The file at path (at most max_file_bytes; 0 = 256 MiB), decoded as
 * image_decode_rgb8 does; messages start with the path. */
int image_decode_file_rgb8(const char *path, size_t max_file_bytes, const struct png_limits *lim, uint8_t **rgb,
                           int *width, int *height, struct dsr_err *err);

#endif
