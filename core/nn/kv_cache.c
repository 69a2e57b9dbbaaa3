#include "nn/kv_cache.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/big_alloc.h"
#include "base/bf16.h"

const char *kv_dtype_name(enum kv_dtype d) { return d == KV_BF16 ? "bf16" : "float32"; }

static size_t elem_bytes(enum kv_dtype d) { return d == KV_BF16 ? sizeof(uint16_t) : sizeof(float); }

size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim, enum kv_dtype dtype) {
    return 2 * (size_t)n_slots * (size_t)n_layers * (size_t)max_len * (size_t)kv_dim * elem_bytes(dtype);
}

/* Positions stored per layer over all slots. */
static size_t stored_positions(const struct kv_cache *c) {
    return (size_t)c->n_roots * (size_t)c->max_len +
           (size_t)(c->n_slots - c->n_roots) * (size_t)(c->max_len - c->shared_len);
}

size_t kv_cache_storage_bytes(const struct kv_cache *c) {
    return 2 * stored_positions(c) * (size_t)c->n_layers * (size_t)c->kv_dim * elem_bytes(c->dtype);
}

int kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                  enum kv_dtype dtype, struct dsr_err *err) {
    return kv_cache_init_shared(c, n_slots, n_slots, 0, n_layers, max_len, n_kv_heads, head_dim, dtype, err);
}

int kv_cache_init_shared(struct kv_cache *c, int n_slots, int n_roots, int shared_len, int n_layers, int max_len,
                         int n_kv_heads, int head_dim, enum kv_dtype dtype, struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    if (n_slots <= 0 || n_layers <= 0 || max_len <= 0 || n_kv_heads <= 0 || head_dim <= 0 ||
        n_kv_heads > INT_MAX / head_dim)
        return dsr_errf(err, "kv cache: invalid geometry %d slots × %d layers × %d positions × %d heads × %d",
                        n_slots, n_layers, max_len, n_kv_heads, head_dim);
    if (n_roots < 1 || n_roots > n_slots || shared_len < 0 || shared_len >= max_len)
        return dsr_errf(err, "kv cache: %d prefix slots of %d sharing %d of %d positions is not a valid layout",
                        n_roots, n_slots, shared_len, max_len);
    if (dtype != KV_F32 && dtype != KV_BF16) return dsr_errf(err, "kv cache: unknown element type %d", (int)dtype);
    int kv_dim = n_kv_heads * head_dim;
    c->n_slots = n_slots;
    c->n_roots = n_roots;
    c->shared_len = shared_len;
    c->max_len = max_len;
    c->n_layers = n_layers;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->kv_dim = kv_dim;
    c->dtype = dtype;
    size_t positions = stored_positions(c);
    if (positions > SIZE_MAX / 8 / (size_t)n_layers / (size_t)kv_dim) {
        memset(c, 0, sizeof *c);
        return dsr_errf(err, "kv cache: size overflows");
    }
    size_t per = positions * (size_t)n_layers * (size_t)kv_dim;
    bool ok;
    if (dtype == KV_BF16) {
        c->k16 = big_alloc(per * sizeof(uint16_t));
        c->v16 = big_alloc(per * sizeof(uint16_t));
        ok = c->k16 && c->v16;
    } else {
        c->k = big_alloc(per * sizeof(float));
        c->v = big_alloc(per * sizeof(float));
        ok = c->k && c->v;
    }
    c->len = calloc((size_t)n_slots, sizeof(int));
    c->prefix_slot = malloc((size_t)n_slots * sizeof(int));
    c->prefix_len = calloc((size_t)n_slots, sizeof(int));
    if (!ok || !c->len || !c->prefix_slot || !c->prefix_len) {
        double mib = (double)kv_cache_storage_bytes(c) / (1 << 20);
        kv_cache_free(c);
        return dsr_errf(err, "kv cache: out of memory (%.1f MiB)", mib);
    }
    for (int s = 0; s < n_slots; s++) c->prefix_slot[s] = s;
    return 0;
}

int kv_cache_first_position(const struct kv_cache *c, int slot) { return slot < c->n_roots ? 0 : c->shared_len; }

void kv_cache_free(struct kv_cache *c) {
    free(c->k);
    free(c->v);
    free(c->k16);
    free(c->v16);
    free(c->len);
    free(c->prefix_slot);
    free(c->prefix_len);
    memset(c, 0, sizeof *c);
}

