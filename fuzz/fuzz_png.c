/* PNG decoding: any bytes either fail cleanly or give an image within the
 * limits, which re-encodes and decodes to the same pixels. */
#include <string.h>

#include "fuzz_targets.h"
#include "image/png_io.h"

int fuzz_png(const uint8_t *data, size_t size) {
    struct png_limits lim;
    png_limits_default(&lim);
    lim.max_pixels = 1u << 20; /* a fuzzer's time is better spent on headers than on huge images */
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    struct dsr_err err;
    if (png_decode_rgb8(data, size, &lim, &rgb, &w, &h, &err) != 0) {
        FUZZ_CHECK(rgb == NULL && err.msg[0]);
        return 0;
    }
    FUZZ_CHECK(rgb && w > 0 && h > 0 && (uint64_t)w * (uint64_t)h <= lim.max_pixels);
    uint8_t *png = NULL, *back = NULL;
    size_t png_size = 0;
    int w2 = 0, h2 = 0;
    FUZZ_CHECK(png_encode_rgb8(rgb, w, h, &png, &png_size, &err) == 0);
    FUZZ_CHECK(png_decode_rgb8(png, png_size, &lim, &back, &w2, &h2, &err) == 0);
    FUZZ_CHECK(w2 == w && h2 == h && memcmp(back, rgb, (size_t)w * h * 3) == 0);
    free(back);
    free(png);
    free(rgb);
    return 0;
}

FUZZ_ENTRY(fuzz_png)
