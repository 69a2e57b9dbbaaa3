#include "model/vq.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv2d.h"
#include "nn/ops.h"

/* Every norm in the VQ-VAE is GroupNorm(32, eps 1e-6). */
#define VQ_GROUPS 32
#define VQ_NORM_EPS 1e-6f
/* Size limits checked before anything is allocated from config values. */
#define VQ_MAX_CHANNELS 16384
#define VQ_MAX_RES_BLOCKS 64
#define VQ_MAX_IMAGE_SIZE 8192
#define VQ_MAX_PATCHES 256
#define VQ_MAX_EMBED 65536
#define VQ_MAX_CODEBOOK (1 << 24)

struct vq_norm {
    const float *weight, *bias; /* [channels] */
};

/* ResNet block: norm1 → swish → conv1 → norm2 → swish → conv2, plus the
 * input (through the 1×1 nin_shortcut when the channel count changes). */
struct vq_resblock {
    int cin, cout;
    struct vq_norm norm1, norm2;
    struct conv2d conv1, conv2, nin; /* nin's weight absent when cin == cout */
};

/* Single-head spatial self-attention over the h·w positions, 1×1 convs for
 * q, k, v and proj_out, residual add. */
struct vq_attn {
    int channels;
    struct vq_norm norm;
    struct conv2d q, k, v, proj;
};

/* One resolution of the encoder (down.i) or decoder (up.i). */
struct vq_level {
    int n_blocks;
    struct vq_resblock *blocks;
    struct vq_attn *attn;   /* n_blocks entries at the lowest resolution, else NULL */
    bool has_resample;      /* encoder: stride-2 conv; decoder: ×2 upsample then conv */
    struct conv2d resample;
};

struct vq_coder {
    struct conv2d conv_in, conv_out;
    int n_levels;
    struct vq_level levels[DSR_MAX_CH_MULT];
    struct vq_resblock mid_block_1, mid_block_2;
    struct vq_attn mid_attn_1;
    struct vq_norm norm_out;
};

struct vq_model {
    struct vq_config cfg;
    int image_size;
    struct vq_coder enc, dec;
    struct conv2d quant_conv, post_quant_conv;
    const float *codebook; /* [num_embeddings, embed_dim] */
    /* Scratch sizes (floats), fixed by the config. */
    size_t act_floats;    /* largest activation tensor of one image */
    size_t widest_row;    /* largest channels × side of one row of any activation */
    size_t qkv_floats;    /* q, k and v of one image at the lowest resolution */
    size_t scores_floats; /* one image's attention scores */
    size_t wide_floats;   /* the largest BF16-held conv weight, widened per call (0: all float32) */
    int batch;            /* images run together (activations ≤ VQ_BATCH_FLOATS per buffer) */
};

/* ---- configuration ---------------------------------------------------- */

static int vq_check_config(const struct vq_config *q, struct dsr_err *err) {
    if (q->n_ch_mult < 1 || q->n_ch_mult > DSR_MAX_CH_MULT)
        return dsr_errf(err, "vq: channel_multiplier has %d entries (1..%d supported)", q->n_ch_mult, DSR_MAX_CH_MULT);
    if (q->base_channels < 1 || q->base_channels > VQ_MAX_CHANNELS)
        return dsr_errf(err, "vq: base_channels %d out of range", q->base_channels);
    for (int i = 0; i < q->n_ch_mult; i++) {
        long ch = (long)q->base_channels * q->ch_mult[i];
        if (q->ch_mult[i] < 1 || ch > VQ_MAX_CHANNELS || ch % VQ_GROUPS)
            return dsr_errf(err, "vq: channel_multiplier[%d] = %d gives %ld channels (need a positive multiple of %d)",
                            i, q->ch_mult[i], ch, VQ_GROUPS);
    }
    if (q->num_res_blocks < 1 || q->num_res_blocks > VQ_MAX_RES_BLOCKS)
        return dsr_errf(err, "vq: num_res_blocks %d out of range", q->num_res_blocks);
    if (q->num_patches < 1 || q->num_patches > VQ_MAX_PATCHES)
        return dsr_errf(err, "vq: num_patches %d out of range (1..%d)", q->num_patches, VQ_MAX_PATCHES);
    if ((long)q->num_patches << (q->n_ch_mult - 1) > VQ_MAX_IMAGE_SIZE)
        return dsr_errf(err, "vq: image size num_patches·2^%d exceeds %d", q->n_ch_mult - 1, VQ_MAX_IMAGE_SIZE);
    if (q->embed_dim < 1 || q->embed_dim > VQ_MAX_EMBED || q->latent_channels < 1 ||
        q->latent_channels > VQ_MAX_CHANNELS || q->in_channels < 1 || q->in_channels > VQ_MAX_CHANNELS ||
        q->out_channels < 1 || q->out_channels > VQ_MAX_CHANNELS)
        return dsr_errf(err, "vq: embed_dim/latent/in/out channels out of range");
    if (q->num_embeddings < 1 || q->num_embeddings > VQ_MAX_CODEBOOK)
        return dsr_errf(err, "vq: num_embeddings %d out of range", q->num_embeddings);
    if (q->double_latent)
        return dsr_errf(err, "vq: double_latent is not supported (quant_conv expects latent_channels inputs)");
    return 0;
}

