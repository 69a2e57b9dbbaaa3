#include "model/gen_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

static bool adapts(const struct lora_config *lora, enum lora_target t) {
    return lora && lora->rank > 0 && (lora->targets & (1u << t));
}

int gen_declare(const struct janus_config *c, const struct lora_config *lora, struct param_table *pt,
                struct dsr_err *err) {
    const bool trainable = !lora || lora->rank == 0; /* with adapters, only they train */
    const struct vq_config *q = &c->vq;
    int64_t K = q->num_embeddings, E = q->embed_dim, W = q->projection_dim, H = q->image_token_embed_dim;
    if (pt_declare_matrix(pt, trainable, K, E, err, "model.generation_embeddings.weight") ||
        pt_declare(pt, trainable, 2, (int64_t[]){W, E}, err, "model.generation_aligner.fc1.weight") ||
        pt_declare(pt, trainable, 1, (int64_t[]){W}, err, "model.generation_aligner.fc1.bias") ||
        pt_declare_matrix(pt, trainable, W, H, err, "model.generation_head.proj_out.weight") ||
        pt_declare(pt, trainable, 1, (int64_t[]){W}, err, "model.generation_head.proj_out.bias") ||
        pt_declare_matrix(pt, trainable, K, W, err, "model.generation_head.vision_head.weight") ||
        pt_declare(pt, trainable, 1, (int64_t[]){K}, err, "model.generation_head.vision_head.bias"))
        return -1;
    for (int i = 0; i < q->num_hidden_layers - 1; i++)
        if (pt_declare(pt, trainable, 2, (int64_t[]){W, W}, err, "model.generation_aligner.hidden_layers.%d.weight", i) ||
            pt_declare(pt, trainable, 1, (int64_t[]){W}, err, "model.generation_aligner.hidden_layers.%d.bias", i))
            return -1;
    return 0;
}

/* lora's adapter of target t at module (zero when t is not adapted); *ok
 * turns false when it should be there and is not. */
static struct lora bind_adapter(const struct lora_config *lora, enum lora_target t, const struct param_table *pt,
                                const char *module, int *ok) {
    if (!adapts(lora, t)) return (struct lora){0};
    struct lora l = pt_get_lora(pt, lora, module);
    *ok = *ok && lora_present(&l);
    return l;
}

int gen_bind(const struct janus_config *c, const struct lora_config *lora, const struct param_table *pt,
             struct gen_path *g, struct dsr_err *err) {
    memset(g, 0, sizeof *g);
    const struct vq_config *q = &c->vq;
    g->codebook_size = q->num_embeddings;
    g->embed_dim = q->embed_dim;
    g->width = q->projection_dim;
    g->lm_hidden = q->image_token_embed_dim;
    g->n_hidden_layers = q->num_hidden_layers - 1;
    g->embeddings = pt_get_weight(pt, "model.generation_embeddings.weight");
    g->proj_w = pt_get_weight(pt, "model.generation_head.proj_out.weight");
    g->head_w = pt_get_weight(pt, "model.generation_head.vision_head.weight");
    g->fc1_w = pt_get(pt, "model.generation_aligner.fc1.weight");
    g->fc1_b = pt_get(pt, "model.generation_aligner.fc1.bias");
    g->proj_b = pt_get(pt, "model.generation_head.proj_out.bias");
    g->head_b = pt_get(pt, "model.generation_head.vision_head.bias");
    g->hidden_w = calloc((size_t)g->n_hidden_layers + 1, sizeof *g->hidden_w);
    g->hidden_b = calloc((size_t)g->n_hidden_layers + 1, sizeof *g->hidden_b);
    g->aligner_lora = calloc((size_t)g->n_hidden_layers + 1, sizeof *g->aligner_lora);
    if (!g->hidden_w || !g->hidden_b || !g->aligner_lora) {
        gen_release(g);
        return dsr_errf(err, "out of memory");
    }
    int ok = weight_present(g->embeddings) && weight_present(g->proj_w) && weight_present(g->head_w) && g->fc1_w &&
             g->fc1_b && g->proj_b && g->head_b;
    for (int i = 0; i < g->n_hidden_layers; i++) {
        g->hidden_w[i] = pt_get(pt, "model.generation_aligner.hidden_layers.%d.weight", i);
        g->hidden_b[i] = pt_get(pt, "model.generation_aligner.hidden_layers.%d.bias", i);
        ok = ok && g->hidden_w[i] && g->hidden_b[i];
    }
    g->proj_lora = bind_adapter(lora, LORA_GEN_PROJ_OUT, pt, lora_target_module(LORA_GEN_PROJ_OUT), &ok);
    g->head_lora = bind_adapter(lora, LORA_GEN_VISION_HEAD, pt, lora_target_module(LORA_GEN_VISION_HEAD), &ok);
    for (int i = 0; i <= g->n_hidden_layers; i++) {
        char mod[DSR_PARAM_NAME_MAX];
        lora_aligner_module(LORA_GEN_ALIGNER, i, mod, sizeof mod);
        g->aligner_lora[i] = bind_adapter(lora, LORA_GEN_ALIGNER, pt, mod, &ok);
    }
    if (!ok) {
        gen_release(g);
        return dsr_errf(err, "generation path parameters were not declared");
    }
    return 0;
}

