/* Janus model hyper-parameters, read from an HF `config.json`
 * (JanusForConditionalGeneration) with HF's defaults for absent keys.
 *
 * Special-token ids that config.json does not carry (BOI, EOI) are -1 until
 * a tokenizer, generation_config.json or a flag supplies them. */
#ifndef DSR_MODEL_CONFIG_H
#define DSR_MODEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define DSR_MAX_CH_MULT 8

struct text_config { /* Llama */
    int vocab_size, hidden_size, intermediate_size;
    int n_layers, n_heads, n_kv_heads, head_dim;
    int max_position_embeddings;
    float rms_norm_eps, rope_theta;
    bool tie_word_embeddings, attention_bias, mlp_bias;
    int bos_token_id, eos_token_id, pad_token_id;
};

struct vision_config { /* SigLIP-style ViT + aligner MLP */
    int hidden_size, n_layers, n_heads, intermediate_size;
    int image_size, patch_size, num_channels;
    int projection_dim; /* aligner output width (= LM hidden) */
    int depth;          /* aligner layers: fc1 + depth-1 hidden layers */
    int num_image_tokens;
    float layer_norm_eps;
    bool attention_bias, use_qk_norm;
};

struct vq_config { /* VQ-VAE + generation embedding/aligner/head */
    int embed_dim, num_embeddings, latent_channels, base_channels;
    int n_ch_mult, ch_mult[DSR_MAX_CH_MULT];
    int num_res_blocks, in_channels, out_channels, num_patches;
    int projection_dim;        /* generation aligner / head width */
    int image_token_embed_dim; /* generation head input (= LM hidden) */
    int num_hidden_layers;     /* generation aligner: fc1 + n-1 hidden layers */
    bool double_latent;
};

struct janus_config {
    struct text_config text;
    struct vision_config vision;
    struct vq_config vq;
    int image_token_id;
    int boi_token_id, eoi_token_id; /* -1 when unknown */
    bool tie_word_embeddings;
};

/* Parses config.json text; validates every size (positive, divisible where
 * the model needs it). */
int janus_config_parse(const char *json_text, size_t len, struct janus_config *out, struct dsr_err *err);
int janus_config_load(const char *path, struct janus_config *out, struct dsr_err *err);

/* Fills HF's defaults (JanusConfig() with LlamaConfig text defaults). */
void janus_config_defaults(struct janus_config *c);

/* Checks internal consistency (head counts divide, vision tokens match the
 * patch grid, codebook/ids sizes positive). */
int janus_config_validate(const struct janus_config *c, struct dsr_err *err);

#endif
