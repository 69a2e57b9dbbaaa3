/* A tiny 5x7 bitmap font for labelling images (rewards on contact sheets).
 *
 * Covers digits, the upper-case letters, '-', '+', '.', ':', '=', '#', '_',
 * '/', and space; lower-case letters are drawn as upper-case, any other
 * character as a hollow box.  Glyph cells are FONT_ADV pixels wide. */
#ifndef DSR_BITMAP_FONT_H
#define DSR_BITMAP_FONT_H

#include <stdint.h>

#define FONT_W 5
#define FONT_H 7
#define FONT_ADV 6 /* glyph width + 1 pixel spacing */

/* Draws text with its top-left corner at (x, y) into an RGB8 image of
 * width w and height h, scaled by `scale` (>= 1); pixels outside are clipped. */
void font_draw_text(uint8_t *rgb, int w, int h, int x, int y, int scale, const char *text, const uint8_t color[3]);

/* Width in pixels of text at scale. */
int font_text_width(const char *text, int scale);

#endif
