#include "model/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/big_alloc.h"
#include "base/bf16.h"
#include "base/rng.h"

void pt_init(struct param_table *pt) { memset(pt, 0, sizeof *pt); }

void pt_free(struct param_table *pt) {
    free(pt->items);
    free(pt->trainable);
    free(pt->frozen);
    free(pt->trainable_bf16);
    free(pt->frozen_bf16);
    memset(pt, 0, sizeof *pt);
}

static int declare_v(struct param_table *pt, bool trainable, bool matrix, bool adapter, int ndim,
                     const int64_t *shape, struct dsr_err *err, const char *fmt, va_list ap) {
    if (pt->trainable || pt->frozen) return dsr_errf(err, "pt_declare after pt_alloc");
    if (ndim < 1 || ndim > DSR_PARAM_MAX_DIMS) return dsr_errf(err, "parameter rank %d unsupported", ndim);
    if (pt->n == pt->cap) {
        size_t cap = pt->cap ? pt->cap * 2 : 256;
        struct param *grown = realloc(pt->items, cap * sizeof *grown);
        if (!grown) return dsr_errf(err, "out of memory");
        pt->items = grown;
        pt->cap = cap;
    }
    struct param *p = &pt->items[pt->n];
    memset(p, 0, sizeof *p);
    int len = vsnprintf(p->name, sizeof p->name, fmt, ap);
    if (len < 0 || (size_t)len >= sizeof p->name) return dsr_errf(err, "parameter name too long");
    if (pt_find(pt, p->name)) return dsr_errf(err, "parameter %s declared twice", p->name);
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0) return dsr_errf(err, "parameter %s: dimension %d is %lld", p->name, d, (long long)shape[d]);
        p->shape[d] = shape[d];
        p->numel *= (size_t)shape[d];
    }
    p->trainable = trainable;
    p->matrix = matrix;
    p->adapter = adapter;
    if (trainable) pt->numel_trainable += p->numel;
    else pt->numel_frozen += p->numel;
    pt->n++;
    return 0;
}

