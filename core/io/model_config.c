#include "io/model_config.h"

#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void janus_config_defaults(struct janus_config *c) {
    memset(c, 0, sizeof *c);
    struct text_config *t = &c->text;
    t->vocab_size = 32000;
    t->hidden_size = 4096;
    t->intermediate_size = 11008;
    t->n_layers = 32;
    t->n_heads = 32;
    t->max_position_embeddings = 2048;
    t->rms_norm_eps = 1e-6f;
    t->rope_theta = 10000.0f;
    t->bos_token_id = 1;
    t->eos_token_id = 2;
    t->pad_token_id = -1;

    struct vision_config *v = &c->vision;
    v->hidden_size = 1024;
    v->n_layers = 24;
    v->n_heads = 16;
    v->intermediate_size = 4096; /* hidden * mlp_ratio (4.0) */
    v->image_size = 384;
    v->patch_size = 16;
    v->num_channels = 3;
    v->projection_dim = 2048;
    v->depth = 2;
    v->num_image_tokens = 576;
    v->layer_norm_eps = 1e-6f;
    v->attention_bias = true;

    struct vq_config *q = &c->vq;
    q->embed_dim = 8;
    q->num_embeddings = 16384;
    q->latent_channels = 256;
    q->base_channels = 128;
    q->n_ch_mult = 5;
    int mult[] = {1, 1, 2, 2, 4};
    memcpy(q->ch_mult, mult, sizeof mult);
    q->num_res_blocks = 2;
    q->in_channels = 3;
    q->out_channels = 3;
    q->num_patches = 32;
    q->projection_dim = 2048;
    q->image_token_embed_dim = 2048;
    q->num_hidden_layers = 2;

    c->image_token_id = 100581;
    t->n_kv_heads = t->n_heads;
    t->head_dim = t->hidden_size / t->n_heads;
    c->boi_token_id = -1;
    c->eoi_token_id = -1;
}

/* Reads an optional integer (JSON integer, or a real with integral value). */
static int get_int(json_t *obj, const char *key, int *out, const char *section, struct dsr_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v)) d = json_real_value(v);
    else return dsr_errf(err, "config %s.%s: expected an integer", section, key);
    /* range first: casting an out-of-range double to int is undefined (found by fuzz_config) */
    if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int)d)
        return dsr_errf(err, "config %s.%s: %g is not a 32-bit integer", section, key, d);
    *out = (int)d;
    return 0;
}

static int get_float(json_t *obj, const char *key, float *out, const char *section, struct dsr_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return dsr_errf(err, "config %s.%s: expected a number", section, key);
    double d = json_number_value(v);
    /* converting a double outside float's range is undefined behaviour */
    if (!(d >= -FLT_MAX && d <= FLT_MAX))
        return dsr_errf(err, "config %s.%s: %g does not fit a float32", section, key, d);
    *out = (float)d;
    return 0;
}

static int get_bool(json_t *obj, const char *key, bool *out, const char *section, struct dsr_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return dsr_errf(err, "config %s.%s: expected true or false", section, key);
    *out = json_is_true(v);
    return 0;
}

/* eos_token_id may be a list in HF configs; the first id is the stop token. */
static int get_token_id(json_t *obj, const char *key, int *out, const char *section, struct dsr_err *err) {
    json_t *v = json_object_get(obj, key);
    if (json_is_array(v) && json_array_size(v) > 0) {
        if (!json_is_integer(json_array_get(v, 0)))
            return dsr_errf(err, "config %s.%s: expected integer ids", section, key);
        *out = (int)json_integer_value(json_array_get(v, 0));
        return 0;
    }
    return get_int(obj, key, out, section, err);
}