int vq_image_size(const struct janus_config *c) {
    if (vq_check_config(&c->vq, NULL)) return 0;
    return c->vq.num_patches << (c->vq.n_ch_mult - 1);
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* ---- declaring and binding tensors: one walk over the architecture ----- */

/* In declare mode (decl set) each tensor is declared frozen; in bind mode
 * (bind set) its data pointer is stored after checking the shape, so the
 * two can never disagree on names or shapes. */
struct vq_walk {
    struct param_table *decl;
    const struct param_table *bind;
    struct dsr_err *err;
    size_t wide_floats; /* bind mode: the largest conv2d_wide_floats seen */
};

/* Declares (frozen) or binds one tensor; a weight (dst_w) may be stored
 * BF16, a vector or codebook (dst) is float32. */
static int walk_any(struct vq_walk *w, const float **dst, struct weight *dst_w, int ndim, const int64_t *shape,
                    const char *name) {
    if (w->decl)
        return dst_w ? pt_declare_weight(w->decl, false, ndim, shape, w->err, "%s", name)
                     : pt_declare(w->decl, false, ndim, shape, w->err, "%s", name);
    const struct param *p = pt_find(w->bind, name);
    if (!p) return dsr_errf(w->err, "vq: parameter %s is not declared", name);
    int same = p->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = p->shape[d] == shape[d];
    if (!same) return dsr_errf(w->err, "vq: parameter %s has an unexpected shape", name);
    if (dst_w) *dst_w = pt_weight(w->bind, p);
    else *dst = pt_data(w->bind, p);
    return 0;
}

static int walk_tensor(struct vq_walk *w, const float **dst, int ndim, const int64_t *shape, const char *name) {
    return walk_any(w, dst, NULL, ndim, shape, name);
}

/* Writes "prefix.suffix" into out (DSR_PARAM_NAME_MAX bytes). */
static int join_name(struct vq_walk *w, char *out, const char *prefix, const char *suffix) {
    int len = snprintf(out, DSR_PARAM_NAME_MAX, "%s.%s", prefix, suffix);
    if (len < 0 || len >= DSR_PARAM_NAME_MAX) return dsr_errf(w->err, "vq: parameter name %s.%s too long", prefix, suffix);
    return 0;
}

static int prefix_name(struct vq_walk *w, char *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int prefix_name(struct vq_walk *w, char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, DSR_PARAM_NAME_MAX, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= DSR_PARAM_NAME_MAX) return dsr_errf(w->err, "vq: parameter name too long");
    return 0;
}

static int walk_conv(struct vq_walk *w, struct conv2d *c, const char *prefix, int cin, int cout, int k, int stride,
                     int pad_lo, int pad_hi) {
    *c = (struct conv2d){.cin = cin, .cout = cout, .k = k, .stride = stride,
                         .pad_top = pad_lo, .pad_left = pad_lo, .pad_bottom = pad_hi, .pad_right = pad_hi};
    char name[DSR_PARAM_NAME_MAX];
    const int64_t wshape[4] = {cout, cin, k, k}, bshape[1] = {cout};
    if (join_name(w, name, prefix, "weight") || walk_any(w, NULL, &c->weight, 4, wshape, name)) return -1;
    if (join_name(w, name, prefix, "bias") || walk_tensor(w, &c->bias, 1, bshape, name)) return -1;
    if (w->bind) w->wide_floats = max_size(w->wide_floats, conv2d_wide_floats(c));
    return 0;
}

/* 3×3, stride 1, padding 1 (every "same" conv of the VQ-VAE). */
static int walk_conv3(struct vq_walk *w, struct conv2d *c, const char *prefix, int cin, int cout) {
    return walk_conv(w, c, prefix, cin, cout, 3, 1, 1, 1);
}

static int walk_conv1(struct vq_walk *w, struct conv2d *c, const char *prefix, int cin, int cout) {
    return walk_conv(w, c, prefix, cin, cout, 1, 1, 0, 0);
}

static int walk_norm(struct vq_walk *w, struct vq_norm *n, const char *prefix, int channels) {
    char name[DSR_PARAM_NAME_MAX];
    const int64_t shape[1] = {channels};
    if (join_name(w, name, prefix, "weight") || walk_tensor(w, &n->weight, 1, shape, name)) return -1;
    if (join_name(w, name, prefix, "bias") || walk_tensor(w, &n->bias, 1, shape, name)) return -1;
    return 0;
}

static int walk_resblock(struct vq_walk *w, struct vq_resblock *rb, const char *prefix, int cin, int cout) {
    char name[DSR_PARAM_NAME_MAX];
    rb->cin = cin;
    rb->cout = cout;
    if (join_name(w, name, prefix, "norm1") || walk_norm(w, &rb->norm1, name, cin)) return -1;
    if (join_name(w, name, prefix, "conv1") || walk_conv3(w, &rb->conv1, name, cin, cout)) return -1;
    if (join_name(w, name, prefix, "norm2") || walk_norm(w, &rb->norm2, name, cout)) return -1;
    if (join_name(w, name, prefix, "conv2") || walk_conv3(w, &rb->conv2, name, cout, cout)) return -1;
    memset(&rb->nin, 0, sizeof rb->nin);
    if (cin != cout && (join_name(w, name, prefix, "nin_shortcut") || walk_conv1(w, &rb->nin, name, cin, cout)))
        return -1;
    return 0;
}

static int walk_attn(struct vq_walk *w, struct vq_attn *a, const char *prefix, int ch) {
    char name[DSR_PARAM_NAME_MAX];
    a->channels = ch;
    if (join_name(w, name, prefix, "norm") || walk_norm(w, &a->norm, name, ch)) return -1;
    if (join_name(w, name, prefix, "q") || walk_conv1(w, &a->q, name, ch, ch)) return -1;
    if (join_name(w, name, prefix, "k") || walk_conv1(w, &a->k, name, ch, ch)) return -1;
    if (join_name(w, name, prefix, "v") || walk_conv1(w, &a->v, name, ch, ch)) return -1;
    if (join_name(w, name, prefix, "proj_out") || walk_conv1(w, &a->proj, name, ch, ch)) return -1;
    return 0;
}

static int walk_mid(struct vq_walk *w, struct vq_coder *cd, const char *coder, int ch) {
    char name[DSR_PARAM_NAME_MAX];
    if (prefix_name(w, name, "%s.mid.block_1", coder) || walk_resblock(w, &cd->mid_block_1, name, ch, ch)) return -1;
    if (prefix_name(w, name, "%s.mid.attn_1", coder) || walk_attn(w, &cd->mid_attn_1, name, ch)) return -1;
    if (prefix_name(w, name, "%s.mid.block_2", coder) || walk_resblock(w, &cd->mid_block_2, name, ch, ch)) return -1;
    return 0;
}

static int alloc_level(struct vq_walk *w, struct vq_level *lv, int n_blocks, bool with_attn) {
    lv->n_blocks = n_blocks;
    lv->blocks = calloc((size_t)n_blocks, sizeof *lv->blocks);
    lv->attn = with_attn ? calloc((size_t)n_blocks, sizeof *lv->attn) : NULL;
    if (!lv->blocks || (with_attn && !lv->attn)) return dsr_errf(w->err, "vq: out of memory");
    return 0;
}

/* HF JanusVQVAEEncoder: down.i has num_res_blocks blocks from
 * base·in_mult[i] to base·ch_mult[i] channels (in_mult = (1,) + ch_mult),
 * attention after each block of the last level, and a stride-2 conv after
 * every level but the last. */
static int walk_encoder(struct vq_walk *w, struct vq_coder *cd, const struct vq_config *q) {
    const char *root = "model.vqmodel.encoder";
    const int L = q->n_ch_mult, base = q->base_channels;
    char name[DSR_PARAM_NAME_MAX];
    cd->n_levels = L;
    if (prefix_name(w, name, "%s.conv_in", root) || walk_conv3(w, &cd->conv_in, name, q->in_channels, base))
        return -1;
    int block_in = base;
    for (int i = 0; i < L; i++) {
        struct vq_level *lv = &cd->levels[i];
        const int block_out = base * q->ch_mult[i];
        if (alloc_level(w, lv, q->num_res_blocks, i == L - 1)) return -1;
        for (int b = 0; b < lv->n_blocks; b++) {
            if (prefix_name(w, name, "%s.down.%d.block.%d", root, i, b) ||
                walk_resblock(w, &lv->blocks[b], name, block_in, block_out))
                return -1;
            block_in = block_out;
            if (lv->attn &&
                (prefix_name(w, name, "%s.down.%d.attn.%d", root, i, b) || walk_attn(w, &lv->attn[b], name, block_in)))
                return -1;
        }
        lv->has_resample = i != L - 1;
        /* pad (0,1,0,1): right and bottom only */
        if (lv->has_resample && (prefix_name(w, name, "%s.down.%d.downsample.conv", root, i) ||
                                 walk_conv(w, &lv->resample, name, block_in, block_in, 3, 2, 0, 1)))
            return -1;
    }
    if (walk_mid(w, cd, root, block_in)) return -1;
    if (prefix_name(w, name, "%s.norm_out", root) || walk_norm(w, &cd->norm_out, name, block_in)) return -1;
    if (prefix_name(w, name, "%s.conv_out", root) || walk_conv3(w, &cd->conv_out, name, block_in, q->latent_channels))
        return -1;
    return 0;
}

/* HF JanusVQVAEDecoder: up.u (u = 0 is the lowest resolution, level
 * L-1-u) has num_res_blocks + 1 blocks to base·ch_mult[L-1-u] channels,
 * attention after each block of up.0, and ×2 upsample + conv after every
 * level but the last. */
static int walk_decoder(struct vq_walk *w, struct vq_coder *cd, const struct vq_config *q) {
    const char *root = "model.vqmodel.decoder";
    const int L = q->n_ch_mult, base = q->base_channels;
    char name[DSR_PARAM_NAME_MAX];
    cd->n_levels = L;
    int block_in = base * q->ch_mult[L - 1];
    if (prefix_name(w, name, "%s.conv_in", root) || walk_conv3(w, &cd->conv_in, name, q->latent_channels, block_in))
        return -1;
    if (walk_mid(w, cd, root, block_in)) return -1;
    for (int u = 0; u < L; u++) {
        struct vq_level *lv = &cd->levels[u];
        const int block_out = base * q->ch_mult[L - 1 - u];
        if (alloc_level(w, lv, q->num_res_blocks + 1, u == 0)) return -1;
        for (int b = 0; b < lv->n_blocks; b++) {
            if (prefix_name(w, name, "%s.up.%d.block.%d", root, u, b) ||
                walk_resblock(w, &lv->blocks[b], name, block_in, block_out))
                return -1;
            block_in = block_out;
            if (lv->attn &&
                (prefix_name(w, name, "%s.up.%d.attn.%d", root, u, b) || walk_attn(w, &lv->attn[b], name, block_in)))
                return -1;
        }
        lv->has_resample = u != L - 1;
        if (lv->has_resample && (prefix_name(w, name, "%s.up.%d.upsample.conv", root, u) ||
                                 walk_conv3(w, &lv->resample, name, block_in, block_in)))
            return -1;
    }
    if (prefix_name(w, name, "%s.norm_out", root) || walk_norm(w, &cd->norm_out, name, block_in)) return -1;
    if (prefix_name(w, name, "%s.conv_out", root) || walk_conv3(w, &cd->conv_out, name, block_in, q->out_channels))
        return -1;
    return 0;
}

static int walk_model(struct vq_walk *w, struct vq_model *m, const struct vq_config *q) {
    const int64_t codebook_shape[2] = {q->num_embeddings, q->embed_dim};
    if (walk_encoder(w, &m->enc, q)) return -1;
    if (walk_conv1(w, &m->quant_conv, "model.vqmodel.quant_conv", q->latent_channels, q->embed_dim)) return -1;
    if (walk_tensor(w, &m->codebook, 2, codebook_shape, "model.vqmodel.quantize.embedding.weight")) return -1;
    if (walk_conv1(w, &m->post_quant_conv, "model.vqmodel.post_quant_conv", q->embed_dim, q->latent_channels))
        return -1;
    if (walk_decoder(w, &m->dec, q)) return -1;
    return 0;
}


/* Images are encoded and decoded VQ_MAX_BATCH at a time at most, fewer when
 * one buffer of their activations would pass VQ_BATCH_FLOATS (16 MiB):
 * dsr-shapes' 64-pixel images go 32 at a time, Janus-Pro's 384-pixel ones
 * (128 channels: 75 MB an activation) one at a time.  Running images
 * together turns each convolution into one GEMM over all of them and each
 * GroupNorm into one parallel loop: per-image calls cost the 16-item /score
 * of dsr-shapes 69 ms of VQ encoding (bench/README.md). */
#define VQ_BATCH_FLOATS ((size_t)4 * 1024 * 1024)
#define VQ_MAX_BATCH 32

/* Largest tensor of one image anywhere in the network: at level i (side
 * S/2^i) it holds base·ch_mult[i] channels, the encoder's level input
 * base·ch_mult[i-1], or the decoder's upsampled input base·ch_mult[i+1]. */
static void size_scratch(struct vq_model *m) {
    const struct vq_config *q = &m->cfg;
    const int L = q->n_ch_mult, S = m->image_size;
    size_t act = max_size((size_t)q->in_channels, (size_t)q->out_channels) * S * S;
    size_t widest_row = 0;
    for (int i = 0; i < L; i++) {
        int mult = q->ch_mult[i];
        if (i > 0 && q->ch_mult[i - 1] > mult) mult = q->ch_mult[i - 1];
        if (i + 1 < L && q->ch_mult[i + 1] > mult) mult = q->ch_mult[i + 1];
        size_t side = (size_t)(S >> i);
        act = max_size(act, (size_t)q->base_channels * mult * side * side);
        widest_row = max_size(widest_row, (size_t)q->base_channels * mult * side);
    }
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    act = max_size(act, max_size((size_t)q->latent_channels, (size_t)q->embed_dim) * P2);
    widest_row = max_size(widest_row, max_size((size_t)q->in_channels, (size_t)q->out_channels) * S);
    widest_row = max_size(widest_row, (size_t)q->latent_channels * q->num_patches);
    m->act_floats = act;
    m->widest_row = widest_row;
    const size_t attn_ch = (size_t)q->base_channels * q->ch_mult[L - 1];
    m->qkv_floats = 3 * attn_ch * P2;
    m->scores_floats = P2 * P2;
    size_t batch = VQ_BATCH_FLOATS / act;
    m->batch = batch < 1 ? 1 : batch > VQ_MAX_BATCH ? VQ_MAX_BATCH : (int)batch;
}

static void free_coder(struct vq_coder *cd) {
    for (int i = 0; i < DSR_MAX_CH_MULT; i++) {
        free(cd->levels[i].blocks);
        free(cd->levels[i].attn);
    }
}

void vq_free(struct vq_model *vq) {
    if (!vq) return;
    free_coder(&vq->enc);
    free_coder(&vq->dec);
    free(vq);
}

int vq_declare(const struct janus_config *c, struct param_table *pt, struct dsr_err *err) {
    if (vq_check_config(&c->vq, err)) return -1;
    struct vq_model *m = calloc(1, sizeof *m);
    if (!m) return dsr_errf(err, "vq: out of memory");
    struct vq_walk w = {.decl = pt, .bind = NULL, .err = err};
    int rc = walk_model(&w, m, &c->vq);
    vq_free(m);
    return rc;
}

int vq_bind(const struct janus_config *c, const struct param_table *pt, struct vq_model **out, struct dsr_err *err) {
    *out = NULL;
    if (vq_check_config(&c->vq, err)) return -1;
    struct vq_model *m = calloc(1, sizeof *m);
    if (!m) return dsr_errf(err, "vq: out of memory");
    m->cfg = c->vq;
    m->image_size = vq_image_size(c);
    struct vq_walk w = {.decl = NULL, .bind = pt, .err = err};
    if (walk_model(&w, m, &c->vq)) {
        vq_free(m);
        return -1;
    }
    size_scratch(m);
    m->wide_floats = w.wide_floats;
    *out = m;
    return 0;
}

/* ---- forward ---------------------------------------------------------- */

/* Per-call scratch for nb images at a time, layout [C, nb, H, W] (see
 * conv2d.h): x holds the running activation, a and b are temporaries of the
 * same capacity (pointers swap as tensors change role), col is the im2col
 * scratch, qkv and scores the attention buffers. */
struct vq_work {
    int nb;
    float *x, *a, *b, *col, *qkv, *scores;
    size_t col_cap;
    float *wide;   /* a BF16 conv weight widened (NULL when none is BF16) */
    float *latent; /* [latent_channels or embed_dim, nb, P²] */
    float *quant;  /* [embed_dim, nb, P²] */
};

static void work_free(struct vq_work *wk) {
    free(wk->x);
    free(wk->a);
    free(wk->b);
    free(wk->col);
    free(wk->qkv);
    free(wk->scores);
    free(wk->wide);
    free(wk->latent);
    free(wk->quant);
    memset(wk, 0, sizeof *wk);
}

static int work_alloc(const struct vq_model *m, int nb, struct vq_work *wk, struct dsr_err *err) {
    const size_t P2 = (size_t)m->cfg.num_patches * m->cfg.num_patches, act = m->act_floats * (size_t)nb;
    memset(wk, 0, sizeof *wk);
    wk->nb = nb;
    /* a 3×3 im2col needs 9× its input: capped, but room for one output row */
    size_t col = 9 * act < CONV2D_COL_BUDGET_FLOATS ? 9 * act : CONV2D_COL_BUDGET_FLOATS;
    wk->col_cap = max_size(col, 9 * m->widest_row);
    wk->x = malloc(act * sizeof(float));
    wk->a = malloc(act * sizeof(float));
    wk->b = malloc(act * sizeof(float));
    wk->col = malloc(wk->col_cap * sizeof(float));
    wk->qkv = malloc(m->qkv_floats * (size_t)nb * sizeof(float));
    wk->scores = malloc(m->scores_floats * sizeof(float));
    wk->wide = m->wide_floats ? malloc(m->wide_floats * sizeof(float)) : NULL;
    wk->latent =
        malloc(max_size((size_t)m->cfg.latent_channels, (size_t)m->cfg.embed_dim) * P2 * (size_t)nb * sizeof(float));
    wk->quant = malloc((size_t)m->cfg.embed_dim * P2 * (size_t)nb * sizeof(float));
    if (!wk->x || !wk->a || !wk->b || !wk->col || !wk->qkv || !wk->scores || !wk->latent || !wk->quant ||
        (m->wide_floats && !wk->wide)) {
        work_free(wk);
        return dsr_errf(err, "vq: out of memory for %d images of %zu-float activations", nb, m->act_floats);
    }
    return 0;
}

static void swap(float **p, float **q) {
    float *t = *p;
    *p = *q;
    *q = t;
}

/* Each function below works on wk->nb images at once; hw, h, w are one image's. */
static void conv(const struct conv2d *c, const float *in, int h, int w, float *out, struct vq_work *wk) {
    conv2d_forward(c, in, wk->nb, h, w, out, wk->col, wk->col_cap, wk->wide);
}

static void norm(const struct vq_norm *n, float *out, const float *in, int channels, int hw, struct vq_work *wk,
                 bool swish) {
    groupnorm_forward(out, in, n->weight, n->bias, channels, wk->nb, hw, VQ_GROUPS, VQ_NORM_EPS, swish);
}

/* wk->x [cin, nb, h, w] → wk->x [cout, nb, h, w] */
static void resblock_forward(const struct vq_resblock *rb, struct vq_work *wk, int h, int w) {
    const int hw = h * w;
    norm(&rb->norm1, wk->a, wk->x, rb->cin, hw, wk, true);
    conv(&rb->conv1, wk->a, h, w, wk->b, wk);
    norm(&rb->norm2, wk->b, wk->b, rb->cout, hw, wk, true);
    conv(&rb->conv2, wk->b, h, w, wk->a, wk);
    if (weight_present(rb->nin.weight)) {
        conv(&rb->nin, wk->x, h, w, wk->b, wk);
        swap(&wk->x, &wk->b);
    }
    op_add_inplace(wk->x, wk->a, (size_t)rb->cout * wk->nb * hw);
}

/* wk->x [C, nb, h, w] += proj_out(v · softmax(qᵀk / √C)ᵀ) over each image's h·w positions. */
static void attn_forward(const struct vq_attn *at, struct vq_work *wk, int h, int w) {
    const int C = at->channels, hw = h * w, ld = wk->nb * hw; /* a channel's row of all images */
    float *q = wk->qkv, *k = q + (size_t)C * ld, *v = k + (size_t)C * ld, *scores = wk->scores;
    norm(&at->norm, wk->a, wk->x, C, hw, wk, false);
    conv(&at->q, wk->a, h, w, q, wk);
    conv(&at->k, wk->a, h, w, k, wk);
    conv(&at->v, wk->a, h, w, v, wk);
    for (int img = 0; img < wk->nb; img++) {
        const size_t o = (size_t)img * hw;
        /* scores[i][j] = Σ_c q[c][i]·k[c][j] / √C */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hw, hw, C, (float)(1.0 / sqrt((double)C)), q + o, ld,
                    k + o, ld, 0.0f, scores, hw);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < hw; i++) op_softmax_row(scores + (size_t)i * hw, hw);
        /* a[c][i] = Σ_j v[c][j]·scores[i][j] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, hw, hw, 1.0f, v + o, ld, scores, hw, 0.0f, wk->a + o,
                    ld);
    }
    conv(&at->proj, wk->a, h, w, wk->b, wk);
    op_add_inplace(wk->x, wk->b, (size_t)C * ld);
}

static void mid_forward(const struct vq_coder *cd, struct vq_work *wk, int side) {
    resblock_forward(&cd->mid_block_1, wk, side, side);
    attn_forward(&cd->mid_attn_1, wk, side, side);
    resblock_forward(&cd->mid_block_2, wk, side, side);
}

/* Final norm_out → swish → conv_out from wk->x [C, nb, side, side] into out. */
static void coder_out(const struct vq_coder *cd, struct vq_work *wk, int side, float *out) {
    norm(&cd->norm_out, wk->a, wk->x, cd->conv_out.cin, side * side, wk, true);
    conv(&cd->conv_out, wk->a, side, side, out, wk);
}

/* pixels [in_channels, nb, S, S] → out [latent_channels, nb, P, P] */
static void encoder_forward(const struct vq_model *m, struct vq_work *wk, const float *pixels, float *out) {
    const struct vq_coder *cd = &m->enc;
    int side = m->image_size;
    conv(&cd->conv_in, pixels, side, side, wk->x, wk);
    for (int i = 0; i < cd->n_levels; i++) {
        const struct vq_level *lv = &cd->levels[i];
        for (int b = 0; b < lv->n_blocks; b++) {
            resblock_forward(&lv->blocks[b], wk, side, side);
            if (lv->attn) attn_forward(&lv->attn[b], wk, side, side);
        }
        if (lv->has_resample) {
            conv(&lv->resample, wk->x, side, side, wk->a, wk);
            swap(&wk->x, &wk->a);
            side /= 2;
        }
    }
    mid_forward(cd, wk, side);
    coder_out(cd, wk, side, out);
}

/* latent [latent_channels, nb, P, P] → pixels [out_channels, nb, S, S] */
static void decoder_forward(const struct vq_model *m, struct vq_work *wk, const float *latent, float *pixels) {
    const struct vq_coder *cd = &m->dec;
    int side = m->cfg.num_patches;
    conv(&cd->conv_in, latent, side, side, wk->x, wk);
    mid_forward(cd, wk, side);
    for (int u = 0; u < cd->n_levels; u++) {
        const struct vq_level *lv = &cd->levels[u];
        for (int b = 0; b < lv->n_blocks; b++) {
            resblock_forward(&lv->blocks[b], wk, side, side);
            if (lv->attn) attn_forward(&lv->attn[b], wk, side, side);
        }
        if (lv->has_resample) {
            upsample_nearest2x(wk->a, wk->x, lv->resample.cin * wk->nb, side, side);
            side *= 2;
            conv(&lv->resample, wk->a, side, side, wk->x, wk);
        }
    }
    coder_out(cd, wk, side, pixels);
}

/* [nb, C, hw] (image-major, the API's layout) ↔ [C, nb, hw] (the work layout). */
static void to_work_layout(float *dst, const float *src, int nb, int channels, size_t hw) {
    for (int i = 0; i < nb; i++)
        for (int c = 0; c < channels; c++)
            memcpy(dst + ((size_t)c * nb + i) * hw, src + ((size_t)i * channels + c) * hw, hw * sizeof *dst);
}

static void from_work_layout(float *dst, const float *src, int nb, int channels, size_t hw) {
    for (int i = 0; i < nb; i++)
        for (int c = 0; c < channels; c++)
            memcpy(dst + ((size_t)i * channels + c) * hw, src + ((size_t)c * nb + i) * hw, hw * sizeof *dst);
}

/* 1 / max(‖row‖, 1e-12) as torch.nn.functional.normalize. */
static double inv_l2norm(const float *x, int dim, size_t stride) {
    double ss = 0.0;
    for (int d = 0; d < dim; d++) ss += (double)x[(size_t)d * stride] * x[(size_t)d * stride];
    double n = sqrt(ss);
    return 1.0 / (n > 1e-12 ? n : 1e-12);
}

/* z [E, n_pos] (channel-major, n_pos = images × P²) → codes [n_pos].
 * Scores in double: squared distance (HF's ‖z‖² + ‖e‖² − 2z·e, computed as
 * Σ(z−e)²) or cosine. */
static void quantize(const struct vq_model *m, const float *z, int n_pos, enum vq_quantizer mode,
                     const double *inv_norms, int32_t *codes) {
    const int E = m->cfg.embed_dim, K = m->cfg.num_embeddings;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < n_pos; p++) {
        int best = 0;
        double best_score = 0.0;
        for (int j = 0; j < K; j++) {
            const float *e = m->codebook + (size_t)j * E;
            double score = 0.0;
            if (mode == VQ_QUANT_EUCLIDEAN) {
                for (int d = 0; d < E; d++) {
                    double diff = (double)z[(size_t)d * n_pos + p] - e[d];
                    score -= diff * diff; /* maximise −distance */
                }
            } else {
                for (int d = 0; d < E; d++) score += (double)z[(size_t)d * n_pos + p] * e[d];
                score *= inv_norms[j]; /* the latent's own norm does not change the argmax */
            }
            if (j == 0 || score > best_score) {
                best = j;
                best_score = score;
            }
        }
        codes[p] = best;
    }
}