int pt_declare(struct param_table *pt, bool trainable, int ndim, const int64_t *shape, struct dsr_err *err,
               const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = declare_v(pt, trainable, false, false, ndim, shape, err, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_declare_matrix(struct param_table *pt, bool trainable, int64_t rows, int64_t cols, struct dsr_err *err,
                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = declare_v(pt, trainable, true, false, 2, (int64_t[]){rows, cols}, err, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_declare_weight(struct param_table *pt, bool trainable, int ndim, const int64_t *shape, struct dsr_err *err,
                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = declare_v(pt, trainable, true, false, ndim, shape, err, fmt, ap);
    va_end(ap);
    return rc;
}

int pt_declare_adapter(struct param_table *pt, int64_t rows, int64_t cols, struct dsr_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = declare_v(pt, true, false, true, 2, (int64_t[]){rows, cols}, err, fmt, ap);
    va_end(ap);
    return rc;
}

void pt_set_bf16(struct param_table *pt, bool bf16) { pt->store_bf16 = bf16; }

/* Float32 slots, in declaration order, 64-byte aligned, for the tensors of
 * one arena (trainable or frozen) that are not stored BF16 (all of them
 * when with_bf16): sets their offsets and returns the arena's length. */
static size_t layout_f32(struct param_table *pt, bool trainable, bool with_bf16) {
    size_t len = 0;
    for (size_t i = 0; i < pt->n; i++) {
        struct param *p = &pt->items[i];
        if (p->trainable != trainable || (p->bf16 && !with_bf16)) continue;
        p->offset = (len + PT_ALIGN_FLOATS - 1) / PT_ALIGN_FLOATS * PT_ALIGN_FLOATS;
        len = p->offset + p->numel;
    }
    return len;
}

/* A zeroed float32 arena of n floats on a 64-byte boundary (at least one
 * block, so an empty arena is still a valid pointer); huge pages: decode
 * streams the whole arena every step. */
static float *alloc_arena(size_t n) {
    return big_calloc((n / PT_ALIGN_FLOATS + 1) * PT_ALIGN_FLOATS * sizeof(float));
}

/* A BF16 arena of n elements (tensors on 64-byte boundaries), or NULL when
 * n is 0; *failed set when the allocation fails. */
static uint16_t *alloc_bf16(size_t n, bool *failed) {
    if (!n) return NULL;
    uint16_t *a = big_calloc(n * sizeof(uint16_t));
    if (!a) *failed = true;
    return a;
}

int pt_alloc(struct param_table *pt, struct dsr_err *err) {
    /* BF16 slots, 32 elements (64 bytes) aligned like the float32 ones */
    pt->n_trainable_bf16 = pt->n_frozen_bf16 = 0;
    for (size_t i = 0; i < pt->n; i++) {
        struct param *p = &pt->items[i];
        p->bf16 = pt->store_bf16 && p->matrix;
        if (!p->bf16) continue;
        size_t *len = p->trainable ? &pt->n_trainable_bf16 : &pt->n_frozen_bf16;
        p->bf16_offset = (*len + 31) / 32 * 32;
        *len = p->bf16_offset + p->numel;
    }
    pt->n_trainable = layout_f32(pt, true, false);
    pt->n_frozen = layout_f32(pt, false, false);
    bool failed = false;
    pt->trainable = alloc_arena(pt->n_trainable);
    pt->frozen = alloc_arena(pt->n_frozen);
    pt->trainable_bf16 = alloc_bf16(pt->n_trainable_bf16, &failed);
    pt->frozen_bf16 = alloc_bf16(pt->n_frozen_bf16, &failed);
    if (!pt->trainable || !pt->frozen || failed)
        return dsr_errf(err, "out of memory allocating %zu parameters (%.2f GiB)", pt_count(pt, false),
                        (double)pt_weight_bytes(pt) / (1 << 30));
    return 0;
}

const struct param *pt_find(const struct param_table *pt, const char *name) {
    for (size_t i = 0; i < pt->n; i++)
        if (strcmp(pt->items[i].name, name) == 0) return &pt->items[i];
    return NULL;
}

float *pt_data(const struct param_table *pt, const struct param *p) {
    if (p->bf16) return NULL;
    return (p->trainable ? pt->trainable : pt->frozen) + p->offset;
}

uint16_t *pt_data_bf16(const struct param_table *pt, const struct param *p) {
    if (!p->bf16) return NULL;
    return (p->trainable ? pt->trainable_bf16 : pt->frozen_bf16) + p->bf16_offset;
}

struct weight pt_weight(const struct param_table *pt, const struct param *p) {
    return (struct weight){.f32 = pt_data(pt, p), .bf16 = pt_data_bf16(pt, p)};
}

static const struct param *find_v(const struct param_table *pt, const char *fmt, va_list ap) {
    char name[DSR_PARAM_NAME_MAX];
    vsnprintf(name, sizeof name, fmt, ap);
    return pt_find(pt, name);
}

float *pt_get(const struct param_table *pt, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const struct param *p = find_v(pt, fmt, ap);
    va_end(ap);
    return p ? pt_data(pt, p) : NULL;
}

struct weight pt_get_weight(const struct param_table *pt, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const struct param *p = find_v(pt, fmt, ap);
    va_end(ap);
    return p ? pt_weight(pt, p) : (struct weight){0};
}

struct lora pt_get_lora(const struct param_table *pt, const struct lora_config *lora, const char *module) {
    if (!lora || lora->rank <= 0) return (struct lora){0};
    struct lora l = {.a = pt_get(pt, "%s.lora_A.weight", module),
                     .b = pt_get(pt, "%s.lora_B.weight", module),
                     .rank = lora->rank,
                     .scale = lora->alpha / (float)lora->rank};
    return l.a && l.b ? l : (struct lora){0};
}

static void format_shape(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* 0 when t has p's shape; otherwise an error naming the tensor. */
static int check_shape(const struct param *p, const struct st_tensor *t, const char *name, struct dsr_err *err) {
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (same) return 0;
    char want[96], got[96];
    format_shape(want, sizeof want, p->ndim, p->shape);
    format_shape(got, sizeof got, t->ndim, t->shape);
    return dsr_errf(err, "tensor %s has shape %s, the model implies %s", name, got, want);
}

int pt_load(struct param_table *pt, const struct st_set *set, struct dsr_err *err) {
    /* Collect every missing name first so the user sees the whole list. */
    char missing[DSR_ERR_MSG_MAX - 64] = "";
    size_t n_missing = 0;
    for (size_t i = 0; i < pt->n; i++) {
        if (pt->items[i].adapter || st_set_find(set, pt->items[i].name)) continue;
        if (n_missing < 6) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof missing - used, "%s%s", n_missing ? ", " : "", pt->items[i].name);
        }
        n_missing++;
    }
    if (n_missing)
        return dsr_errf(err, "checkpoint is missing %zu required tensor(s): %s%s", n_missing, missing,
                        n_missing > 6 ? ", ..." : "");
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (p->adapter) continue;
        const struct st_tensor *t = st_set_find(set, p->name);
        if (check_shape(p, t, p->name, err) ||
            (p->bf16 ? st_to_bf16(t, pt_data_bf16(pt, p), err) : st_to_f32(t, pt_data(pt, p), err)))
            return -1;
    }
    return 0;
}

int pt_load_adapters(struct param_table *pt, const struct st_set *set, const char *prefix, struct dsr_err *err) {
    char name[DSR_PARAM_NAME_MAX + 64];
    size_t n_adapters = 0;
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (!p->adapter) continue;
        n_adapters++;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        const struct st_tensor *t = st_set_find(set, name);
        if (!t) return dsr_errf(err, "adapter is missing tensor %s", name);
        if (check_shape(p, t, name, err)) return -1;
    }
    if (!n_adapters) return dsr_errf(err, "the model has no adapters to load (start it with --lora-rank)");
    size_t plen = strlen(prefix);
    for (size_t f = 0; f < set->n_files; f++)
        for (size_t i = 0; i < set->files[f]->n_tensors; i++) {
            const char *tn = set->files[f]->tensors[i].name;
            const struct param *p = strncmp(tn, prefix, plen) == 0 ? pt_find(pt, tn + plen) : NULL;
            if (!p || !p->adapter)
                return dsr_errf(err, "adapter tensor %s is not an adapter of this model (other targets or ranks?)", tn);
        }
    /* convert into a copy first: a bad value leaves the live adapters alone */
    float *staged = malloc(pt->n_trainable * sizeof(float) + 1);
    if (!staged) return dsr_errf(err, "out of memory loading the adapter");
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (!p->adapter) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        if (st_to_f32(st_set_find(set, name), staged + p->offset, err)) {
            free(staged);
            return -1;
        }
    }
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (p->adapter) memcpy(pt->trainable + p->offset, staged + p->offset, p->numel * sizeof(float));
    }
    free(staged);
    return 0;
}

