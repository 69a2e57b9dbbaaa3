/* The VQ-VAE's configuration and weights: checking the config, declaring
 * and binding every tensor in one walk over the architecture, sizing the
 * scratch.  The forward passes are vq_forward.c. */
#include "model/vq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vq_internal.h"
#include "nn/conv2d.h"

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

