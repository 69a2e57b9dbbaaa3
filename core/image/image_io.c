#include "image/image_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file_read.h"
#include "image/jpeg_io.h"

enum image_format image_sniff(const uint8_t *data, size_t size) {
    static const uint8_t PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, PNG_SIG, 8) == 0) return IMAGE_PNG;
    if (jpeg_sniff(data, size)) return IMAGE_JPEG;
    return IMAGE_UNKNOWN;
}

int image_decode_rgb8(const uint8_t *data, size_t size, const struct png_limits *lim, uint8_t **rgb, int *width,
                      int *height, struct dsr_err *err) {
    *rgb = NULL;
    switch (image_sniff(data, size)) {
    case IMAGE_PNG: return png_decode_rgb8(data, size, lim, rgb, width, height, err);
    case IMAGE_JPEG: return jpeg_decode_rgb8(data, size, lim, rgb, width, height, err);
    case IMAGE_UNKNOWN: break;
    }
    return dsr_errf(err, "not a PNG or JPEG image (unknown signature)");
}

int image_decode_file_rgb8(const char *path, size_t max_file_bytes, const struct png_limits *lim, uint8_t **rgb,
                           int *width, int *height, struct dsr_err *err) {
    *rgb = NULL;
    if (max_file_bytes == 0) max_file_bytes = (size_t)256 << 20;
    char *buf = NULL;
    size_t n = 0;
    /* opened without blocking and only when regular: a FIFO must not hang the request */
    if (file_read_regular(path, max_file_bytes, &buf, &n, err)) return -1;
    int rc = image_decode_rgb8((const uint8_t *)buf, n, lim, rgb, width, height, err);
    if (rc != 0) dsr_err_prefix(err, "%s", path);
    free(buf);
    return rc;
}
