/* safetensors reader (https://github.com/huggingface/safetensors format).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON header, then the
 * data buffer.  The header maps tensor names to {dtype, shape, data_offsets}
 * (offsets relative to the data buffer) plus an optional "__metadata__" map
 * of strings.
 *
 * The file is mmap'ed read-only; tensors point into the mapping, so opening a
 * multi-GB checkpoint costs address space, not memory, until pages are read.
 * Validation is strict and mirrors the reference implementation: header
 * length bound, well-formed JSON object, known dtypes, shape × dtype size ==
 * byte count, offsets contiguous from 0 and ending exactly at the end of the
 * file, no duplicate names.  A bad file yields an error naming the problem.
 *
 * Ownership: st_open() returns a struct st_file owned by the caller and freed
 * with st_close(); tensor structs and their data pointers live until then. */
#ifndef DSR_SAFETENSORS_H
#define DSR_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define ST_MAX_DIMS 8
/* The reference implementation refuses headers over 100 MB. */
#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

enum st_dtype { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL };

struct st_tensor {
    char *name;
    enum st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const uint8_t *data; /* into the mapping */
    size_t nbytes;
};

struct st_meta {
    char *key, *value;
};

struct st_file {
    char *path;
    uint8_t *map;
    size_t map_size;
    bool borrowed; /* map is the caller's buffer (st_open_memory), not an mmap */
    size_t n_tensors;
    struct st_tensor *tensors; /* sorted by name */
    size_t n_meta;
    struct st_meta *meta;
};

int  st_open(const char *path, struct st_file **out, struct dsr_err *err);
/* The same validation over a buffer the caller keeps alive until st_close
 * (e.g. weights compiled into the binary); name is used in messages. */
int  st_open_memory(const char *name, const uint8_t *data, size_t size, struct st_file **out, struct dsr_err *err);
void st_close(struct st_file *f);

/* Binary search by name; NULL when absent. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* Value of a "__metadata__" entry; NULL when absent. */
const char *st_meta_get(const struct st_file *f, const char *key);

size_t      st_dtype_size(enum st_dtype dt);
const char *st_dtype_name(enum st_dtype dt);

/* Converts a floating-point tensor (F64, F32, F16, BF16) to float32 into dst
 * (t->numel floats).  Fails for integer dtypes. */
int st_to_f32(const struct st_tensor *t, float *dst, struct dsr_err *err);
/* The same into BF16 (numel uint16): BF16 copied, other float types rounded
 * to nearest even through float32. */
int st_to_bf16(const struct st_tensor *t, uint16_t *dst, struct dsr_err *err);
/* Whether every value of a floating-point tensor is finite once converted to
 * float32 (an F64 1e300 is not); true for integer dtypes.  Reads the data
 * in place, without converting it. */
int st_finite_f32(const struct st_tensor *t);
/* Converts an integer tensor to int64 into dst (t->numel values). */
int st_to_i64(const struct st_tensor *t, int64_t *dst, struct dsr_err *err);

/* Scalar conversions, exposed for the writer and tests. */
float    st_bf16_to_f32(uint16_t h);
float    st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float f); /* round to nearest even, as PyTorch */

#endif
