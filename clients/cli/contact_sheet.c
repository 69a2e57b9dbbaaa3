#include "contact_sheet.h"

#include <stdlib.h>
#include <string.h>

#include "bitmap_font.h"

#define SHEET_PAD 4      /* pixels between cells */
#define SHEET_FONT_SCALE 2
#define SHEET_STRIP (FONT_H * SHEET_FONT_SCALE + 2 * SHEET_PAD)
#define SHEET_MAX_SIDE 4096 /* input image side bound */

int contact_sheet_build(const struct sheet_image *images, int n, uint8_t **out, int *width, int *height,
                        struct dsr_err *err) {
    *out = NULL;
    if (n < 1 || n > CONTACT_MAX_IMAGES) return dsr_errf(err, "contact sheet: %d images (1..%d)", n, CONTACT_MAX_IMAGES);
    int max_w = 1, max_h = 1;
    for (int i = 0; i < n; i++) {
        if (images[i].width < 1 || images[i].height < 1 || images[i].width > SHEET_MAX_SIDE ||
            images[i].height > SHEET_MAX_SIDE)
            return dsr_errf(err, "contact sheet: image %d is %dx%d", i, images[i].width, images[i].height);
        if (images[i].width > max_w) max_w = images[i].width;
        if (images[i].height > max_h) max_h = images[i].height;
    }
    int side = max_w > max_h ? max_w : max_h;
    int scale = side >= CONTACT_MIN_CELL ? 1 : (CONTACT_MIN_CELL + side - 1) / side;
    int cell_w = max_w * scale, cell_h = max_h * scale;
    int cols = 1;
    while (cols * cols < n) cols++;
    int rows = (n + cols - 1) / cols;
    int W = SHEET_PAD + cols * (cell_w + SHEET_PAD);
    int H = SHEET_PAD + rows * (cell_h + SHEET_STRIP + SHEET_PAD);
    uint8_t *img = malloc((size_t)W * H * 3);
    if (!img) return dsr_errf(err, "contact sheet: out of memory (%dx%d)", W, H);
    memset(img, 32, (size_t)W * H * 3); /* dark grey background */
    static const uint8_t white[3] = {255, 255, 255};
    for (int i = 0; i < n; i++) {
        const struct sheet_image *im = &images[i];
        int x0 = SHEET_PAD + (i % cols) * (cell_w + SHEET_PAD);
        int y0 = SHEET_PAD + (i / cols) * (cell_h + SHEET_STRIP + SHEET_PAD);
        for (int y = 0; y < im->height * scale; y++) {
            const uint8_t *src_row = im->rgb + (size_t)(y / scale) * im->width * 3;
            uint8_t *dst = img + ((size_t)(y0 + y) * W + x0) * 3;
            for (int x = 0; x < im->width * scale; x++) memcpy(dst + (size_t)x * 3, src_row + (size_t)(x / scale) * 3, 3);
        }
        if (im->label) {
            /* the label's scale drops to 1 when it would overflow its cell */
            int fs = font_text_width(im->label, SHEET_FONT_SCALE) <= cell_w ? SHEET_FONT_SCALE : 1;
            font_draw_text(img, W, H, x0, y0 + cell_h + SHEET_PAD, fs, im->label, white);
        }
    }
    *out = img;
    *width = W;
    *height = H;
    return 0;
}
