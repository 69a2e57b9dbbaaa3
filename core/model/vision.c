/* Janus understanding-path vision tower and aligner (see vision.h).
 *
 * Data flow of vision_tower_forward, all rows of all images at once so the
 * linear layers are single large GEMMs (rows = n_images · tokens):
 *
 *   pixels → patches [rows, C·p·p] → x = patches · Wᵀ + b + pos   (x lives in
 *   the caller's `features` buffer)
 *   per layer:  h = LN1(x); q,k,v = h·W{q,k,v}ᵀ + b;
 *               per image, per head: P = softmax(scale · q_h k_hᵀ); a_h = P v_h
 *               x += a · Wprojᵀ + b
 *               h = LN2(x); m = gelu(h·W1ᵀ + b1); x += m·W2ᵀ + b2
 *   x = post_LN(x)
 *
 * Attention runs directly on the head's column slice of q/k/v (leading
 * dimension = hidden), so no per-head copies are needed. */
#include "model/vision.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

#define TOWER "model.vision_model"
#define ALIGNER "model.aligner"

/* ---- declaration and binding ---------------------------------------------- */

static int declare1(struct param_table *pt, bool trainable, int64_t d0, struct dsr_err *err, const char *name,
                    int layer) {
    int64_t shape[1] = {d0};
    if (layer >= 0) return pt_declare(pt, trainable, 1, shape, err, TOWER ".encoder.layers.%d.%s", layer, name);
    return pt_declare(pt, trainable, 1, shape, err, "%s", name);
}

static int declare2(struct param_table *pt, bool trainable, int64_t d0, int64_t d1, struct dsr_err *err,
                    const char *name, int layer) {
    int64_t shape[2] = {d0, d1};
    if (layer >= 0) return pt_declare(pt, trainable, 2, shape, err, TOWER ".encoder.layers.%d.%s", layer, name);
    return pt_declare(pt, trainable, 2, shape, err, "%s", name);
}

/* A linear layer's weight [out, in] and bias [out]. */
static int declare_linear(struct param_table *pt, bool trainable, int64_t out, int64_t in, struct dsr_err *err,
                          const char *prefix, int layer) {
    char w[DSR_PARAM_NAME_MAX + 8], b[DSR_PARAM_NAME_MAX + 8]; /* pt_declare rejects names past its limit */
    snprintf(w, sizeof w, "%s.weight", prefix);
    snprintf(b, sizeof b, "%s.bias", prefix);
    if (declare2(pt, trainable, out, in, err, w, layer) || declare1(pt, trainable, out, err, b, layer)) return -1;
    return 0;
}

/* A frozen encoder layer's linear: the weight is read only through struct
 * weight, so it may be stored BF16. */
static int declare_layer_linear(struct param_table *pt, int64_t out, int64_t in, struct dsr_err *err,
                                const char *prefix, int layer) {
    if (pt_declare_matrix(pt, false, out, in, err, TOWER ".encoder.layers.%d.%s.weight", layer, prefix)) return -1;
    char b[DSR_PARAM_NAME_MAX + 8];
    snprintf(b, sizeof b, "%s.bias", prefix);
    return declare1(pt, false, out, err, b, layer);
}

