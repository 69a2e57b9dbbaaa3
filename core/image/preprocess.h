/* Janus image pre- and post-processing (HF transformers 5
 * `JanusImageProcessor`, torchvision backend, and `JanusImageProcessorPil`).
 *
 * Preprocessing turns an 8-bit RGB image (HWC, any size) into the vision
 * tower's input, float32 CHW [3, S, S]:
 *   1. bicubic resize (bicubic.h) so the longer side is S and the shorter
 *      keeps the aspect ratio: round(short * (S / long)) with Python's
 *      half-to-even round, raised to min_size (and, unlike HF, capped at S
 *      so the output is always S x S);
 *   2. pad to a centred S x S square with the background colour: offset
 *      (S - short) / 2 rounded down, on top for wide images, left for tall;
 *   3. scale by rescale_factor (1/255) to [0, 1], then (x - mean) / std.
 * The torchvision and PIL backends differ only in the resize's fixed-point
 * precision (an occasional pixel one level apart); resize_flavor picks one.
 *
 * Postprocessing turns decoded pixels (float CHW, normalised space, roughly
 * [-1, 1]) into 8-bit HWC for PNG encoding as HF's postprocess does:
 * x * std + mean, times 1/rescale_factor (255), rounded to float32, clipped
 * to [0, 255] and truncated (numpy astype(uint8)), not rounded.
 *
 * Buffers are caller-owned; sizes are given by the config's image_size S. */
#ifndef DSR_IMAGE_PROC_H
#define DSR_IMAGE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/bicubic.h"
#include "base/error.h"

struct janus_image_config {
    int image_size;        /* S: output side, pixels */
    int min_size;          /* lower bound of the resized shorter side, pixels */
    double image_mean[3];  /* per channel, in [0, 1] units */
    double image_std[3];   /* per channel, in [0, 1] units */
    uint8_t background[3]; /* padding colour, 8-bit RGB */
    double rescale_factor; /* uint8 -> [0, 1] multiplier, 1/255 */
    bool do_normalize;     /* apply (x - mean) / std */
    enum bicubic_flavor resize_flavor; /* BICUBIC_TORCH: HF 5 default backend */
};

/* HF/Janus defaults for a vision tower of image_size pixels: mean = std =
 * 0.5, background (127, 127, 127), min_size 14, rescale 1/255, normalise,
 * torchvision-flavoured resize (HF's default backend). */
void janus_image_config_default(struct janus_image_config *c, int image_size);

/* Parses a `preprocessor_config.json` over the defaults for vision_image_size.
 * Keys: image_size or size (an int or {"height", "width"}, which must agree),
 * image_mean, image_std (a number or 3 numbers), background_color, min_size,
 * rescale_factor, do_normalize.  Without background_color the background is
 * int(mean * 255), as HF derives it.  image_processor_type
 * "JanusImageProcessorPil" selects the PIL resize flavour.  A size differing from vision_image_size
 * (when > 0), resample other than bicubic (3) or do_resize/do_pad/do_rescale
 * false are rejected: the vision tower needs exactly this pipeline. */
int janus_image_config_parse(const char *json, size_t len, int vision_image_size, struct janus_image_config *c,
                             struct dsr_err *err);
int janus_image_config_load(const char *path, int vision_image_size, struct janus_image_config *c,
                            struct dsr_err *err);

/* Size of the image after step 1 (before padding) for a w x h input. */
void janus_image_resized_size(const struct janus_image_config *c, int w, int h, int *out_w, int *out_h);

/* Full preprocessing of rgb (w x h, HWC) into out (3 * S * S floats, CHW). */
int janus_image_preprocess(const struct janus_image_config *c, const uint8_t *rgb, int w, int h, float *out,
                           struct dsr_err *err);

/* Step 3 alone, for an image already S x S (anything else is an error). */
int janus_image_normalize_square(const struct janus_image_config *c, const uint8_t *rgb, int w, int h, float *out,
                                 struct dsr_err *err);

/* Decoded pixels chw (3 * S * S, CHW) to 8-bit hwc (S * S * 3, HWC). */
void janus_image_postprocess(const struct janus_image_config *c, const float *chw, uint8_t *hwc);

/* Pixels in [-1, 1] (CHW, 3 * S * S; clamped first) to the vision input:
 * p = (x + 1) / 2 in [0, 1], then (p - mean) / std.  With mean = std = 0.5
 * (Janus) this is the identity on clamped values, so the generation-reward
 * path may feed clamp(VQ decode, -1, 1) to the vision tower unchanged, as
 * the rg.* fixtures do; out may equal in. */
void janus_image_from_pm1(const struct janus_image_config *c, const float *in, float *out);

#endif
