/* safetensors writer for float32 (and BF16) tensors (the format safetensors.h reads).
 *
 * Layout: u64 little-endian header length, a JSON header {"__metadata__":
 * {...}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
 * padded with spaces to a multiple of 8 bytes, then the tensors' bytes in
 * the given order.  The data are written as the host's floats, so the host
 * must be little-endian (x86-64, AArch64).  The file is fsync'ed before
 * st_write_f32() returns; the caller makes the write atomic (temp + rename). */
#ifndef DSR_SAFETENSORS_WRITE_H
#define DSR_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct st_out {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;     /* numel = Π shape, written as F32; or NULL and */
    const uint16_t *bf16;  /* BF16 values, written as BF16 (as stored: lossless) */
};

/* meta: n_meta (key, value) pairs as meta[2i], meta[2i+1]. */
int st_write_f32(const char *path, const struct st_out *tensors, size_t n, const char *const *meta, size_t n_meta,
                 struct dsr_err *err);

#endif
