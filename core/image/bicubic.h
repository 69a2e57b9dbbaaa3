/* Bicubic resampling of 8-bit RGB images, bit-compatible with Pillow's
 * `Image.resize(size, Image.BICUBIC)` (libImaging/Resample.c) and with
 * PyTorch's uint8 antialiased bicubic (`interpolate(..., mode="bicubic",
 * antialias=True)` on a uint8 CPU tensor, i.e. torchvision's resize, which
 * HF transformers 5's default JanusImageProcessor uses).  Both compute:
 *
 *   - separable cubic convolution kernel with a = -0.5, support 2;
 *   - when downscaling, the kernel is stretched by the scale factor
 *     (antialiasing), so every source pixel contributes;
 *   - weights are normalised per output pixel and converted to fixed point;
 *     each pass rounds and clips to uint8 (horizontal pass first);
 *   - a pass whose size does not change is skipped (PIL copies).
 *
 * Pixels are row-major HWC, 3 bytes per pixel. */
#ifndef DSR_BICUBIC_H
#define DSR_BICUBIC_H

#include <stdint.h>

#include "base/error.h"

/* They differ only in the fixed-point precision of the weights, which moves
 * an occasional output by one level. */
enum bicubic_flavor {
    BICUBIC_TORCH, /* int16 weights, as many fractional bits as fit (<= 22) */
    BICUBIC_PIL,   /* int32 weights with 22 fractional bits */
};

/* Resizes src (src_w x src_h) into dst (dst_w x dst_h, caller-allocated,
 * dst_w * dst_h * 3 bytes).  Fails only on bad sizes or out of memory. */
int bicubic_resize_rgb8(const uint8_t *src, int src_w, int src_h, uint8_t *dst, int dst_w, int dst_h,
                        enum bicubic_flavor flavor, struct dsr_err *err);

#endif
