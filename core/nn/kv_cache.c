#include "nn/kv_cache.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim) {
    return 2 * (size_t)n_slots * (size_t)n_layers * (size_t)max_len * (size_t)kv_dim * sizeof(float);
}

int kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                  struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    if (n_slots <= 0 || n_layers <= 0 || max_len <= 0 || n_kv_heads <= 0 || head_dim <= 0 ||
        n_kv_heads > INT_MAX / head_dim)
        return dsr_errf(err, "kv cache: invalid geometry %d slots × %d layers × %d positions × %d heads × %d",
                        n_slots, n_layers, max_len, n_kv_heads, head_dim);
    int kv_dim = n_kv_heads * head_dim;
    size_t per = (size_t)n_slots * (size_t)n_layers * (size_t)max_len * (size_t)kv_dim;
    if (per > SIZE_MAX / 8) return dsr_errf(err, "kv cache: size overflows");
    c->k = malloc(per * sizeof(float));
    c->v = malloc(per * sizeof(float));
    c->len = calloc((size_t)n_slots, sizeof(int));
    c->prefix_slot = malloc((size_t)n_slots * sizeof(int));
    c->prefix_len = calloc((size_t)n_slots, sizeof(int));
    if (!c->k || !c->v || !c->len || !c->prefix_slot || !c->prefix_len) {
        kv_cache_free(c);
        return dsr_errf(err, "kv cache: out of memory (%.1f MiB)",
                        (double)kv_cache_bytes(n_slots, n_layers, max_len, kv_dim) / (1 << 20));
    }
    for (int s = 0; s < n_slots; s++) c->prefix_slot[s] = s;
    c->n_slots = n_slots;
    c->n_layers = n_layers;
    c->max_len = max_len;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->kv_dim = kv_dim;
    return 0;
}

void kv_cache_free(struct kv_cache *c) {
    free(c->k);
    free(c->v);
    free(c->len);
    free(c->prefix_slot);
    free(c->prefix_len);
    memset(c, 0, sizeof *c);
}

static size_t head_offset(const struct kv_cache *c, int slot, int layer, int kv_head) {
    size_t block = ((size_t)slot * c->n_layers + (size_t)layer) * (size_t)c->n_kv_heads + (size_t)kv_head;
    return block * (size_t)c->max_len * (size_t)c->head_dim;
}

float *kv_cache_k(const struct kv_cache *c, int slot, int layer, int kv_head) {
    return c->k + head_offset(c, slot, layer, kv_head);
}

float *kv_cache_v(const struct kv_cache *c, int slot, int layer, int kv_head) {
    return c->v + head_offset(c, slot, layer, kv_head);
}

void kv_cache_write(struct kv_cache *c, int slot, int layer, int pos, const float *k_rows, const float *v_rows, int n) {
    size_t hd = (size_t)c->head_dim, bytes = hd * sizeof(float);
    for (int h = 0; h < c->n_kv_heads; h++) {
        float *K = kv_cache_k(c, slot, layer, h) + (size_t)pos * hd;
        float *V = kv_cache_v(c, slot, layer, h) + (size_t)pos * hd;
        for (int i = 0; i < n; i++) {
            memcpy(K + (size_t)i * hd, k_rows + (size_t)i * c->kv_dim + (size_t)h * hd, bytes);
            memcpy(V + (size_t)i * hd, v_rows + (size_t)i * c->kv_dim + (size_t)h * hd, bytes);
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
