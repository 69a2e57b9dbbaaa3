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
 * optimizer arrays; set by pt_alloc); pt_count() is the number of
 * parameters.
 *
 * BF16 storage (--weights-dtype bf16): tensors declared with
 * pt_declare_matrix / pt_declare_weight (the weights modules read only
 * through struct weight: linear layers, embedding tables, convolutions)
 * are then stored as BF16 in two more arenas, half the bytes; vectors and
 * codebooks stay float32.  BF16-stored tensors have no float32 slot: the
 * float32 arenas hold only the others (offsets are assigned by pt_alloc),
 * so a 7B model's arenas are what it holds, not a 28 GB reservation the
 * kernel's overcommit check refuses.
 * Training needs float32: pt_promote_trainable moves the trainable tensors
 * into a new float32 arena, widening the BF16 ones (the first /update, or
 * --reference at start), after which modules must bind again; offsets of
 * trainable tensors then are those of a float32-held model.
 *
 * Lifecycle: pt_init → pt_declare / pt_declare_matrix (each module declares
 * what it needs, with shapes from the config) → pt_set_bf16 (optional) →
 * pt_alloc → pt_load (from safetensors) or pt_init_random → modules bind
 * pointers with pt_get / pt_get_weight → pt_free.  The table owns the arenas;
 * pointers live until pt_free (BF16 trainable ones until
 * pt_promote_trainable). */
#ifndef DSR_PARAMS_H
#define DSR_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "io/safetensors_dir.h"
#include "nn/lora.h"
#include "nn/weight.h"

#define DSR_PARAM_NAME_MAX 128
#define DSR_PARAM_MAX_DIMS 4
#define PT_ALIGN_FLOATS 16 /* 64 bytes: tensor offsets are multiples of this */

struct param {
    char name[DSR_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[DSR_PARAM_MAX_DIMS];
    size_t numel;
    bool trainable;
    bool matrix;        /* declared with pt_declare_matrix: may be stored BF16 */
    bool bf16;          /* stored BF16 (then its float32 slot is unused) */
    bool adapter;       /* a LoRA factor (pt_declare_adapter): float32, trainable, not in checkpoints */
    size_t offset;      /* in floats, into the trainable or frozen arena (set by pt_alloc; unused when bf16) */
    size_t bf16_offset; /* in elements, into trainable_bf16 or frozen_bf16, when bf16 */
};

struct param_table {
    struct param *items;
    size_t n, cap;
    float *trainable; /* arena of n_trainable floats, 64-byte aligned (big_calloc: free()) */
    float *frozen;    /* arena of n_frozen floats, 64-byte aligned (big_calloc: free()) */
    size_t n_trainable, n_frozen;         /* arena lengths in floats, gaps included */
    size_t numel_trainable, numel_frozen; /* parameters (sums of numel), what pt_count reports */
    bool store_bf16;                      /* pt_set_bf16: matrices stored BF16 */
    uint16_t *trainable_bf16, *frozen_bf16; /* BF16 arenas (NULL when empty) */
    size_t n_trainable_bf16, n_frozen_bf16; /* their lengths in elements */
};

void pt_init(struct param_table *pt);
void pt_free(struct param_table *pt);

/* Declares a tensor named by fmt (printf-style).  Must precede pt_alloc. */
int pt_declare(struct param_table *pt, bool trainable, int ndim, const int64_t *shape, struct dsr_err *err,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A 2-D tensor [rows, cols] that its module reads only through pt_weight,
 * so it may be stored BF16. */
int pt_declare_matrix(struct param_table *pt, bool trainable, int64_t rows, int64_t cols, struct dsr_err *err,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Any tensor its module reads only through pt_weight (e.g. a convolution's
 * [cout, cin, k, k] weight), so it may be stored BF16 like a matrix. */
int pt_declare_weight(struct param_table *pt, bool trainable, int ndim, const int64_t *shape, struct dsr_err *err,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A LoRA factor [rows, cols] (nn/lora.h): always float32 and trainable;
 * pt_load leaves it alone (adapters come from pt_load_adapters or
 * pt_init_adapters). */
int pt_declare_adapter(struct param_table *pt, int64_t rows, int64_t cols, struct dsr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Store matrices BF16 (true) or float32 (false, the default).  Before pt_alloc. */
void pt_set_bf16(struct param_table *pt, bool bf16);

/* Allocates the arenas, zero-filled (gaps included). */
int pt_alloc(struct param_table *pt, struct dsr_err *err);

const struct param *pt_find(const struct param_table *pt, const char *name);
/* float32 data of a tensor; NULL when it is stored BF16. */
float *pt_data(const struct param_table *pt, const struct param *p);
/* BF16 data of a tensor; NULL when it is stored float32. */
uint16_t *pt_data_bf16(const struct param_table *pt, const struct param *p);
/* A tensor as the linear kernels read it, whichever its storage. */
struct weight pt_weight(const struct param_table *pt, const struct param *p);
/* float32 data of the tensor named by fmt, or NULL when not declared (or
 * stored BF16: matrices are bound with pt_get_weight). */
float *pt_get(const struct param_table *pt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The tensor named by fmt as pt_weight gives it; both views NULL when not
 * declared. */
struct weight pt_get_weight(const struct param_table *pt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The adapter of the linear at module path `module` (its factors
 * module + ".lora_A.weight" / ".lora_B.weight") with lora's rank and scale;
 * all zero (not adapted) when lora is NULL, has rank 0 or the factors are
 * not declared. */
struct lora pt_get_lora(const struct param_table *pt, const struct lora_config *lora, const char *module);

/* Makes every trainable tensor float32: a new trainable arena with a slot
 * for each (the float32-held layout), the float32 ones copied, the BF16 ones
 * widened; frees the old arena and the trainable BF16 one (training updates
 * float32 weights).  Pointers into either die: modules must bind again.
 * No-op when nothing trainable is BF16; -1 (nothing changed) when the new
 * arena cannot be allocated. */
int pt_promote_trainable(struct param_table *pt, struct dsr_err *err);

/* Bytes the weights occupy: 4 per float32-stored and 2 per BF16-stored
 * parameter (gaps and untouched slots excluded). */
size_t pt_weight_bytes(const struct param_table *pt);

/* Fills every declared tensor but the adapters from the checkpoint files, converting F32/BF16/
 * F16/F64 to the tensor's storage (BF16 storage rounds to nearest even).  Fails listing the missing tensors by name, or naming a
 * tensor whose shape differs from the declaration. */
int pt_load(struct param_table *pt, const struct st_set *set, struct dsr_err *err);

/* Fills every adapter from an adapter file whose tensor names are
 * prefix + the adapter's name (PEFT: "base_model.model.").  All or
 * nothing: a missing or misshapen adapter tensor, or a tensor in the file
 * that is no adapter of this model, fails naming it before any adapter
 * changes. */
int pt_load_adapters(struct param_table *pt, const struct st_set *set, const char *prefix, struct dsr_err *err);

/* Fresh adapters as PEFT initialises them: every "lora_A" factor uniform in
 * ±1/√cols (kaiming-uniform, a = √5), every "lora_B" zero; seeded. */
void pt_init_adapters(struct param_table *pt, uint64_t seed);

/* Number of adapter parameters (0 without LoRA). */
size_t pt_count_adapters(const struct param_table *pt);

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
