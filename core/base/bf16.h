/* BF16 (bfloat16) values as stored in checkpoints: the top 16 bits of an
 * IEEE float32, so widening is exact.  Inline: kernels widen weights in
 * their inner loops (nn/gemm_small.c) and the KV cache rounds its rows
 * (nn/kv_cache.c); io/safetensors converts tensors. */
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

/* f rounded to the nearest BF16, ties to even (as PyTorch); NaN stays a
 * quiet NaN. */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

#endif