static int parse_text(json_t *o, struct text_config *t, struct dsr_err *err) {
    const char *s = "text_config";
    if (get_int(o, "vocab_size", &t->vocab_size, s, err) || get_int(o, "hidden_size", &t->hidden_size, s, err) ||
        get_int(o, "intermediate_size", &t->intermediate_size, s, err) ||
        get_int(o, "num_hidden_layers", &t->n_layers, s, err) ||
        get_int(o, "num_attention_heads", &t->n_heads, s, err) ||
        get_int(o, "num_key_value_heads", &t->n_kv_heads, s, err) || get_int(o, "head_dim", &t->head_dim, s, err) ||
        get_int(o, "max_position_embeddings", &t->max_position_embeddings, s, err) ||
        get_float(o, "rms_norm_eps", &t->rms_norm_eps, s, err) ||
        get_float(o, "rope_theta", &t->rope_theta, s, err) ||
        get_bool(o, "tie_word_embeddings", &t->tie_word_embeddings, s, err) ||
        get_bool(o, "attention_bias", &t->attention_bias, s, err) || get_bool(o, "mlp_bias", &t->mlp_bias, s, err) ||
        get_token_id(o, "bos_token_id", &t->bos_token_id, s, err) ||
        get_token_id(o, "eos_token_id", &t->eos_token_id, s, err) ||
        get_token_id(o, "pad_token_id", &t->pad_token_id, s, err))
        return -1;
    /* transformers >= 5 nests rope settings in rope_parameters */
    json_t *rp = json_object_get(o, "rope_parameters");
    if (json_is_object(rp)) {
        if (get_float(rp, "rope_theta", &t->rope_theta, "text_config.rope_parameters", err)) return -1;
        json_t *type = json_object_get(rp, "rope_type");
        if (json_is_string(type) && strcmp(json_string_value(type), "default") != 0)
            return dsr_errf(err, "config text_config.rope_parameters.rope_type \"%s\" is not supported (only default)",
                            json_string_value(type));
    }
    json_t *scaling = json_object_get(o, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        json_t *type = json_object_get(scaling, "rope_type");
        if (!type) type = json_object_get(scaling, "type");
        if (!json_is_string(type) || strcmp(json_string_value(type), "default") != 0)
            return dsr_errf(err, "config text_config.rope_scaling is not supported (only default RoPE)");
    }
    json_t *act = json_object_get(o, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return dsr_errf(err, "config text_config.hidden_act \"%s\" is not supported (only silu)",
                        json_string_value(act));
    return 0;
}

static int parse_vision(json_t *o, struct vision_config *v, struct dsr_err *err) {
    const char *s = "vision_config";
    float mlp_ratio = 4.0f;
    if (get_int(o, "hidden_size", &v->hidden_size, s, err) || get_int(o, "num_hidden_layers", &v->n_layers, s, err) ||
        get_int(o, "num_attention_heads", &v->n_heads, s, err) ||
        get_float(o, "mlp_ratio", &mlp_ratio, s, err) || get_int(o, "image_size", &v->image_size, s, err) ||
        get_int(o, "patch_size", &v->patch_size, s, err) || get_int(o, "num_channels", &v->num_channels, s, err) ||
        get_int(o, "projection_dim", &v->projection_dim, s, err) || get_int(o, "depth", &v->depth, s, err) ||
        get_int(o, "num_image_tokens", &v->num_image_tokens, s, err) ||
        get_float(o, "layer_norm_eps", &v->layer_norm_eps, s, err) ||
        get_bool(o, "attention_bias", &v->attention_bias, s, err) ||
        get_bool(o, "use_qk_norm", &v->use_qk_norm, s, err))
        return -1;
    double intermediate = (double)v->hidden_size * mlp_ratio;
    if (!(mlp_ratio > 0) || !(intermediate >= INT_MIN && intermediate <= INT_MAX))
        return dsr_errf(err, "config vision_config.mlp_ratio %g: hidden_size · mlp_ratio must be a positive int",
                        (double)mlp_ratio);
    v->intermediate_size = (int)intermediate;
    json_t *act = json_object_get(o, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "gelu") != 0)
        return dsr_errf(err, "config vision_config.hidden_act \"%s\" is not supported (only gelu)",
                        json_string_value(act));
    if (v->use_qk_norm) return dsr_errf(err, "config vision_config.use_qk_norm=true is not supported");
    return 0;
}