int vision_declare(const struct janus_config *c, bool aligner_trainable, struct param_table *pt, struct dsr_err *err) {
    const struct vision_config *v = &c->vision;
    int64_t D = v->hidden_size, F = v->intermediate_size, P = v->projection_dim;
    int64_t patch_shape[4] = {D, v->num_channels, v->patch_size, v->patch_size};

    if (pt_declare(pt, false, 4, patch_shape, err, TOWER ".embeddings.patch_embedding.weight") ||
        declare1(pt, false, D, err, TOWER ".embeddings.patch_embedding.bias", -1) ||
        declare2(pt, false, v->num_image_tokens, D, err, TOWER ".embeddings.position_embedding.weight", -1))
        return -1;
    for (int l = 0; l < v->n_layers; l++) {
        if (declare1(pt, false, D, err, "layer_norm1.weight", l) || declare1(pt, false, D, err, "layer_norm1.bias", l) ||
            declare1(pt, false, D, err, "layer_norm2.weight", l) || declare1(pt, false, D, err, "layer_norm2.bias", l) ||
            declare_layer_linear(pt, D, D, err, "self_attn.q_proj", l) ||
            declare_layer_linear(pt, D, D, err, "self_attn.k_proj", l) ||
            declare_layer_linear(pt, D, D, err, "self_attn.v_proj", l) ||
            declare_layer_linear(pt, D, D, err, "self_attn.projection_layer", l) ||
            declare_layer_linear(pt, F, D, err, "mlp.fc1", l) || declare_layer_linear(pt, D, F, err, "mlp.fc2", l))
            return -1;
    }
    if (declare1(pt, false, D, err, TOWER ".post_layernorm.weight", -1) ||
        declare1(pt, false, D, err, TOWER ".post_layernorm.bias", -1))
        return -1;

    if (declare_linear(pt, aligner_trainable, P, D, err, ALIGNER ".fc1", -1)) return -1;
    for (int i = 0; i < v->depth - 1; i++) {
        char prefix[DSR_PARAM_NAME_MAX];
        snprintf(prefix, sizeof prefix, ALIGNER ".hidden_layers.%d", i);
        if (declare_linear(pt, aligner_trainable, P, P, err, prefix, -1)) return -1;
    }
    return 0;
}

/* pt_get that reports the missing tensor by name. */
static int bind(const struct param_table *pt, const float **dst, const char *name, struct dsr_err *err) {
    *dst = pt_get(pt, "%s", name);
    if (!*dst) return dsr_errf(err, "vision: parameter %s not declared", name);
    return 0;
}

static int bind_layer(const struct param_table *pt, const float **dst, int layer, const char *name,
                      struct dsr_err *err) {
    char full[DSR_PARAM_NAME_MAX];
    snprintf(full, sizeof full, TOWER ".encoder.layers.%d.%s", layer, name);
    return bind(pt, dst, full, err);
}

static int bind_layer_weight(const struct param_table *pt, struct weight *dst, int layer, const char *name,
                             struct dsr_err *err) {
    *dst = pt_get_weight(pt, TOWER ".encoder.layers.%d.%s", layer, name);
    if (!weight_present(*dst))
        return dsr_errf(err, "vision: parameter " TOWER ".encoder.layers.%d.%s not declared", layer, name);
    return 0;
}