/* Element offset of position pos of (slot, layer, kv_head): the roots'
 * blocks of max_len positions, then the members' blocks of max_len −
 * shared_len positions starting at shared_len. */
static size_t position_offset(const struct kv_cache *c, int slot, int layer, int kv_head, int pos) {
    size_t per_slot = (size_t)c->n_layers * (size_t)c->n_kv_heads, head = (size_t)layer * c->n_kv_heads + kv_head;
    size_t hd = (size_t)c->head_dim;
    if (slot < c->n_roots) return (((size_t)slot * per_slot + head) * (size_t)c->max_len + (size_t)pos) * hd;
    size_t span = (size_t)(c->max_len - c->shared_len);
    size_t roots = (size_t)c->n_roots * per_slot * (size_t)c->max_len;
    return (roots + ((size_t)(slot - c->n_roots) * per_slot + head) * span + (size_t)(pos - c->shared_len)) * hd;
}

const float *kv_cache_rows(const struct kv_cache *c, enum kv_part part, int slot, int layer, int kv_head, int j0,
                           int j1, float *buf) {
    size_t hd = (size_t)c->head_dim, off = position_offset(c, slot, layer, kv_head, j0);
    if (c->dtype == KV_F32) return (part == KV_KEYS ? c->k : c->v) + off;
    const uint16_t *src = (part == KV_KEYS ? c->k16 : c->v16) + off;
    size_t count = (size_t)(j1 - j0) * hd;
    /* the widening waits on DRAM, not on the conversion: each head's rows
     * are a short stream, so prefetch 2 KiB ahead (bench/README.md) */
    for (size_t i0 = 0; i0 < count; i0 += 32) {
        __builtin_prefetch(src + i0 + 1024);
        size_t n = count - i0 < 32 ? count - i0 : 32;
#pragma omp simd
        for (size_t i = 0; i < n; i++) buf[i0 + i] = bf16_to_f32(src[i0 + i]);
    }
    return buf;
}

void kv_cache_write(struct kv_cache *c, int slot, int layer, int pos, const float *k_rows, const float *v_rows, int n) {
    size_t hd = (size_t)c->head_dim;
    for (int h = 0; h < c->n_kv_heads; h++) {
        size_t at = position_offset(c, slot, layer, h, pos);
        for (int i = 0; i < n; i++) {
            const float *k = k_rows + (size_t)i * c->kv_dim + (size_t)h * hd;
            const float *v = v_rows + (size_t)i * c->kv_dim + (size_t)h * hd;
            size_t dst = at + (size_t)i * hd;
            if (c->dtype == KV_F32) {
                memcpy(c->k + dst, k, hd * sizeof(float));
                memcpy(c->v + dst, v, hd * sizeof(float));
            } else {
                for (size_t d = 0; d < hd; d++) {
                    c->k16[dst + d] = f32_to_bf16(k[d]);
                    c->v16[dst + d] = f32_to_bf16(v[d]);
                }
            }
        }
    }
}

int kv_cache_share_prefix(struct kv_cache *c, int dst, int src, struct dsr_err *err) {
    if (src < 0 || src >= c->n_slots || dst < 0 || dst >= c->n_slots || dst == src)
        return dsr_errf(err, "kv cache: cannot share slot %d into slot %d of %d", src, dst, c->n_slots);
    if (c->len[dst] != 0) return dsr_errf(err, "kv cache: slot %d is not empty", dst);
    if (c->prefix_slot[src] != src) return dsr_errf(err, "kv cache: slot %d reads another slot's prefix", src);
    if (kv_cache_first_position(c, src) != 0)
        return dsr_errf(err, "kv cache: slot %d holds positions from %d on only, not a prefix", src, c->shared_len);
    if (kv_cache_first_position(c, dst) != 0 && c->len[src] != c->shared_len)
        return dsr_errf(err, "kv cache: slot %d continues from position %d, not from a %d-position prefix", dst,
                        c->shared_len, c->len[src]);
    /* src keeps its first marking: a later share at a longer length still
     * reads src's own storage, only not as the same group */
    if (c->prefix_len[src] == 0) c->prefix_len[src] = c->len[src];
    c->prefix_slot[dst] = src;
    c->prefix_len[dst] = c->len[src];
    c->len[dst] = c->len[src];
    return 0;
}

void kv_cache_reset_slot(struct kv_cache *c, int slot) {
    c->len[slot] = 0;
    c->prefix_slot[slot] = slot;
    c->prefix_len[slot] = 0;
}
