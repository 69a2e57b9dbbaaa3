#include "io/model_config_write.h"

#include <jansson.h>
#include <stdlib.h>

/* Floats are written with 9 significant digits: enough for any float32 to
 * parse back to the same value. */
#define FLOAT_DIGITS 9

static json_t *token_id(int id) { return id >= 0 ? json_integer(id) : json_null(); }

/* mlp_ratio such that the reader's (int)(hidden · (float)ratio) gives back
 * intermediate: the exact ratio when it survives float rounding, else one
 * nudged half a unit up. */
static double mlp_ratio(int hidden, int intermediate) {
    double exact = (double)intermediate / hidden;
    if ((int)(hidden * (float)exact) == intermediate) return exact;
    return (intermediate + 0.5) / hidden;
}

static json_t *text_json(const struct text_config *t) {
    json_t *rope = json_pack("{s:f, s:s}", "rope_theta", (double)t->rope_theta, "rope_type", "default");
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:o, s:b, s:b, s:b, s:s}",
                          "model_type", "llama", "vocab_size", t->vocab_size, "hidden_size", t->hidden_size,
                          "intermediate_size", t->intermediate_size, "num_hidden_layers", t->n_layers,
                          "num_attention_heads", t->n_heads, "num_key_value_heads", t->n_kv_heads, "head_dim",
                          t->head_dim, "max_position_embeddings", t->max_position_embeddings, "rms_norm_eps",
                          (double)t->rms_norm_eps, "rope_theta", (double)t->rope_theta, "rope_parameters", rope,
                          "tie_word_embeddings", t->tie_word_embeddings, "attention_bias", t->attention_bias,
                          "mlp_bias", t->mlp_bias, "hidden_act", "silu");
    if (!o) return NULL;
    json_object_set_new(o, "bos_token_id", token_id(t->bos_token_id));
    json_object_set_new(o, "eos_token_id", token_id(t->eos_token_id));
    json_object_set_new(o, "pad_token_id", token_id(t->pad_token_id));
    return o;
}

static json_t *vision_json(const struct vision_config *v) {
    return json_pack("{s:s, s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:b, s:s}", "model_type",
                     "janus_vision_model", "hidden_size", v->hidden_size, "num_hidden_layers", v->n_layers,
                     "num_attention_heads", v->n_heads, "mlp_ratio", mlp_ratio(v->hidden_size, v->intermediate_size),
                     "image_size", v->image_size, "patch_size", v->patch_size, "num_channels", v->num_channels,
                     "projection_dim", v->projection_dim, "depth", v->depth, "num_image_tokens", v->num_image_tokens,
                     "layer_norm_eps", (double)v->layer_norm_eps, "attention_bias", v->attention_bias, "use_qk_norm",
                     v->use_qk_norm, "hidden_act", "gelu");
}

static json_t *vq_json(const struct vq_config *q) {
    json_t *mult = json_array();
    for (int i = 0; mult && i < q->n_ch_mult; i++) json_array_append_new(mult, json_integer(q->ch_mult[i]));
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:s}", "model_type",
                     "janus_vqgan", "embed_dim", q->embed_dim, "num_embeddings", q->num_embeddings, "latent_channels",
                     q->latent_channels, "base_channels", q->base_channels, "channel_multiplier", mult,
                     "num_res_blocks", q->num_res_blocks, "in_channels", q->in_channels, "out_channels",
                     q->out_channels, "num_patches", q->num_patches, "projection_dim", q->projection_dim,
                     "image_token_embed_dim", q->image_token_embed_dim, "num_hidden_layers", q->num_hidden_layers,
                     "double_latent", q->double_latent, "hidden_act", "gelu");
}

char *janus_config_to_json(const struct janus_config *c, struct dsr_err *err) {
    json_t *root = json_pack("{s:[s], s:s, s:s, s:o, s:o, s:o, s:i, s:b}", "architectures",
                             "JanusForConditionalGeneration", "model_type", "janus", "dtype", "float32", "text_config",
                             text_json(&c->text), "vision_config", vision_json(&c->vision), "vq_config",
                             vq_json(&c->vq), "image_token_id", c->image_token_id, "tie_word_embeddings",
                             c->tie_word_embeddings);
    if (root && c->boi_token_id >= 0) json_object_set_new(root, "boi_token_id", json_integer(c->boi_token_id));
    if (root && c->eoi_token_id >= 0) json_object_set_new(root, "eoi_token_id", json_integer(c->eoi_token_id));
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(FLOAT_DIGITS)) : NULL;
    json_decref(root);
    if (!text) dsr_errf(err, "out of memory serialising config.json");
    return text;
}
