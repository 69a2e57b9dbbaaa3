/* The model's parameters: a table of named float32 tensors (HF names) stored
 * in two contiguous arenas, one for trainable tensors and one for frozen ones
 * (vision tower, VQ-VAE).  Gradients and optimizer state mirror the trainable
 * arena offset for offset, so a tensor's gradient is `grad + p->offset`.
 *
 * Every tensor starts on a 64-byte boundary (offsets are multiples of
 * PT_ALIGN_FLOATS, the arenas are aligned), so SIMD kernels and GEMM packing
 * read whole cache lines.  The gaps between tensors are zero and stay zero:
 * nothing computes a gradient there, so AdamW leaves them at 0, and
 * checkpoints store tensors by name, never the gaps.  n_trainable and
 * n_frozen are the arena lengths, gaps included (the size of gradient and
 * optimizer arrays); pt_count() is the number of parameters.
 *
 * Lifecycle: pt_init → pt_declare (each module declares what it needs, with
 * shapes from the config) → pt_alloc → pt_load (from safetensors) or
 * pt_init_random → modules bind pointers with pt_get → pt_free.
 * The table owns the arenas; pointers from pt_get live until pt_free. */
#ifndef DSR_PARAMS_H
#define DSR_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "io/safetensors_dir.h"

#define DSR_PARAM_NAME_MAX 128
#define DSR_PARAM_MAX_DIMS 4
#define PT_ALIGN_FLOATS 16 /* 64 bytes: tensor offsets are multiples of this */

struct param {
    char name[DSR_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[DSR_PARAM_MAX_DIMS];
    size_t numel;
    bool trainable;
    size_t offset; /* in floats, into the trainable or frozen arena */
};

struct param_table {
    struct param *items;
    size_t n, cap;
    float *trainable; /* arena of n_trainable floats, 64-byte aligned */
    float *frozen;    /* arena of n_frozen floats, 64-byte aligned */
    size_t n_trainable, n_frozen;         /* arena lengths in floats, gaps included */
    size_t numel_trainable, numel_frozen; /* parameters (sums of numel), what pt_count reports */
};

void pt_init(struct param_table *pt);
void pt_free(struct param_table *pt);

/* Declares a tensor named by fmt (printf-style).  Must precede pt_alloc. */
int pt_declare(struct param_table *pt, bool trainable, int ndim, const int64_t *shape, struct dsr_err *err,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Allocates both arenas, zero-filled (gaps included). */
int pt_alloc(struct param_table *pt, struct dsr_err *err);

const struct param *pt_find(const struct param_table *pt, const char *name);
float *pt_data(const struct param_table *pt, const struct param *p);
/* Data of the tensor named by fmt, or NULL when not declared. */
float *pt_get(const struct param_table *pt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills every declared tensor from the checkpoint files, converting F32/BF16/
 * F16/F64 to float32.  Fails listing the missing tensors by name, or naming a
 * tensor whose shape differs from the declaration. */
int pt_load(struct param_table *pt, const struct st_set *set, struct dsr_err *err);

/* Deterministic random init for tests and benchmarks, with the fixtures'
 * scales (not their values): 1-D tensors whose name contains "norm" get
 * 1 + 0.1·u, other 1-D tensors 0.1·u, matrices u/sqrt(fan_in), where u is
 * uniform with unit variance (cheap enough for billions of parameters).
 * Seeded per tensor and per chunk: parallel, yet a function of seed only. */
void pt_init_random(struct param_table *pt, uint64_t seed);

/* The first tensor holding a NaN or an infinity, or NULL when every value is
 * finite (a full pass over the weights: for start-up and reload, not per step). */
const struct param *pt_first_nonfinite(const struct param_table *pt);

/* Number of parameters (trainable only, or all), without the alignment gaps. */
size_t pt_count(const struct param_table *pt, bool trainable_only);

#endif
