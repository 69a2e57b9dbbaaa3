/* VQ-VAE image tokenizer (frozen): encoder → quant_conv → codebook lookup
 * (encode), codebook → post_quant_conv → decoder (decode).
 *
 * HF names: model.vqmodel.* (JanusVQVAE).  Pixel tensors are NCHW float32 in
 * [-1, 1] (the normalised space), images of vq_image_size() pixels square;
 * codes are row-major over the num_patches × num_patches latent grid.
 *
 * Ownership: vq_bind() keeps pointers into the param_table, which must
 * outlive the model; free with vq_free(). */
#ifndef DSR_VQ_H
#define DSR_VQ_H

#include <stdint.h>

#include "base/error.h"
#include "io/model_config.h"
#include "model/params.h"

enum vq_quantizer {
    VQ_QUANT_L2,        /* original Janus/LlamaGen: L2-normalise latents and codebook, max cosine */
    VQ_QUANT_EUCLIDEAN, /* HF transformers: argmin of squared distance */
};

struct vq_model; /* defined in vq.c */

int vq_declare(const struct janus_config *c, struct param_table *pt, struct dsr_err *err);
int vq_bind(const struct janus_config *c, const struct param_table *pt, struct vq_model **out, struct dsr_err *err);
void vq_free(struct vq_model *vq);

/* Side length in pixels of the images the VQ-VAE encodes and decodes
 * (num_patches · 2^(len(channel_multiplier) - 1)); 0 when the VQ config is
 * unsupported (vq_declare/vq_bind say why). */
int vq_image_size(const struct janus_config *c);

/* pixels [n, in_channels, S, S] → codes [n, num_patches²].  encoder_out
 * [n, latent_channels, P, P] and quant_in [n, embed_dim, P, P] are optional
 * (NULL to skip) intermediate outputs for testing.  The image size is not a
 * parameter: S is always vq_image_size(), so callers resize first (the image
 * processor's job) and a wrong-sized image cannot be passed.  Scratch is
 * allocated per call (about 3 activations of the largest level plus a
 * bounded im2col band), so concurrent calls on one model are safe. */
int vq_encode(const struct vq_model *vq, const float *pixels, int n, enum vq_quantizer mode, int32_t *codes,
              float *encoder_out, float *quant_in, struct dsr_err *err);

/* codes [n, num_patches²] → pixels [n, out_channels, S, S], not clamped.
 * Codes outside [0, num_embeddings) are an error. */
int vq_decode(const struct vq_model *vq, const int32_t *codes, int n, float *pixels, struct dsr_err *err);

#endif