void gen_release(struct gen_path *g) {
    free(g->hidden_w);
    free(g->hidden_b);
    free(g->aligner_lora);
    g->hidden_w = NULL;
    g->hidden_b = NULL;
    g->aligner_lora = NULL;
}

int gen_embed_codes(const struct gen_path *g, const int32_t *codes, int n, float *out, struct dsr_err *err) {
    for (int i = 0; i < n; i++)
        if (codes[i] < 0 || codes[i] >= g->codebook_size)
            return dsr_errf(err, "image code %d at position %d is outside the codebook [0, %d)", codes[i], i,
                            g->codebook_size);
    size_t W = (size_t)g->width, E = (size_t)g->embed_dim, r = (size_t)g->aligner_lora[0].rank;
    float *emb = malloc(((size_t)n * E + (size_t)n * r) * sizeof(float) + 1); /* then [n, r] adapter scratch */
    float *tmp = malloc((size_t)n * W * sizeof(float) + 1);
    if (!emb || !tmp) {
        free(emb);
        free(tmp);
        return dsr_errf(err, "out of memory embedding %d codes", n);
    }
    for (int i = 0; i < n; i++) weight_copy_row(emb + (size_t)i * E, g->embeddings, (size_t)codes[i], E);
    /* fc1, then (GELU → hidden layer) for each hidden layer; the result lands in out */
    float *cur = g->n_hidden_layers % 2 ? tmp : out;
    float *next = g->n_hidden_layers % 2 ? out : tmp;
    float *u = emb + (size_t)n * E;
    op_linear(cur, emb, g->fc1_w, g->fc1_b, n, (int)E, (int)W);
    if (lora_present(&g->aligner_lora[0])) lora_forward(cur, emb, &g->aligner_lora[0], n, (int)E, (int)W, u);
    for (int i = 0; i < g->n_hidden_layers; i++) {
        op_gelu_erf_inplace(cur, (size_t)n * W);
        op_linear(next, cur, g->hidden_w[i], g->hidden_b[i], n, (int)W, (int)W);
        if (lora_present(&g->aligner_lora[i + 1]))
            lora_forward(next, cur, &g->aligner_lora[i + 1], n, (int)W, (int)W, u);
        float *swap = cur;
        cur = next;
        next = swap;
    }
    free(emb);
    free(tmp);
    return 0;
}

int gen_head_logits(const struct gen_path *g, const float *hidden, int n, float *logits, struct dsr_err *err) {
    int r = g->proj_lora.rank > g->head_lora.rank ? g->proj_lora.rank : g->head_lora.rank;
    float *mid = malloc(((size_t)n * g->width + (size_t)n * r) * sizeof(float) + 1);
    if (!mid) return dsr_errf(err, "out of memory in generation head");
    float *u = mid + (size_t)n * g->width; /* [n, r] adapter scratch */
    int rc = op_linear_w(mid, hidden, g->proj_w, g->proj_b, n, g->lm_hidden, g->width, err);
    if (rc == 0) {
        if (lora_present(&g->proj_lora)) lora_forward(mid, hidden, &g->proj_lora, n, g->lm_hidden, g->width, u);
        op_gelu_erf_inplace(mid, (size_t)n * g->width);
        rc = op_linear_w(logits, mid, g->head_w, g->head_b, n, g->width, g->codebook_size, err);
    }
    if (rc == 0 && lora_present(&g->head_lora))
        lora_forward(logits, mid, &g->head_lora, n, g->width, g->codebook_size, u);
    free(mid);
    return rc;
}
