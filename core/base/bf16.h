/* BF16 (bfloat16) values as stored in checkpoints: the top 16 bits of an
 * IEEE float32, so widening is exact.  Inline: kernels widen weights in
 * their inner loops (nn/gemm_small.c); io/safetensors converts tensors. */
#ifndef DSR_BF16_H
#define DSR_BF16_H

#include <stdint.h>
#include <string.h>

/* The float32 whose top half is h (exact). */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#endif