int vision_bind(const struct janus_config *c, const struct lora_config *lora, const struct param_table *pt,
                struct vision_model **out, struct dsr_err *err) {
    const struct vision_config *v = &c->vision;
    *out = NULL;
    struct vision_model *vm = calloc(1, sizeof *vm);
    if (!vm) return dsr_errf(err, "vision: out of memory");
    vm->cfg = *v;
    vm->lm_hidden = v->projection_dim;
    vm->layers = calloc((size_t)v->n_layers, sizeof *vm->layers);
    int n_hidden = v->depth - 1;
    /* calloc(0) may return NULL: allocate at least one slot. */
    vm->aligner_hidden_w = calloc((size_t)(n_hidden > 0 ? n_hidden : 1), sizeof *vm->aligner_hidden_w);
    vm->aligner_hidden_b = calloc((size_t)(n_hidden > 0 ? n_hidden : 1), sizeof *vm->aligner_hidden_b);
    vm->aligner_lora = calloc((size_t)n_hidden + 1, sizeof *vm->aligner_lora);
    if (!vm->layers || !vm->aligner_hidden_w || !vm->aligner_hidden_b || !vm->aligner_lora) {
        vision_free(vm);
        return dsr_errf(err, "vision: out of memory");
    }

    int rc = bind(pt, &vm->patch_w, TOWER ".embeddings.patch_embedding.weight", err) ||
             bind(pt, &vm->patch_b, TOWER ".embeddings.patch_embedding.bias", err) ||
             bind(pt, &vm->pos_emb, TOWER ".embeddings.position_embedding.weight", err) ||
             bind(pt, &vm->post_ln_w, TOWER ".post_layernorm.weight", err) ||
             bind(pt, &vm->post_ln_b, TOWER ".post_layernorm.bias", err) ||
             bind(pt, &vm->aligner_fc1_w, ALIGNER ".fc1.weight", err) ||
             bind(pt, &vm->aligner_fc1_b, ALIGNER ".fc1.bias", err);
    for (int l = 0; !rc && l < v->n_layers; l++) {
        struct vision_layer_weights *w = &vm->layers[l];
        rc = bind_layer(pt, &w->ln1_w, l, "layer_norm1.weight", err) ||
             bind_layer(pt, &w->ln1_b, l, "layer_norm1.bias", err) ||
             bind_layer(pt, &w->ln2_w, l, "layer_norm2.weight", err) ||
             bind_layer(pt, &w->ln2_b, l, "layer_norm2.bias", err) ||
             bind_layer_weight(pt, &w->q_w, l, "self_attn.q_proj.weight", err) ||
             bind_layer(pt, &w->q_b, l, "self_attn.q_proj.bias", err) ||
             bind_layer_weight(pt, &w->k_w, l, "self_attn.k_proj.weight", err) ||
             bind_layer(pt, &w->k_b, l, "self_attn.k_proj.bias", err) ||
             bind_layer_weight(pt, &w->v_w, l, "self_attn.v_proj.weight", err) ||
             bind_layer(pt, &w->v_b, l, "self_attn.v_proj.bias", err) ||
             bind_layer_weight(pt, &w->proj_w, l, "self_attn.projection_layer.weight", err) ||
             bind_layer(pt, &w->proj_b, l, "self_attn.projection_layer.bias", err) ||
             bind_layer_weight(pt, &w->fc1_w, l, "mlp.fc1.weight", err) || bind_layer(pt, &w->fc1_b, l, "mlp.fc1.bias", err) ||
             bind_layer_weight(pt, &w->fc2_w, l, "mlp.fc2.weight", err) || bind_layer(pt, &w->fc2_b, l, "mlp.fc2.bias", err);
    }
    for (int i = 0; !rc && i < n_hidden; i++) {
        char name[DSR_PARAM_NAME_MAX];
        snprintf(name, sizeof name, ALIGNER ".hidden_layers.%d.weight", i);
        rc = bind(pt, &vm->aligner_hidden_w[i], name, err);
        snprintf(name, sizeof name, ALIGNER ".hidden_layers.%d.bias", i);
        if (!rc) rc = bind(pt, &vm->aligner_hidden_b[i], name, err);
    }
    bool adapted = lora && lora->rank > 0 && (lora->targets & (1u << LORA_UND_ALIGNER));
    for (int i = 0; !rc && adapted && i <= n_hidden; i++) {
        char mod[DSR_PARAM_NAME_MAX];
        lora_aligner_module(LORA_UND_ALIGNER, i, mod, sizeof mod);
        vm->aligner_lora[i] = pt_get_lora(pt, lora, mod);
        if (!lora_present(&vm->aligner_lora[i])) rc = dsr_errf(err, "missing adapter of %s", mod);
    }
    if (rc) {
        vision_free(vm);
        return -1;
    }
    *out = vm;
    return 0;
}

void vision_free(struct vision_model *vm) {
    if (!vm) return;
    free(vm->layers);
    free(vm->aligner_hidden_w);
    free(vm->aligner_hidden_b);
    free(vm->aligner_lora);
    free(vm);
}

/* ---- tower forward -------------------------------------------------------- */

/* Working buffers of one tower call, carved from one allocation. */
struct tower_scratch {
    float *block;   /* the allocation */
    float *patches; /* [rows, C·p·p] */
    float *h;       /* [rows, D] layer-norm output, then attention output */
    float *q, *k, *v; /* [rows, D] each */
    float *mlp;     /* [rows, F] */
    float *scores;  /* [heads, T, T] one image's attention matrices */
};