void pt_init_adapters(struct param_table *pt, uint64_t seed) {
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (!p->adapter) continue;
        float *w = pt_data(pt, p);
        if (!strstr(p->name, "lora_A")) {
            memset(w, 0, p->numel * sizeof *w);
            continue;
        }
        double bound = 1.0 / sqrt((double)p->shape[1]);
        struct dsr_rng rng;
        rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ull * (i + 1)));
        for (size_t j = 0; j < p->numel; j++) w[j] = (float)(bound * (2.0 * rng_uniform(&rng) - 1.0));
    }
}

size_t pt_count_adapters(const struct param_table *pt) {
    size_t n = 0;
    for (size_t i = 0; i < pt->n; i++) n += pt->items[i].adapter ? pt->items[i].numel : 0;
    return n;
}

/* Elements per independently seeded chunk: the result depends only on the
 * seed, never on the thread count. */
#define INIT_CHUNK 65536
/* sqrt(3): U(-1, 1) scaled to unit variance */
#define UNIFORM_UNIT_VARIANCE 1.7320508075688772

void pt_init_random(struct param_table *pt, uint64_t seed) {
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (p->adapter) continue;
        float *w = pt_data(pt, p);
        uint16_t *w16 = pt_data_bf16(pt, p);
        int is_vector = p->ndim == 1;
        int is_norm_weight = is_vector && strstr(p->name, "norm") && strstr(p->name, ".weight");
        double base = is_norm_weight ? 1.0 : 0.0;
        double scale = is_vector ? 0.1 : 1.0 / sqrt((double)(p->numel / (size_t)p->shape[0]));
        size_t n_chunks = (p->numel + INIT_CHUNK - 1) / INIT_CHUNK;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n_chunks; c++) {
            struct dsr_rng rng;
            rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ull * (i + 1)) ^ (c * 0xd1b54a32d192ed03ull));
            size_t end = (c + 1) * INIT_CHUNK < p->numel ? (c + 1) * INIT_CHUNK : p->numel;
            for (size_t j = c * INIT_CHUNK; j < end; j++) {
                float v = (float)(base + scale * UNIFORM_UNIT_VARIANCE * (2.0 * rng_uniform(&rng) - 1.0));
                if (w16) w16[j] = st_f32_to_bf16(v);
                else w[j] = v;
            }
        }
    }
}

