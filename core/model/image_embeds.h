/* Images in and out of a Janus model, composed from the image modules:
 *
 *   seeing   (understanding path): RGB8 → preprocess → vision tower → aligner
 *            rows; or VQ codes → decode → clamp [-1, 1] → vision input
 *            (the generation reward's view of a generated image);
 *   predicting (generation path):  RGB8 → preprocess at the VQ size into
 *            [-1, 1] → VQ encode → codes;
 *   output:  VQ codes → decode → postprocess → RGB8 (for PNG encoding).
 *
 * Buffers are caller-owned: rows are [n · num_image_tokens, hidden] floats,
 * codes [num_patches²] per image, RGB8 images S×S×3 with S = vq_image_size. */
#ifndef DSR_JANUS_IMAGE_H
#define DSR_JANUS_IMAGE_H

#include <stdint.h>

#include "model/janus_model.h"
#include "model/vq.h"

/* Aligner rows of one RGB8 image of any size (w × h, HWC). */
int janus_embeds_from_rgb(const struct janus_model *m, const uint8_t *rgb, int w, int h, float *rows,
                          struct dsr_err *err);

/* Aligner rows of one image given as VQ codes. */
int janus_embeds_from_codes(const struct janus_model *m, const int32_t *codes, float *rows, struct dsr_err *err);

/* VQ codes of one RGB8 image of any size. */
int janus_codes_from_rgb(const struct janus_model *m, const uint8_t *rgb, int w, int h, enum vq_quantizer mode,
                         int32_t *codes, struct dsr_err *err);

/* RGB8 pixels (S × S × 3) of one image given as VQ codes. */
int janus_rgb_from_codes(const struct janus_model *m, const int32_t *codes, uint8_t *rgb, struct dsr_err *err);

#endif
