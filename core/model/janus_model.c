#include "model/janus_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors_dir.h"

/* AUTO: BF16 when the checkpoint stores its token embeddings (always
 * present, the largest matrix) as BF16 and the declared weights would take
 * at least JANUS_AUTO_BF16_MIN_BYTES as float32. */
static bool want_bf16(enum janus_weights weights, const struct st_set *set, const struct param_table *pt) {
    if (weights != JANUS_WEIGHTS_AUTO) return weights == JANUS_WEIGHTS_BF16;
    const struct st_tensor *t = set ? st_set_find(set, "model.language_model.embed_tokens.weight") : NULL;
    return t && t->dtype == ST_BF16 && pt_count(pt, false) * sizeof(float) >= JANUS_AUTO_BF16_MIN_BYTES;
}

static int declare_adapters(struct janus_model *m, struct dsr_err *err);

/* Declares every component's tensors and allocates the arenas, matrices
 * as `weights` and the checkpoint (set, or NULL for random weights) say. */
static int declare_all(struct janus_model *m, enum janus_weights weights, const struct st_set *set,
                       struct dsr_err *err) {
    pt_init(&m->params);
    bool base_trains = m->lora.rank == 0;
    if (lm_declare(&m->cfg, m->tied, &m->lora, &m->params, err) || gen_declare(&m->cfg, &m->lora, &m->params, err) ||
        vision_declare(&m->cfg, base_trains, &m->params, err) || vq_declare(&m->cfg, &m->params, err) ||
        declare_adapters(m, err))
        return -1;
    pt_set_bf16(&m->params, want_bf16(weights, set, &m->params));
    return pt_alloc(&m->params, err);
}

static int bind_all(struct janus_model *m, struct dsr_err *err) {
    if (lm_bind(&m->cfg, m->tied, &m->lora, &m->params, &m->lm, err)) return -1;
    if (gen_bind(&m->cfg, &m->lora, &m->params, &m->gen, err)) return -1;
    if (vision_bind(&m->cfg, &m->lora, &m->params, &m->vision, err)) return -1;
    if (vq_bind(&m->cfg, &m->params, &m->vq, err)) return -1;
    return 0;
}

/* Appends a site when there is room; returns the new count. */
static int add_site(struct lora_site *out, int cap, int n, enum lora_target t, int in, int dim_out,
                    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int add_site(struct lora_site *out, int cap, int n, enum lora_target t, int in, int dim_out,
                    const char *fmt, ...) {
    if (n < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out[n].module, sizeof out[n].module, fmt, ap);
        va_end(ap);
        out[n].target = t;
        out[n].in_dim = in;
        out[n].out_dim = dim_out;
    }
    return n + 1;
}

int janus_lora_sites(const struct janus_config *c, unsigned targets, struct lora_site *out, int cap) {
    int n = 0, in, o;
    for (int l = 0; l < c->text.n_layers; l++)
        for (int k = 0; k < LORA_N_LM_TARGETS; k++) {
            if (!(targets & (1u << k))) continue;
            lm_target_dims(&c->text, (enum lora_target)k, &in, &o);
            n = add_site(out, cap, n, (enum lora_target)k, in, o, "model.language_model.layers.%d.%s", l,
                         lora_target_module((enum lora_target)k));
        }
    const struct vq_config *q = &c->vq;
    const struct vision_config *v = &c->vision;
    if (targets & (1u << LORA_GEN_PROJ_OUT))
        n = add_site(out, cap, n, LORA_GEN_PROJ_OUT, q->image_token_embed_dim, q->projection_dim, "%s",
                     lora_target_module(LORA_GEN_PROJ_OUT));
    if (targets & (1u << LORA_GEN_VISION_HEAD))
        n = add_site(out, cap, n, LORA_GEN_VISION_HEAD, q->projection_dim, q->num_embeddings, "%s",
                     lora_target_module(LORA_GEN_VISION_HEAD));
    /* aligners: fc1 [in → width], then depth-1 hidden layers [width → width] */
    const struct {
        enum lora_target t;
        int in, width, n_hidden;
    } mlps[] = {{LORA_UND_ALIGNER, v->hidden_size, v->projection_dim, v->depth - 1},
                {LORA_GEN_ALIGNER, q->embed_dim, q->projection_dim, q->num_hidden_layers - 1}};
    for (int j = 0; j < 2; j++) {
        if (!(targets & (1u << mlps[j].t))) continue;
        for (int i = 0; i <= mlps[j].n_hidden; i++) {
            char mod[DSR_PARAM_NAME_MAX];
            lora_aligner_module(mlps[j].t, i, mod, sizeof mod);
            n = add_site(out, cap, n, mlps[j].t, i ? mlps[j].width : mlps[j].in, mlps[j].width, "%s", mod);
        }
    }
    return n;
}

/* Declares every adapter factor (trainable, after the base tensors). */
static int declare_adapters(struct janus_model *m, struct dsr_err *err) {
    if (m->lora.rank == 0) return 0;
    int n = janus_lora_sites(&m->cfg, m->lora.targets, NULL, 0);
    struct lora_site *sites = malloc((size_t)n * sizeof *sites + 1);
    if (!sites) return dsr_errf(err, "out of memory");
    janus_lora_sites(&m->cfg, m->lora.targets, sites, n);
    int rc = 0, r = m->lora.rank;
    for (int i = 0; i < n && rc == 0; i++)
        rc = pt_declare_adapter(&m->params, r, sites[i].in_dim, err, "%s.lora_A.weight", sites[i].module) ||
             pt_declare_adapter(&m->params, sites[i].out_dim, r, err, "%s.lora_B.weight", sites[i].module);
    free(sites);
    return rc;
}