static int parse_vq(json_t *o, struct vq_config *q, struct dsr_err *err) {
    const char *s = "vq_config";
    if (get_int(o, "embed_dim", &q->embed_dim, s, err) || get_int(o, "num_embeddings", &q->num_embeddings, s, err) ||
        get_int(o, "latent_channels", &q->latent_channels, s, err) ||
        get_int(o, "base_channels", &q->base_channels, s, err) ||
        get_int(o, "num_res_blocks", &q->num_res_blocks, s, err) ||
        get_int(o, "in_channels", &q->in_channels, s, err) || get_int(o, "out_channels", &q->out_channels, s, err) ||
        get_int(o, "num_patches", &q->num_patches, s, err) ||
        get_int(o, "projection_dim", &q->projection_dim, s, err) ||
        get_int(o, "image_token_embed_dim", &q->image_token_embed_dim, s, err) ||
        get_int(o, "num_hidden_layers", &q->num_hidden_layers, s, err) ||
        get_bool(o, "double_latent", &q->double_latent, s, err))
        return -1;
    json_t *cm = json_object_get(o, "channel_multiplier");
    if (cm && !json_is_null(cm)) {
        if (!json_is_array(cm) || json_array_size(cm) == 0 || json_array_size(cm) > DSR_MAX_CH_MULT)
            return dsr_errf(err, "config vq_config.channel_multiplier: expected 1..%d integers", DSR_MAX_CH_MULT);
        q->n_ch_mult = (int)json_array_size(cm);
        for (int i = 0; i < q->n_ch_mult; i++) {
            json_t *e = json_array_get(cm, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) <= 0 || json_integer_value(e) > 64)
                return dsr_errf(err, "config vq_config.channel_multiplier[%d]: expected a positive integer", i);
            q->ch_mult[i] = (int)json_integer_value(e);
        }
    }
    if (q->double_latent) return dsr_errf(err, "config vq_config.double_latent=true is not supported");
    return 0;
}

static int positive(int v, const char *name, struct dsr_err *err) {
    if (v <= 0) return dsr_errf(err, "config %s must be positive (got %d)", name, v);
    return 0;
}

/* Image sides and code grids are squared in int (tokens per image): bounded
 * far above any real model (Janus-Pro: 384 px, 24 x 24 codes) and far below
 * where the square overflows. */
enum { MAX_IMAGE_SIDE = 16384, MAX_CODE_GRID = 1024 };

static int at_most(int v, int max, const char *name, struct dsr_err *err) {
    if (v > max) return dsr_errf(err, "config %s %d is over the limit %d", name, v, max);
    return 0;
}

