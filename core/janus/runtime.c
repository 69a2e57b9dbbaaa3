#include "runtime.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/default_model.h"
#include "janus/rollout.h"

/* Janus special-token spellings (DeepSeek tokenizer). */
#define TOK_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define TOK_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define TOK_PAD "<\xef\xbd\x9c\xe2\x96\x81pad\xe2\x96\x81\xef\xbd\x9c>"
#define TOK_BOI "<begin_of_image>"
#define TOK_EOI "<end_of_image>"
#define TOK_IMG "<image_placeholder>"

void janus_runtime_embedded_config(struct janus_config *c) {
    janus_config_defaults(c);
    struct text_config *t = &c->text;
    t->vocab_size = 262; /* 256 bytes + BOS EOS PAD BOI EOI IMG */
    t->hidden_size = 256;
    t->intermediate_size = 512;
    t->n_layers = 4;
    t->n_heads = 4;
    t->n_kv_heads = 2;
    t->head_dim = 64;
    t->max_position_embeddings = 2048;
    t->bos_token_id = 256;
    t->eos_token_id = 257;
    t->pad_token_id = 258;
    c->boi_token_id = 259;
    c->eoi_token_id = 260;
    c->image_token_id = 261;
    struct vision_config *v = &c->vision;
    v->hidden_size = 128;
    v->n_layers = 2;
    v->n_heads = 4;
    v->intermediate_size = 512;
    v->image_size = 64;
    v->patch_size = 8;
    v->num_image_tokens = 64;
    v->projection_dim = 256;
    v->depth = 2;
    struct vq_config *q = &c->vq;
    q->embed_dim = 8;
    q->num_embeddings = 256;
    q->latent_channels = 64;
    q->base_channels = 32;
    q->n_ch_mult = 4;
    int mult[] = {1, 1, 2, 2};
    memcpy(q->ch_mult, mult, sizeof mult);
    q->num_res_blocks = 1;
    q->num_patches = 8; /* 8 · 2³ = 64 px, as the vision tower */
    q->projection_dim = 256;
    q->image_token_embed_dim = 256;
    q->num_hidden_layers = 2;
}

/* Reads a small JSON file; NULL (no error) when it does not exist. */
static json_t *load_json_opt(const char *dir, const char *file, struct dsr_err *err, int *failed) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    *failed = 0;
    if (access(path, F_OK) != 0) return NULL;
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        *failed = 1;
        dsr_errf(err, "%s: line %d: %s", path, je.line, je.text);
    }
    return j;
}

/* BOI/EOI: the flags when given, else generation_config.json, else config.json
 * (already in cfg), else the tokenizer's <begin_of_image>/<end_of_image>. */
static int resolve_image_ids(struct janus_runtime *rt, const struct janus_runtime_options *opt, struct dsr_err *err) {
    struct janus_config *c = &rt->model.cfg;
    json_t *g = NULL;
    if (rt->model_dir) {
        int failed;
        g = load_json_opt(rt->model_dir, "generation_config.json", err, &failed);
        if (failed) return -1;
    } else if (rt->builtin_shapes) {
        struct default_model_blob blob;
        default_model_blob(&blob);
        json_error_t je;
        g = json_loadb(blob.generation_json, blob.generation_len, 0, &je);
        if (!g) return dsr_errf(err, "embedded generation_config.json: %s", je.text);
    }
    if (g) {
        json_t *b = json_object_get(g, "boi_token_id"), *e = json_object_get(g, "eoi_token_id");
        if (json_is_integer(b)) c->boi_token_id = (int)json_integer_value(b);
        if (json_is_integer(e)) c->eoi_token_id = (int)json_integer_value(e);
        /* HF Janus keeps the CFG scale its images were made with here */
        json_t *cfg_scale = json_object_get(g, "guidance_scale");
        if (json_is_number(cfg_scale) && json_number_value(cfg_scale) > 0 && json_number_value(cfg_scale) <= 1000)
            rt->default_cfg_scale = json_number_value(cfg_scale);
        /* the model's own sampling temperature (HF's key; vLLM serves it as the default too) */
        json_t *temp = json_object_get(g, "temperature");
        if (json_is_number(temp) && json_number_value(temp) > 0 && json_number_value(temp) <= 100)
            rt->default_temperature = json_number_value(temp);
        /* and its nucleus / top-k truncation (HF's keys; top_p 1 and top_k 0 are "off") */
        json_t *top_p = json_object_get(g, "top_p"), *top_k = json_object_get(g, "top_k");
        if (json_is_number(top_p) && json_number_value(top_p) > 0 && json_number_value(top_p) <= 1)
            rt->default_top_p = json_number_value(top_p);
        if (json_is_integer(top_k) && json_integer_value(top_k) > 0 && json_integer_value(top_k) <= INT_MAX)
            rt->default_top_k = (int)json_integer_value(top_k);
        json_decref(g);
    }
    if (rt->tok && c->boi_token_id < 0) c->boi_token_id = tokenizer_token_to_id(rt->tok, TOK_BOI);
    if (rt->tok && c->eoi_token_id < 0) c->eoi_token_id = tokenizer_token_to_id(rt->tok, TOK_EOI);
    if (opt->boi_id >= 0) c->boi_token_id = opt->boi_id;
    if (opt->eoi_id >= 0) c->eoi_token_id = opt->eoi_id;
    return 0;
}

