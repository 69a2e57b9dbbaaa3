/* JPEG decoding (libjpeg-turbo): any bytes either fail cleanly or give an
 * image within the limits, which re-encodes and decodes to the same size
 * (JPEG is lossy: the pixels themselves may differ).  Seeds in
 * fuzz/corpus/jpeg: baseline, progressive and greyscale 8x6 images written by
 * jpeg_encode_rgb8. */
#include "fuzz_targets.h"
#include "image/jpeg_io.h"

int fuzz_jpeg(const uint8_t *data, size_t size) {
    struct png_limits lim;
    png_limits_default(&lim);
    lim.max_pixels = 1u << 20; /* a fuzzer's time is better spent on headers than on huge images */
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    struct dsr_err err;
    if (jpeg_decode_rgb8(data, size, &lim, &rgb, &w, &h, &err) != 0) {
        FUZZ_CHECK(rgb == NULL && err.msg[0]);
        return 0;
    }
    FUZZ_CHECK(rgb && w > 0 && h > 0 && (uint64_t)w * (uint64_t)h <= lim.max_pixels);
    uint8_t *jpg = NULL, *back = NULL;
    size_t n = 0;
    int w2 = 0, h2 = 0;
    FUZZ_CHECK(jpeg_encode_rgb8(rgb, w, h, 90, 0, &jpg, &n, &err) == 0);
    FUZZ_CHECK(jpeg_decode_rgb8(jpg, n, &lim, &back, &w2, &h2, &err) == 0);
    FUZZ_CHECK(w2 == w && h2 == h);
    free(back);
    free(jpg);
    free(rgb);
    return 0;
}

FUZZ_ENTRY(fuzz_jpeg)