int janus_config_validate(const struct janus_config *c, struct dsr_err *err) {
    const struct text_config *t = &c->text;
    const struct vision_config *v = &c->vision;
    const struct vq_config *q = &c->vq;
    if (positive(t->vocab_size, "text_config.vocab_size", err) ||
        positive(t->hidden_size, "text_config.hidden_size", err) ||
        positive(t->intermediate_size, "text_config.intermediate_size", err) ||
        positive(t->n_layers, "text_config.num_hidden_layers", err) ||
        positive(t->n_heads, "text_config.num_attention_heads", err) ||
        positive(t->n_kv_heads, "text_config.num_key_value_heads", err) ||
        positive(t->head_dim, "text_config.head_dim", err) ||
        positive(v->hidden_size, "vision_config.hidden_size", err) ||
        positive(v->n_layers, "vision_config.num_hidden_layers", err) ||
        positive(v->n_heads, "vision_config.num_attention_heads", err) ||
        positive(v->intermediate_size, "vision_config.hidden_size*mlp_ratio", err) ||
        positive(v->image_size, "vision_config.image_size", err) ||
        positive(v->patch_size, "vision_config.patch_size", err) ||
        positive(v->num_channels, "vision_config.num_channels", err) ||
        positive(v->projection_dim, "vision_config.projection_dim", err) ||
        positive(v->depth, "vision_config.depth", err) ||
        positive(q->embed_dim, "vq_config.embed_dim", err) ||
        positive(q->num_embeddings, "vq_config.num_embeddings", err) ||
        positive(q->latent_channels, "vq_config.latent_channels", err) ||
        positive(q->base_channels, "vq_config.base_channels", err) ||
        positive(q->num_res_blocks, "vq_config.num_res_blocks", err) ||
        positive(q->in_channels, "vq_config.in_channels", err) ||
        positive(q->out_channels, "vq_config.out_channels", err) ||
        positive(q->num_patches, "vq_config.num_patches", err) ||
        positive(q->projection_dim, "vq_config.projection_dim", err) ||
        positive(q->image_token_embed_dim, "vq_config.image_token_embed_dim", err) ||
        positive(q->num_hidden_layers, "vq_config.num_hidden_layers", err) ||
        at_most(v->image_size, MAX_IMAGE_SIDE, "vision_config.image_size", err) ||
        at_most(q->num_patches, MAX_CODE_GRID, "vq_config.num_patches", err))
        return -1;
    if (t->head_dim % 2) return dsr_errf(err, "config text_config.head_dim must be even for RoPE");
    if (t->n_heads % t->n_kv_heads)
        return dsr_errf(err, "config text_config: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                        t->n_heads, t->n_kv_heads);
    if (v->hidden_size % v->n_heads)
        return dsr_errf(err, "config vision_config: hidden_size %d is not divisible by num_attention_heads %d",
                        v->hidden_size, v->n_heads);
    if (v->image_size % v->patch_size)
        return dsr_errf(err, "config vision_config: image_size %d is not a multiple of patch_size %d", v->image_size,
                        v->patch_size);
    int grid = v->image_size / v->patch_size;
    if (v->num_image_tokens != grid * grid)
        return dsr_errf(err, "config vision_config.num_image_tokens %d != (image_size/patch_size)^2 = %d",
                        v->num_image_tokens, grid * grid);
    if (v->projection_dim != t->hidden_size)
        return dsr_errf(err, "config vision_config.projection_dim %d != text hidden_size %d", v->projection_dim,
                        t->hidden_size);
    if (q->image_token_embed_dim != t->hidden_size)
        return dsr_errf(err, "config vq_config.image_token_embed_dim %d != text hidden_size %d",
                        q->image_token_embed_dim, t->hidden_size);
    if (q->projection_dim != t->hidden_size)
        return dsr_errf(err, "config vq_config.projection_dim %d != text hidden_size %d", q->projection_dim,
                        t->hidden_size);
    if (q->base_channels % 32)
        return dsr_errf(err, "config vq_config.base_channels %d must be a multiple of 32 (GroupNorm(32))",
                        q->base_channels);
    if (c->image_token_id < 0 || c->image_token_id >= t->vocab_size)
        return dsr_errf(err, "config image_token_id %d is outside the vocabulary (%d)", c->image_token_id,
                        t->vocab_size);
    return 0;
}

int janus_config_parse(const char *json_text, size_t len, struct janus_config *c, struct dsr_err *err) {
    janus_config_defaults(c);
    json_error_t jerr;
    json_t *root = json_loadb(json_text, len, 0, &jerr);
    if (!root) return dsr_errf(err, "config.json: %s (line %d)", jerr.text, jerr.line);
    int rc = -1;
    if (!json_is_object(root)) {
        dsr_errf(err, "config.json is not a JSON object");
        goto out;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (json_is_string(mt) && strcmp(json_string_value(mt), "janus") != 0) {
        dsr_errf(err, "config.json model_type \"%s\" is not supported (expected \"janus\")", json_string_value(mt));
        goto out;
    }
    json_t *tc = json_object_get(root, "text_config");
    json_t *vc = json_object_get(root, "vision_config");
    json_t *qc = json_object_get(root, "vq_config");
    if ((tc && !json_is_object(tc)) || (vc && !json_is_object(vc)) || (qc && !json_is_object(qc))) {
        dsr_errf(err, "config.json: text_config, vision_config and vq_config must be objects");
        goto out;
    }
    /* num_key_value_heads and head_dim default from the parsed sizes */
    if (tc) {
        c->text.n_kv_heads = 0;
        c->text.head_dim = 0;
    }
    if ((tc && parse_text(tc, &c->text, err)) || (vc && parse_vision(vc, &c->vision, err)) ||
        (qc && parse_vq(qc, &c->vq, err)))
        goto out;
    if (c->text.n_kv_heads == 0) c->text.n_kv_heads = c->text.n_heads;
    if (c->text.head_dim == 0 && c->text.n_heads > 0) c->text.head_dim = c->text.hidden_size / c->text.n_heads;
    if (get_int(root, "image_token_id", &c->image_token_id, "", err) ||
        get_int(root, "boi_token_id", &c->boi_token_id, "", err) ||
        get_int(root, "eoi_token_id", &c->eoi_token_id, "", err))
        goto out;
    /* the top-level flag governs tying in transformers; text_config's is the fallback */
    c->tie_word_embeddings = c->text.tie_word_embeddings;
    if (get_bool(root, "tie_word_embeddings", &c->tie_word_embeddings, "", err)) goto out;
    rc = janus_config_validate(c, err);
out:
    json_decref(root);
    return rc;
}

int janus_config_load(const char *path, struct janus_config *out, struct dsr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return dsr_errf(err, "cannot open %s", path);
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        long sz = ftell(f);
        if (sz >= 0 && sz <= (1 << 24) && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)sz + 1);
            if (buf) len = fread(buf, 1, (size_t)sz, f);
            if (buf && len == (size_t)sz) rc = 0;
        }
    }
    fclose(f);
    if (rc != 0) {
        free(buf);
        return dsr_errf(err, "cannot read %s (missing, unreadable or over 16 MiB)", path);
    }
    rc = janus_config_parse(buf, len, out, err);
    free(buf);
    if (rc != 0) dsr_err_prefix(err, "%s", path);
    return rc;
}
