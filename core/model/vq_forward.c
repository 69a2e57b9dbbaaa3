/* The VQ-VAE's forward passes: vq_encode (pixels -> codes) and vq_decode
 * (codes -> pixels), in the work layout [C, nb, H, W]. */
#include "model/vq.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "vq_internal.h"
#include "nn/conv2d.h"
#include "nn/ops.h"

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

/* One call's images, in chunks: chunk(vq, wk, ctx, i0, nb) runs images
 * i0..i0+nb-1 with the scratch wk (allocated for wk->nb images).
 *
 * With more than one thread (outside any parallel region) and small images
 * (every thread's activations within one chunk's budget, VQ_BATCH_FLOATS)
 * each thread takes whole images, one at a time, with scratch of its own:
 * the convs' GEMMs then run single-threaded and nothing synchronises inside
 * an image.  Splitting every op of a chunk over the threads instead makes
 * each band's small GEMM (32 output channels × 288 taps × 896 pixels at
 * 64 px) wait on both: on dsr-shapes, /score of 8 captions of 8 PNGs took
 * 55-64 ms against 68-80 and of those plus 8 images' R_G 88-89 against
 * 100-120 (2 threads, alternated runs, 2026-12-04).  Large images (Janus-
 * Pro's 384 px) keep the shared chunks: a copy of their scratch per thread
 * would cost more memory than the batch it replaces. */
typedef void (*vq_chunk_fn)(const struct vq_model *vq, struct vq_work *wk, void *ctx, int i0, int nb);

static int run_chunks(const struct vq_model *vq, int n, vq_chunk_fn chunk, void *ctx, struct dsr_err *err) {
    int threads = omp_get_max_threads();
    if (n > 1 && threads > 1 && !omp_in_parallel() && vq->act_floats * (size_t)threads <= VQ_BATCH_FLOATS) {
        int failed = 0;
#pragma omp parallel reduction(| : failed)
        {
            struct vq_work wk;
            struct dsr_err local = {{0}};
            int ok = work_alloc(vq, 1, &wk, &local) == 0;
            failed |= !ok;
            /* every thread meets the loop (a worksharing construct); one
             * without scratch leaves its images to be redone below */
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < n; i++)
                if (ok) chunk(vq, &wk, ctx, i, 1);
            if (ok) work_free(&wk);
        }
        if (!failed) return 0;
    }
    /* one thread (or a thread short of memory above): chunks of vq->batch images */
    struct vq_work wk;
    if (work_alloc(vq, n < vq->batch ? n : vq->batch, &wk, err)) return -1;
    for (int i0 = 0, cap = wk.nb; i0 < n; i0 += cap) {
        wk.nb = n - i0 < cap ? n - i0 : cap; /* the last chunk may be smaller */
        chunk(vq, &wk, ctx, i0, wk.nb);
    }
    work_free(&wk);
    return 0;
}

struct encode_ctx {
    const float *pixels;
    enum vq_quantizer mode;
    const double *inv_norms;
    int32_t *codes;
    float *encoder_out, *quant_in;
};

static void encode_chunk(const struct vq_model *vq, struct vq_work *wk, void *ctx, int i0, int nb) {
    const struct encode_ctx *c = ctx;
    const struct vq_config *q = &vq->cfg;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    const size_t S2 = (size_t)vq->image_size * vq->image_size;
    /* b is free until the first resblock: the input in the work layout */
    to_work_layout(wk->b, c->pixels + (size_t)i0 * q->in_channels * S2, nb, q->in_channels, S2);
    encoder_forward(vq, wk, wk->b, wk->latent);
    conv(&vq->quant_conv, wk->latent, q->num_patches, q->num_patches, wk->quant, wk);
    quantize(vq, wk->quant, nb * (int)P2, c->mode, c->inv_norms, c->codes + (size_t)i0 * P2);
    if (c->encoder_out)
        from_work_layout(c->encoder_out + (size_t)i0 * q->latent_channels * P2, wk->latent, nb, q->latent_channels, P2);
    if (c->quant_in) from_work_layout(c->quant_in + (size_t)i0 * q->embed_dim * P2, wk->quant, nb, q->embed_dim, P2);
}

int vq_encode(const struct vq_model *vq, const float *pixels, int n, enum vq_quantizer mode, int32_t *codes,
              float *encoder_out, float *quant_in, struct dsr_err *err) {
    if (n < 0) return dsr_errf(err, "vq_encode: negative image count %d", n);
    if (n == 0) return 0;
    if (!pixels || !codes) return dsr_errf(err, "vq_encode: missing pixel or code buffer");
    if (mode != VQ_QUANT_L2 && mode != VQ_QUANT_EUCLIDEAN) return dsr_errf(err, "vq_encode: unknown quantizer %d", mode);
    const struct vq_config *q = &vq->cfg;
    double *inv_norms = malloc((size_t)q->num_embeddings * sizeof *inv_norms);
    if (!inv_norms) return dsr_errf(err, "vq_encode: out of memory");
    for (int j = 0; j < q->num_embeddings; j++) inv_norms[j] = inv_l2norm(vq->codebook + (size_t)j * q->embed_dim, q->embed_dim, 1);
    struct encode_ctx c = {pixels, mode, inv_norms, codes, encoder_out, quant_in};
    int rc = run_chunks(vq, n, encode_chunk, &c, err);
    free(inv_norms);
    return rc;
}

struct decode_ctx {
    const int32_t *codes;
    float *pixels;
};

static void decode_chunk(const struct vq_model *vq, struct vq_work *wk, void *ctx, int i0, int nb) {
    const struct decode_ctx *c = ctx;
    const struct vq_config *q = &vq->cfg;
    const int E = q->embed_dim;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    const size_t S2 = (size_t)vq->image_size * vq->image_size;
    /* L2-normalised codebook rows, laid out channel-major [E, nb·P²] (HF get_codebook_entry) */
    for (size_t p = 0; p < (size_t)nb * P2; p++) {
        const float *e = vq->codebook + (size_t)c->codes[(size_t)i0 * P2 + p] * E;
        double inv = inv_l2norm(e, E, 1);
        for (int d = 0; d < E; d++) wk->quant[(size_t)d * nb * P2 + p] = (float)(e[d] * inv);
    }
    conv(&vq->post_quant_conv, wk->quant, q->num_patches, q->num_patches, wk->latent, wk);
    /* The buffer that is b now: the decoder's swaps may make it x by the
     * end, but its last conv reads a (the normalised x) and only then
     * writes here, so it is free to take the output. */
    float *out = wk->b;
    decoder_forward(vq, wk, wk->latent, out);
    from_work_layout(c->pixels + (size_t)i0 * q->out_channels * S2, out, nb, q->out_channels, S2);
}

int vq_decode(const struct vq_model *vq, const int32_t *codes, int n, float *pixels, struct dsr_err *err) {
    if (n < 0) return dsr_errf(err, "vq_decode: negative image count %d", n);
    if (n == 0) return 0;
    if (!codes || !pixels) return dsr_errf(err, "vq_decode: missing code or pixel buffer");
    const struct vq_config *q = &vq->cfg;
    const size_t P2 = (size_t)q->num_patches * q->num_patches;
    for (size_t i = 0; i < (size_t)n * P2; i++)
        if (codes[i] < 0 || codes[i] >= q->num_embeddings)
            return dsr_errf(err, "vq_decode: code %d at image %zu position %zu is outside the codebook [0, %d)",
                            codes[i], i / P2, i % P2, q->num_embeddings);
    struct decode_ctx c = {codes, pixels};
    return run_chunks(vq, n, decode_chunk, &c, err);
}