static int scratch_alloc(struct tower_scratch *s, const struct vision_config *c, size_t rows, struct dsr_err *err) {
    size_t D = (size_t)c->hidden_size, F = (size_t)c->intermediate_size, T = (size_t)c->num_image_tokens;
    size_t patch_dim = (size_t)c->num_channels * c->patch_size * c->patch_size;
    size_t n_patches = rows * patch_dim, n_h = rows * D, n_mlp = rows * F, n_scores = (size_t)c->n_heads * T * T;
    size_t total = n_patches + 4 * n_h + n_mlp + n_scores;
    s->block = malloc(total * sizeof(float));
    if (!s->block) return dsr_errf(err, "vision: out of memory for %zu-float scratch", total);
    s->patches = s->block;
    s->h = s->patches + n_patches;
    s->q = s->h + n_h;
    s->k = s->q + n_h;
    s->v = s->k + n_h;
    s->mlp = s->v + n_h;
    s->scores = s->mlp + n_mlp;
    return 0;
}

/* Unfolds each image into non-overlapping p×p patches, one row per patch in
 * grid row-major order; within a row the order is (channel, ky, kx), the
 * flattening of the conv weight [D, C, p, p]. */
static void unfold_patches(float *patches, const float *pixels, int n_images, const struct vision_config *c) {
    int C = c->num_channels, S = c->image_size, p = c->patch_size, grid = S / p;
    size_t patch_dim = (size_t)C * p * p;
    int n_rows = n_images * grid * grid;
#pragma omp parallel for if (n_rows > 16)
    for (int r = 0; r < n_rows; r++) {
        int img = r / (grid * grid), gy = (r / grid) % grid, gx = r % grid;
        float *dst = patches + (size_t)r * patch_dim;
        for (int ch = 0; ch < C; ch++) {
            const float *plane = pixels + ((size_t)img * C + ch) * S * S;
            for (int ky = 0; ky < p; ky++) {
                const float *src = plane + (size_t)(gy * p + ky) * S + (size_t)gx * p;
                memcpy(dst, src, (size_t)p * sizeof(float));
                dst += p;
            }
        }
    }
}

/* out[T, D] = multi-head softmax(scale · Q Kᵀ) V for one image; q, k, v, out
 * are [T, D] with head h in columns [h·hd, (h+1)·hd); scores holds
 * n_heads·T·T floats.  The heads are split over the OpenMP team, each
 * thread running its heads' small GEMMs itself (OpenBLAS's OpenMP build runs
 * single-threaded inside a parallel region): one fork per image instead of
 * a threaded sgemm per head and product (dsr-shapes: 64 × 64 × 32 each). */
static void attention_one_image(float *out, const float *q, const float *k, const float *v, float *scores, int T,
                                int D, int n_heads) {
    int hd = D / n_heads;
    float scale = 1.0f / sqrtf((float)hd);
    size_t TT = (size_t)T * T;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < n_heads; h++) {
        size_t col = (size_t)h * hd;
        float *sc = scores + h * TT;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q + col, D, k + col, D, 0.0f, sc, T);
        for (int i = 0; i < T; i++) op_softmax_row(sc + (size_t)i * T, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, sc, T, v + col, D, 0.0f, out + col, D);
    }
}

