/* A weight matrix as the linear kernels read it: float32 or BF16 storage
 * (--weights-dtype).  A view: the param table owns the memory.
 *
 * Exactly one of f32 / bf16 is set for a present weight; both NULL means
 * absent (e.g. an optional projection).  Layout either way: row-major
 * [out_dim, in_dim], one row per output (nn.Linear). */
#ifndef DSR_WEIGHT_H
#define DSR_WEIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/bf16.h"

struct weight {
    const float *f32;     /* float32 values, or NULL */
    const uint16_t *bf16; /* BF16 bit patterns (core/base/bf16.h), or NULL */
};

static inline bool weight_present(struct weight w) { return w.f32 || w.bf16; }

/* out[cols] = row `row` of a [rows, cols] weight, as float32 (an embedding
 * lookup). */
static inline void weight_copy_row(float *out, struct weight w, size_t row, size_t cols) {
    if (w.f32) {
        memcpy(out, w.f32 + row * cols, cols * sizeof *out);
        return;
    }
    for (size_t j = 0; j < cols; j++) out[j] = bf16_to_f32(w.bf16[row * cols + j]);
}

#endif