/* Without tokenizer.json: the byte tokenizer when the model's special ids
 * are laid out consecutively from 256 (bytes 0..255 must not collide with
 * them); otherwise no tokenizer at all (rt->tok stays NULL): token-id inputs
 * are served and text is refused. */
static int builtin_tokenizer(struct janus_runtime *rt, struct dsr_err *err) {
    const struct janus_config *c = &rt->model.cfg;
    struct {
        int id;
        const char *name;
    } sp[6] = {{c->text.bos_token_id, TOK_BOS}, {c->text.eos_token_id, TOK_EOS}, {c->text.pad_token_id, TOK_PAD},
               {c->boi_token_id, TOK_BOI},      {c->eoi_token_id, TOK_EOI},      {c->image_token_id, TOK_IMG}};
    const char *names[6];
    int n = 0;
    for (int id = 256; id < 256 + 6; id++) {
        int found = 0;
        for (int k = 0; k < 6; k++)
            if (sp[k].id == id) names[n] = sp[k].name, found = 1;
        if (!found) break;
        n++;
    }
    for (int k = 0; k < 6; k++)
        if (sp[k].id >= 0 && (sp[k].id < 256 || sp[k].id >= 256 + n)) return 0;
    rt->tokenizer_builtin = true;
    return tokenizer_new_bytes(names, n, 256, &rt->tok, err);
}

static int load_tokenizer(struct janus_runtime *rt, struct dsr_err *err) {
    if (rt->builtin_shapes) {
        struct default_model_blob blob;
        default_model_blob(&blob);
        return tokenizer_load_json(blob.tokenizer_json, blob.tokenizer_len, &rt->tok, err);
    }
    if (!rt->model_dir) return 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer.json", rt->model_dir);
    if (access(path, F_OK) != 0) return 0; /* built after the ids are known */
    return tokenizer_load(path, &rt->tok, err);
}

static int image_configs(struct janus_runtime *rt, struct dsr_err *err) {
    const struct janus_config *c = &rt->model.cfg;
    rt->vision_img = rt->model.image_cfg; /* preprocessor_config.json or defaults */
    rt->vq_size = vq_image_size(c);
    rt->vq_img = rt->vision_img;
    rt->vq_img.image_size = rt->vq_size;
    rt->n_codes = c->vq.num_patches * c->vq.num_patches;
    if (rt->vq_size != c->vision.image_size)
        return dsr_errf(err, "VQ image size %d differs from the vision image size %d: decoded images cannot be seen",
                        rt->vq_size, c->vision.image_size);
    return 0;
}

/* The trained default compiled into the binary: weights, tokenizer and
 * image settings from memory, its name and measured scores from eval.json. */
static int load_builtin_shapes(struct janus_runtime *rt, enum janus_weights weights, const struct lora_config *lora,
                               struct dsr_err *err) {
    struct default_model_blob blob;
    default_model_blob(&blob);
    if (janus_model_load_memory(&blob.checkpoint, weights, lora, &rt->model, err)) return -1;
    rt->builtin_shapes = true;
    json_error_t je;
    rt->builtin_eval = json_loadb(blob.eval_json, blob.eval_len, 0, &je);
    const char *name = json_string_value(json_object_get(rt->builtin_eval, "model"));
    snprintf(rt->name, sizeof rt->name, "%s", name ? name : "dsr-shapes");
    const struct janus_source_file files[RUNTIME_MAX_SOURCE_FILES] = {
        {"tokenizer.json", blob.tokenizer_json, blob.tokenizer_len},
        {"generation_config.json", blob.generation_json, blob.generation_len},
        {"preprocessor_config.json", blob.checkpoint.preprocessor_json, blob.checkpoint.preprocessor_len},
    };
    memcpy(rt->source_files, files, sizeof files);
    rt->n_source_files = RUNTIME_MAX_SOURCE_FILES;
    return 0;
}

