#include "image_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeg_io.h"

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
    FILE *f = fopen(path, "rb");
    if (!f) return dsr_errf(err, "cannot open %s", path);
    /* size first, so the buffer is exactly the file (bounded) */
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return dsr_errf(err, "%s: cannot read", path);
    }
    if ((unsigned long)n > max_file_bytes) {
        fclose(f);
        return dsr_errf(err, "%s: larger than %zu bytes", path, max_file_bytes);
    }
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) {
        free(buf);
        return dsr_errf(err, "%s: read error", path);
    }
    int rc = image_decode_rgb8(buf, got, lim, rgb, width, height, err);
    if (rc != 0) dsr_err_prefix(err, "%s", path);
    free(buf);
    return rc;
}
