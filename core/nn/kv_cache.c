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

int kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                  enum kv_dtype dtype, struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    if (n_slots <= 0 || n_layers <= 0 || max_len <= 0 || n_kv_heads <= 0 || head_dim <= 0 ||
        n_kv_heads > INT_MAX / head_dim)
        return dsr_errf(err, "kv cache: invalid geometry %d slots × %d layers × %d positions × %d heads × %d",
                        n_slots, n_layers, max_len, n_kv_heads, head_dim);
    if (dtype != KV_F32 && dtype != KV_BF16) return dsr_errf(err, "kv cache: unknown element type %d", (int)dtype);
    int kv_dim = n_kv_heads * head_dim;
    size_t per = (size_t)n_slots * (size_t)n_layers * (size_t)max_len * (size_t)kv_dim;
    if (per > SIZE_MAX / 8) return dsr_errf(err, "kv cache: size overflows");
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
        kv_cache_free(c);
        return dsr_errf(err, "kv cache: out of memory (%.1f MiB)",
                        (double)kv_cache_bytes(n_slots, n_layers, max_len, kv_dim, dtype) / (1 << 20));
    }
    for (int s = 0; s < n_slots; s++) c->prefix_slot[s] = s;
    c->n_slots = n_slots;
    c->n_layers = n_layers;
    c->max_len = max_len;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->kv_dim = kv_dim;
    c->dtype = dtype;
    return 0;
}

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

static size_t head_offset(const struct kv_cache *c, int slot, int layer, int kv_head) {
    size_t block = ((size_t)slot * c->n_layers + (size_t)layer) * (size_t)c->n_kv_heads + (size_t)kv_head;
    return block * (size_t)c->max_len * (size_t)c->head_dim;
}

const float *kv_cache_rows(const struct kv_cache *c, enum kv_part part, int slot, int layer, int kv_head, int j0,
                           int j1, float *buf) {
    size_t hd = (size_t)c->head_dim, off = head_offset(c, slot, layer, kv_head) + (size_t)j0 * hd;
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
        size_t at = head_offset(c, slot, layer, h) + (size_t)pos * hd;
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
