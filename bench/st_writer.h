/* Minimal safetensors writer, so the PyTorch peer can load exactly the
 * weights and inputs the C benchmark used.
 *
 * Writes the header (u64 little-endian length, compact JSON padded with
 * spaces to a multiple of 8) and the tensors back to back in the order given;
 * the file is written to PATH.tmp and renamed, so a reader never sees a
 * partial file.  The caller owns every buffer. */
#ifndef DSR_BENCH_ST_WRITER_H
#define DSR_BENCH_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "model/params.h"

struct st_out_tensor {
    char name[DSR_PARAM_NAME_MAX + 32]; /* room for a prefix before a parameter name */
    const char *dtype; /* "F32" or "I32" */
    int ndim;
    int64_t shape[4];
    const void *data;  /* numel · 4 bytes */
};

int st_write_file(const char *path, const struct st_out_tensor *t, size_t n, struct dsr_err *err);

#endif