int vision_tower_forward(const struct vision_model *vm, const float *pixels, int n_images, float *features,
                         struct dsr_err *err) {
    const struct vision_config *c = &vm->cfg;
    int T = c->num_image_tokens, D = c->hidden_size, F = c->intermediate_size;
    int patch_dim = c->num_channels * c->patch_size * c->patch_size;
    float eps = c->layer_norm_eps;
    if (n_images < 1) return dsr_errf(err, "vision: n_images %d must be positive", n_images);
    /* op_linear takes int row counts. */
    if (n_images > INT_MAX / T) return dsr_errf(err, "vision: %d images exceed the row limit", n_images);
    int rows = n_images * T;
    size_t n_x = (size_t)rows * D;

    struct tower_scratch s = {0};
    if (scratch_alloc(&s, c, (size_t)rows, err)) return -1;
    float *x = features; /* the residual stream */

    unfold_patches(s.patches, pixels, n_images, c);
    op_linear(x, s.patches, vm->patch_w, vm->patch_b, rows, patch_dim, D);
    for (int img = 0; img < n_images; img++) op_add_inplace(x + (size_t)img * T * D, vm->pos_emb, (size_t)T * D);

    int rc = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const struct vision_layer_weights *w = &vm->layers[l];
        op_layernorm(s.h, x, w->ln1_w, w->ln1_b, rows, D, eps);
        if (op_linear_w(s.q, s.h, w->q_w, w->q_b, rows, D, D, err) ||
            op_linear_w(s.k, s.h, w->k_w, w->k_b, rows, D, D, err) ||
            op_linear_w(s.v, s.h, w->v_w, w->v_b, rows, D, D, err)) {
            rc = -1;
            break;
        }
        for (int img = 0; img < n_images; img++) {
            size_t off = (size_t)img * T * D;
            attention_one_image(s.h + off, s.q + off, s.k + off, s.v + off, s.scores, T, D, c->n_heads);
        }
        /* q is free now: projection output goes there before the residual add. */
        if (op_linear_w(s.q, s.h, w->proj_w, w->proj_b, rows, D, D, err)) {
            rc = -1;
            break;
        }
        op_add_inplace(x, s.q, n_x);

        op_layernorm(s.h, x, w->ln2_w, w->ln2_b, rows, D, eps);
        if (op_linear_w(s.mlp, s.h, w->fc1_w, w->fc1_b, rows, D, F, err)) {
            rc = -1;
            break;
        }
        op_gelu_erf_inplace(s.mlp, (size_t)rows * F);
        if (op_linear_w(s.q, s.mlp, w->fc2_w, w->fc2_b, rows, F, D, err)) {
            rc = -1;
            break;
        }
        op_add_inplace(x, s.q, n_x);
    }
    if (rc == 0) op_layernorm(x, x, vm->post_ln_w, vm->post_ln_b, rows, D, eps);
    free(s.block);
    return rc;
}

/* ---- aligner -------------------------------------------------------------- */

int vision_aligner_forward(const struct vision_model *vm, const float *features, int n_rows, float *embeds,
                           struct dsr_err *err) {
    int D = vm->cfg.hidden_size, P = vm->lm_hidden, n_hidden = vm->cfg.depth - 1, r = vm->aligner_lora[0].rank;
    if (n_rows < 1) return dsr_errf(err, "vision aligner: n_rows %d must be positive", n_rows);
    /* GEMM output may not alias its input: ping-pong through one buffer;
     * then [n_rows, r] of adapter scratch */
    size_t n = (size_t)n_rows * P;
    float *tmp = malloc((n + (size_t)n_rows * r) * sizeof(float) + 1);
    if (!tmp) return dsr_errf(err, "vision aligner: out of memory for %d rows", n_rows);
    float *u = tmp + n;
    op_linear(embeds, features, vm->aligner_fc1_w, vm->aligner_fc1_b, n_rows, D, P);
    if (lora_present(&vm->aligner_lora[0])) lora_forward(embeds, features, &vm->aligner_lora[0], n_rows, D, P, u);
    for (int i = 0; i < n_hidden; i++) {
        /* Activation precedes each hidden layer; the last layer has none. */
        op_gelu_erf_inplace(embeds, n);
        memcpy(tmp, embeds, n * sizeof(float));
        op_linear(embeds, tmp, vm->aligner_hidden_w[i], vm->aligner_hidden_b[i], n_rows, P, P);
        if (lora_present(&vm->aligner_lora[i + 1]))
            lora_forward(embeds, tmp, &vm->aligner_lora[i + 1], n_rows, P, P, u);
    }
    free(tmp);
    return 0;
}
