#include "janus/teacher_forcing.h"

#include <stdlib.h>
#include <string.h>

#include "nn/kv_cache.h"
#include "nn/ops.h"

/* Rows per head call: bounds the logits buffer to HEAD_CHUNK × vocab floats. */
#define HEAD_CHUNK 64

int tf_embed_context(const struct janus_model *m, const int32_t *ids, int n, const float *image_embeds,
                     int n_image_rows, float *rows, struct dsr_err *err) {
    int C = m->cfg.text.hidden_size, used = 0;
    for (int i = 0; i < n; i++) {
        float *dst = rows + (size_t)i * C;
        if (ids[i] == m->cfg.image_token_id && image_embeds) {
            if (used == n_image_rows)
                return dsr_errf(err, "context has more image placeholders than the %d image rows given", n_image_rows);
            memcpy(dst, image_embeds + (size_t)used * C, (size_t)C * sizeof(float));
            used++;
        } else if (ids[i] == m->cfg.image_token_id) {
            return dsr_errf(err, "context has an image placeholder at position %d but no image", i);
        } else if (lm_embed_tokens(&m->lm, &ids[i], 1, dst, err)) {
            return dsr_err_prefix(err, "context position %d", i);
        }
    }
    if (used != n_image_rows)
        return dsr_errf(err, "context has %d image placeholders but the image provides %d rows", used, n_image_rows);
    return 0;
}

int tf_embed_item(const struct janus_model *m, const struct tf_item *it, float *rows, struct dsr_err *err) {
    int C = m->cfg.text.hidden_size;
    if (tf_embed_context(m, it->context, it->n_context, it->image_embeds, it->n_image_rows, rows, err)) return -1;
    float *tail = rows + (size_t)it->n_context * C;
    int n_in = it->n_target - 1;
    if (n_in <= 0) return 0;
    if (it->kind == TF_TARGET_CODES) return gen_embed_codes(&m->gen, it->target, n_in, tail, err);
    if (lm_embed_tokens(&m->lm, it->target, n_in, tail, err)) return dsr_err_prefix(err, "target");
    return 0;
}

int tf_head_logprobs(const struct janus_model *m, enum tf_target_kind kind, const float *hidden, int n,
                     const int32_t *chosen, float *logprobs, struct dsr_err *err) {
    int C = m->cfg.text.hidden_size;
    int V = kind == TF_TARGET_CODES ? m->gen.codebook_size : m->cfg.text.vocab_size;
    for (int i = 0; i < n; i++)
        if (chosen[i] < 0 || chosen[i] >= V)
            return dsr_errf(err, "target %s %d at position %d is outside [0, %d)",
                            kind == TF_TARGET_CODES ? "code" : "token", chosen[i], i, V);
    float *logits = malloc((size_t)HEAD_CHUNK * V * sizeof(float));
    if (!logits) return dsr_errf(err, "out of memory for logits");
    int rc = 0;
    for (int r0 = 0; r0 < n && rc == 0; r0 += HEAD_CHUNK) {
        int rows = n - r0 < HEAD_CHUNK ? n - r0 : HEAD_CHUNK;
        const float *h = hidden + (size_t)r0 * C;
        if (kind == TF_TARGET_CODES) rc = gen_head_logits(&m->gen, h, rows, logits, err);
        else rc = lm_logits(&m->lm, h, rows, logits, err);
        for (int i = 0; i < rows && rc == 0; i++) {
            const float *row = logits + (size_t)i * V;
            logprobs[r0 + i] = (float)((double)row[chosen[r0 + i]] - op_logsumexp(row, V));
        }
    }
    free(logits);
    return rc;
}

int tf_logprobs(const struct janus_model *m, const struct tf_item *items, int n_items, float *logprobs,
                struct dsr_err *err) {
    if (n_items <= 0) return 0;
    int C = m->cfg.text.hidden_size;
    size_t total_rows = 0, total_targets = 0;
    int max_len = 0;
    for (int i = 0; i < n_items; i++) {
        const struct tf_item *it = &items[i];
        if (it->n_context < 1) return dsr_errf(err, "item %d: empty context", i);
        if (it->n_target < 1) return dsr_errf(err, "item %d: empty target", i);
        int len = it->n_context + it->n_target - 1;
        max_len = len > max_len ? len : max_len;
        total_rows += (size_t)len;
        total_targets += (size_t)it->n_target;
    }
    struct kv_cache cache;
    if (kv_cache_init(&cache, n_items, m->cfg.text.n_layers, max_len, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32,
                      err))
        return -1;
    float *rows = malloc(total_rows * C * sizeof(float));
    float *target_hidden = malloc(total_targets * C * sizeof(float));
    struct lm_segment *segs = malloc((size_t)n_items * sizeof *segs);
    int rc = 0;
    if (!rows || !target_hidden || !segs) rc = dsr_errf(err, "out of memory for %zu rows", total_rows);

    size_t row = 0;
    for (int i = 0; i < n_items && rc == 0; i++) {
        segs[i].slot = i;
        segs[i].n = items[i].n_context + items[i].n_target - 1;
        rc = tf_embed_item(m, &items[i], rows + row * C, err);
        if (rc) dsr_err_prefix(err, "item %d", i);
        row += (size_t)segs[i].n;
    }
    /* the forward writes hidden states over the input rows (same shape) */
    if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, n_items, rows, rows, err);

    /* gather the rows that predict targets (and the targets, flat) */
    int32_t *chosen = rc == 0 ? malloc(total_targets * sizeof *chosen) : NULL;
    if (rc == 0 && !chosen) rc = dsr_errf(err, "out of memory");
    size_t out = 0;
    row = 0;
    for (int i = 0; i < n_items && rc == 0; i++) {
        const struct tf_item *it = &items[i];
        memcpy(target_hidden + out * C, rows + (row + (size_t)it->n_context - 1) * C,
               (size_t)it->n_target * C * sizeof(float));
        memcpy(chosen + out, it->target, (size_t)it->n_target * sizeof *chosen);
        out += (size_t)it->n_target;
        row += (size_t)segs[i].n;
    }
    /* one head call per run of consecutive items with the same target kind */
    out = 0;
    for (int i = 0; i < n_items && rc == 0;) {
        size_t run = 0;
        int j = i;
        while (j < n_items && items[j].kind == items[i].kind) run += (size_t)items[j++].n_target;
        rc = tf_head_logprobs(m, items[i].kind, target_hidden + out * C, (int)run, chosen + out, logprobs + out, err);
        if (rc) dsr_err_prefix(err, "items %d..%d", i, j - 1);
        out += run;
        i = j;
    }
    free(chosen);
    free(rows);
    free(target_hidden);
    free(segs);
    kv_cache_free(&cache);
    return rc;
}