int vq_encode(const struct vq_model *vq, const float *pixels, int n, enum vq_quantizer mode, int32_t *codes,
              float *encoder_out, float *quant_in, struct dsr_err *err) {
    if (n < 0) return dsr_errf(err, "vq_encode: negative image count %d", n);
    if (n == 0) return 0;
    if (!pixels || !codes) return dsr_errf(err, "vq_encode: missing pixel or code buffer");
    if (mode != VQ_QUANT_L2 && mode != VQ_QUANT_EUCLIDEAN) return dsr_errf(err, "vq_encode: unknown quantizer %d", mode);
    const struct vq_config *q = &vq->cfg;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    const size_t S2 = (size_t)vq->image_size * vq->image_size;
    double *inv_norms = malloc((size_t)q->num_embeddings * sizeof *inv_norms);
    struct vq_work wk;
    if (!inv_norms) return dsr_errf(err, "vq_encode: out of memory");
    if (work_alloc(vq, n < vq->batch ? n : vq->batch, &wk, err)) {
        free(inv_norms);
        return -1;
    }
    for (int j = 0; j < q->num_embeddings; j++) inv_norms[j] = inv_l2norm(vq->codebook + (size_t)j * q->embed_dim, q->embed_dim, 1);
    for (int i0 = 0; i0 < n; i0 += wk.nb) {
        int nb = n - i0 < wk.nb ? n - i0 : wk.nb;
        wk.nb = nb; /* the last chunk may be smaller */
        /* b is free until the first resblock: the input in the work layout */
        to_work_layout(wk.b, pixels + (size_t)i0 * q->in_channels * S2, nb, q->in_channels, S2);
        encoder_forward(vq, &wk, wk.b, wk.latent);
        conv(&vq->quant_conv, wk.latent, q->num_patches, q->num_patches, wk.quant, &wk);
        quantize(vq, wk.quant, nb * (int)P2, mode, inv_norms, codes + (size_t)i0 * P2);
        if (encoder_out)
            from_work_layout(encoder_out + (size_t)i0 * q->latent_channels * P2, wk.latent, nb, q->latent_channels, P2);
        if (quant_in) from_work_layout(quant_in + (size_t)i0 * q->embed_dim * P2, wk.quant, nb, q->embed_dim, P2);
    }
    work_free(&wk);
    free(inv_norms);
    return 0;
}