int janus_runtime_load(const struct janus_runtime_options *opt, struct janus_runtime *rt, struct dsr_err *err) {
    memset(rt, 0, sizeof *rt);
    rt->quantizer = opt->quantizer;
    rt->tpl = opt->tpl;
    rt->model_dir = opt->model;
    if (!opt->model || strcmp(opt->model, MODEL_BUILTIN_SHAPES) == 0) {
        rt->model_dir = NULL;
        if (load_builtin_shapes(rt, opt->weights, opt->lora, err)) return -1;
    } else if (strcmp(opt->model, MODEL_BUILTIN_RANDOM) == 0) {
        rt->model_dir = NULL;
        struct janus_config c;
        janus_runtime_embedded_config(&c);
        if (janus_model_init_random(&c, 20240607, opt->weights, opt->lora, &rt->model, err)) return -1;
        rt->embedded = true;
        snprintf(rt->name, sizeof rt->name, "dsr-embedded-random");
    } else {
        if (janus_model_load_dir(opt->model, opt->weights, opt->lora, &rt->model, err)) return -1;
        char real[PATH_MAX];
        const char *base = realpath(opt->model, real) ? strrchr(real, '/') : NULL;
        snprintf(rt->name, sizeof rt->name, "%s", base && base[1] ? base + 1 : opt->model);
    }
    const struct janus_config *c = &rt->model.cfg;
    if (load_tokenizer(rt, err) || resolve_image_ids(rt, opt, err)) goto fail;
    if (c->boi_token_id < 0 || c->eoi_token_id < 0) {
        dsr_errf(err, "BOI/EOI token ids unknown: not in generation_config.json or the tokenizer; pass --boi-id/--eoi-id");
        goto fail;
    }
    if (!rt->tok && builtin_tokenizer(rt, err)) goto fail;
    if (tokenizer_vocab_size(rt->tok) > c->text.vocab_size) {
        dsr_errf(err, "tokenizer has %d ids, more than the model's vocabulary %d", tokenizer_vocab_size(rt->tok),
                 c->text.vocab_size);
        goto fail;
    }
    int32_t special[] = {c->text.bos_token_id, c->text.eos_token_id, c->boi_token_id, c->eoi_token_id,
                         c->image_token_id};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (special[i] < 0 || special[i] >= c->text.vocab_size) {
            dsr_errf(err, "special token id %d is outside the vocabulary %d", special[i], c->text.vocab_size);
            goto fail;
        }
    rt->ids.bos = c->text.bos_token_id;
    rt->ids.boi = c->boi_token_id;
    rt->ids.eoi = c->eoi_token_id;
    rt->ids.image = c->image_token_id;
    rt->ids.n_image_tokens = c->vision.num_image_tokens;
    rt->eos = c->text.eos_token_id;
    rt->pad = c->text.pad_token_id;
    if (image_configs(rt, err)) goto fail;
    return 0;
fail:
    janus_runtime_free(rt);
    return -1;
}

void janus_runtime_free(struct janus_runtime *rt) {
    janus_model_free(&rt->model);
    json_decref(rt->builtin_eval);
    rt->builtin_eval = NULL;
    tokenizer_free(rt->tok);
    rt->tok = NULL;
}

static bool model_special(const struct janus_runtime *rt, int32_t id) {
    return id == rt->ids.bos || id == rt->eos || id == rt->pad || id == rt->ids.boi || id == rt->ids.eoi ||
           id == rt->ids.image;
}

bool janus_runtime_tokenizer_knows(const struct janus_runtime *rt, int32_t id) {
    return rt->tok && id >= 0 && id < tokenizer_vocab_size(rt->tok) && tokenizer_id_to_token(rt->tok, id);
}

/* Appends len bytes to the growing string *buf (size *n, capacity *cap). */
static int append(char **buf, size_t *n, size_t *cap, const char *s, size_t len) {
    if (*n + len + 1 > *cap) {
        size_t c = (*n + len + 1) * 2;
        char *p = realloc(*buf, c);
        if (!p) return -1;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *n, s, len);
    *n += len;
    (*buf)[*n] = 0;
    return 0;
}

int janus_runtime_decode_text(const struct janus_runtime *rt, const int32_t *ids, int n, char **text, size_t *len,
                        struct dsr_err *err) {
    static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */
    char *out = NULL;
    size_t used = 0, cap = 0;
    int rc = append(&out, &used, &cap, "", 0);
    if (!rt->tok) n = 0; /* no tokenizer: no text, the ids are the output */
    /* runs of ids the tokenizer knows are decoded together (multi-byte
     * characters may span tokens); each unknown id becomes U+FFFD */
    for (int i = 0; rc == 0 && i < n;) {
        if (!janus_runtime_tokenizer_knows(rt, ids[i])) {
            rc = model_special(rt, ids[i]) ? 0 : append(&out, &used, &cap, REPLACEMENT, 3);
            i++;
            continue;
        }
        int j = i;
        while (j < n && janus_runtime_tokenizer_knows(rt, ids[j])) j++;
        char *piece = NULL;
        size_t plen = 0;
        if (tokenizer_decode(rt->tok, ids + i, (size_t)(j - i), 1, &piece, &plen, err)) {
            free(out);
            return -1;
        }
        rc = append(&out, &used, &cap, piece, plen);
        free(piece);
        i = j;
    }
    if (rc) {
        free(out);
        return dsr_errf(err, "out of memory decoding %d ids", n);
    }
    *text = out;
    if (len) *len = used;
    return 0;
}

int janus_runtime_gen_context_ids(const struct janus_runtime *rt, const int32_t *ids, int n, struct tok_ids *out,
                            struct dsr_err *err) {
    const int32_t special[] = {rt->ids.bos, rt->eos, rt->pad, rt->ids.boi, rt->ids.eoi, rt->ids.image};
    return janus_gen_context_ids(rt->tok, &rt->tpl, &rt->ids, ids, n, special, 6, out, err);
}