int pt_promote_trainable(struct param_table *pt, struct dsr_err *err) {
    if (!pt->trainable_bf16) return 0;
    /* the float32-held layout: every trainable tensor gets its slot */
    size_t *old_offset = malloc((pt->n + 1) * sizeof *old_offset);
    if (!old_offset) return dsr_errf(err, "out of memory promoting the trainable weights");
    for (size_t i = 0; i < pt->n; i++) old_offset[i] = pt->items[i].offset;
    size_t n = layout_f32(pt, true, true);
    float *arena = alloc_arena(n);
    if (!arena) {
        for (size_t i = 0; i < pt->n; i++) pt->items[i].offset = old_offset[i];
        free(old_offset);
        return dsr_errf(err, "out of memory widening the trainable weights to float32 (%.2f GiB)",
                        (double)n * sizeof(float) / (1 << 30));
    }
    for (size_t i = 0; i < pt->n; i++) {
        struct param *p = &pt->items[i];
        if (!p->trainable) continue;
        float *dst = arena + p->offset;
        if (!p->bf16) {
            memcpy(dst, pt->trainable + old_offset[i], p->numel * sizeof *dst);
            continue;
        }
        const uint16_t *src = pt->trainable_bf16 + p->bf16_offset;
#pragma omp parallel for if (p->numel > (1u << 16))
        for (size_t k = 0; k < p->numel; k++) dst[k] = bf16_to_f32(src[k]);
        p->bf16 = false;
    }
    free(old_offset);
    free(pt->trainable);
    pt->trainable = arena;
    pt->n_trainable = n;
    free(pt->trainable_bf16);
    pt->trainable_bf16 = NULL;
    pt->n_trainable_bf16 = 0;
    return 0;
}

size_t pt_weight_bytes(const struct param_table *pt) {
    size_t bytes = 0;
    for (size_t i = 0; i < pt->n; i++) bytes += pt->items[i].numel * (pt->items[i].bf16 ? 2 : 4);
    return bytes;
}

size_t pt_count(const struct param_table *pt, bool trainable_only) {
    return pt->numel_trainable + (trainable_only ? 0 : pt->numel_frozen);
}

const struct param *pt_first_nonfinite(const struct param_table *pt) {
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        const float *x = pt_data(pt, p);
        const uint16_t *x16 = pt_data_bf16(pt, p);
        size_t bad = 0;
        /* BF16: exponent bits all ones (an infinity or a NaN) */
#pragma omp parallel for reduction(+ : bad) if (p->numel > (1u << 16))
        for (size_t k = 0; k < p->numel; k++) bad += x16 ? (x16[k] & 0x7f80) == 0x7f80 : !isfinite(x[k]);
        if (bad) return p;
    }
    return NULL;
}