/* Takes the adapter settings after checking them against the config. */
static int set_lora(struct janus_model *m, const struct lora_config *lora, struct dsr_err *err) {
    memset(&m->lora, 0, sizeof m->lora);
    if (!lora || lora->rank == 0) return 0;
    int n = janus_lora_sites(&m->cfg, lora->targets & LORA_EVERY_TARGET, NULL, 0), smallest = 1 << 30;
    struct lora_site *sites = malloc((size_t)n * sizeof *sites + 1);
    if (!sites) return dsr_errf(err, "out of memory");
    janus_lora_sites(&m->cfg, lora->targets & LORA_EVERY_TARGET, sites, n);
    for (int i = 0; i < n; i++) {
        smallest = sites[i].in_dim < smallest ? sites[i].in_dim : smallest;
        smallest = sites[i].out_dim < smallest ? sites[i].out_dim : smallest;
    }
    free(sites);
    if (lora_config_validate(lora, smallest, err)) return -1;
    m->lora = *lora;
    return 0;
}

static int load_from_set(struct janus_model *m, const struct st_set *set, enum janus_weights weights,
                         struct dsr_err *err) {
    m->tied = m->cfg.tie_word_embeddings || st_set_find(set, "lm_head.weight") == NULL;
    if (declare_all(m, weights, set, err) || pt_load(&m->params, set, err) || bind_all(m, err)) return -1;
    pt_init_adapters(&m->params, JANUS_LORA_SEED);
    return 0;
}

/* Weights of an opened set into m, whose cfg is parsed already. */
static int load_weights(struct janus_model *m, struct st_set *set, int open_rc, enum janus_weights weights,
                        const struct lora_config *lora, struct dsr_err *err) {
    janus_image_config_default(&m->image_cfg, m->cfg.vision.image_size);
    if (open_rc) return -1;
    if (set_lora(m, lora, err)) {
        st_set_close(set);
        return -1;
    }
    int rc = load_from_set(m, set, weights, err);
    st_set_close(set);
    if (rc) janus_model_free(m);
    return rc;
}

static int load(const char *config_path, const char *weights_path, const char *dir, enum janus_weights weights,
                const struct lora_config *lora, struct janus_model *m, struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    if (janus_config_load(config_path, &m->cfg, err)) return -1;
    struct st_set set;
    int rc = dir ? st_set_open_dir(dir, &set, err) : st_set_open_file(weights_path, &set, err);
    return load_weights(m, &set, rc, weights, lora, err);
}

int janus_model_load_dir(const char *dir, enum janus_weights weights, const struct lora_config *lora,
                         struct janus_model *m, struct dsr_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (load(path, NULL, dir, weights, lora, m, err)) return -1;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    if (access(path, F_OK) == 0 && janus_image_config_load(path, m->cfg.vision.image_size, &m->image_cfg, err)) {
        janus_model_free(m);
        return -1;
    }
    return 0;
}

int janus_model_load_files(const char *config_path, const char *weights_path, enum janus_weights weights,
                           const struct lora_config *lora, struct janus_model *m, struct dsr_err *err) {
    return load(config_path, weights_path, NULL, weights, lora, m, err);
}

int janus_model_load_memory(const struct janus_checkpoint_mem *ck, enum janus_weights weights,
                            const struct lora_config *lora, struct janus_model *m, struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    if (janus_config_parse(ck->config_json, ck->config_len, &m->cfg, err)) return -1;
    struct st_set set;
    int rc = st_set_open_memory(ck->name, ck->weights, ck->weights_len, &set, err);
    if (load_weights(m, &set, rc, weights, lora, err)) return -1;
    if (ck->preprocessor_json && janus_image_config_parse(ck->preprocessor_json, ck->preprocessor_len,
                                                          m->cfg.vision.image_size, &m->image_cfg, err)) {
        janus_model_free(m);
        return -1;
    }
    return 0;
}

int janus_model_init_random(const struct janus_config *cfg, uint64_t seed, enum janus_weights weights,
                            const struct lora_config *lora, struct janus_model *m, struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (janus_config_validate(&m->cfg, err) || set_lora(m, lora, err)) return -1;
    janus_image_config_default(&m->image_cfg, m->cfg.vision.image_size);
    m->tied = cfg->tie_word_embeddings;
    if (declare_all(m, weights, NULL, err)) {
        janus_model_free(m);
        return -1;
    }
    pt_init_random(&m->params, seed);
    pt_init_adapters(&m->params, JANUS_LORA_SEED);
    if (bind_all(m, err)) {
        janus_model_free(m);
        return -1;
    }
    return 0;
}

/* What bind_all made. */
static void release_components(struct janus_model *m) {
    vision_free(m->vision);
    m->vision = NULL;
    vq_free(m->vq);
    m->vq = NULL;
    lm_release(&m->lm);
    gen_release(&m->gen);
}

int janus_model_rebind(struct janus_model *m, struct dsr_err *err) {
    release_components(m);
    return bind_all(m, err);
}

void janus_model_free(struct janus_model *m) {
    release_components(m);
    pt_free(&m->params);
}

int janus_image_embeds(const struct janus_model *m, const float *pixels, int n_images, float *embeds,
                       struct dsr_err *err) {
    const struct vision_config *v = &m->cfg.vision;
    size_t rows = (size_t)n_images * (size_t)v->num_image_tokens;
    float *features = malloc(rows * (size_t)v->hidden_size * sizeof(float) + 1);
    if (!features) return dsr_errf(err, "out of memory for vision features");
    int rc = vision_tower_forward(m->vision, pixels, n_images, features, err);
    if (rc == 0) rc = vision_aligner_forward(m->vision, features, (int)rows, embeds, err);
    free(features);
    return rc;
}
