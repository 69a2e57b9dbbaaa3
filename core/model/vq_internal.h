/* The VQ-VAE's private layout, shared by vq.c (configuration, binding the
 * weights, sizing the scratch) and vq_forward.c (encode, decode).  Weight
 * pointers are borrowed from the param table; the struct arrays are owned
 * by the vq_model (vq_free). */
#ifndef DSR_MODEL_VQ_INTERNAL_H
#define DSR_MODEL_VQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "model/vq.h"
#include "nn/conv2d.h"

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

/* Images are encoded and decoded VQ_MAX_BATCH at a time at most, fewer when
 * one buffer of their activations would pass VQ_BATCH_FLOATS (16 MiB):
 * dsr-shapes' 64-pixel images go 32 at a time, Janus-Pro's 384-pixel ones
 * (128 channels: 75 MB an activation) one at a time.  Running images
 * together turns each convolution into one GEMM over all of them and each
 * GroupNorm into one parallel loop: per-image calls, each op split over the
 * threads, cost the 16-item /score of dsr-shapes 69 ms of VQ encoding
 * (bench/README.md).  Small images do better still one per thread
 * (vq_forward.c, run_chunks), each thread's activations within the same
 * budget. */
#define VQ_BATCH_FLOATS ((size_t)4 * 1024 * 1024)
#define VQ_MAX_BATCH 32

static inline size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

#endif