int vq_decode(const struct vq_model *vq, const int32_t *codes, int n, float *pixels, struct dsr_err *err) {
    if (n < 0) return dsr_errf(err, "vq_decode: negative image count %d", n);
    if (n == 0) return 0;
    if (!codes || !pixels) return dsr_errf(err, "vq_decode: missing code or pixel buffer");
    const struct vq_config *q = &vq->cfg;
    const int E = q->embed_dim;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    for (size_t i = 0; i < (size_t)n * P2; i++)
        if (codes[i] < 0 || codes[i] >= q->num_embeddings)
            return dsr_errf(err, "vq_decode: code %d at image %zu position %zu is outside the codebook [0, %d)",
                            codes[i], i / P2, i % P2, q->num_embeddings);
    struct vq_work wk;
    if (work_alloc(vq, n < vq->batch ? n : vq->batch, &wk, err)) return -1;
    const size_t S2 = (size_t)vq->image_size * vq->image_size;
    for (int i0 = 0; i0 < n; i0 += wk.nb) {
        int nb = n - i0 < wk.nb ? n - i0 : wk.nb;
        wk.nb = nb;
        /* L2-normalised codebook rows, laid out channel-major [E, nb·P²] (HF get_codebook_entry) */
        for (size_t p = 0; p < (size_t)nb * P2; p++) {
            const float *e = vq->codebook + (size_t)codes[(size_t)i0 * P2 + p] * E;
            double inv = inv_l2norm(e, E, 1);
            for (int d = 0; d < E; d++) wk.quant[(size_t)d * nb * P2 + p] = (float)(e[d] * inv);
        }
        conv(&vq->post_quant_conv, wk.quant, q->num_patches, q->num_patches, wk.latent, &wk);
        /* The buffer that is b now: the decoder's swaps may make it x by the
         * end, but its last conv reads a (the normalised x) and only then
         * writes here, so it is free to take the output. */
        float *out = wk.b;
        decoder_forward(vq, &wk, wk.latent, out);
        from_work_layout(pixels + (size_t)i0 * q->out_channels * S2, out, nb, q->out_channels, S2);
    }
    work_free(&wk);
    return 0;
}
