/* A contact sheet: a group of generated images tiled in a grid, each with a
 * caption strip underneath (e.g. "#3 R=-4.127"), as one RGB8 image.
 *
 * Cells are as large as the largest image scaled up by an integer factor to
 * at least CONTACT_MIN_CELL pixels (nearest neighbour: tiny images stay
 * crisp); columns = ceil(sqrt(n)). */
#ifndef DSR_CONTACT_SHEET_H
#define DSR_CONTACT_SHEET_H

#include <stdint.h>

#include "base/error.h"

#define CONTACT_MIN_CELL 128
#define CONTACT_MAX_IMAGES 256

struct sheet_image {
    const uint8_t *rgb; /* HWC RGB8, borrowed */
    int width, height;
    const char *label;  /* drawn in the caption strip */
};

/* *out receives a malloc'ed width*height*3 image (caller frees). */
int contact_sheet_build(const struct sheet_image *images, int n, uint8_t **out, int *width, int *height,
                        struct dsr_err *err);

#endif
