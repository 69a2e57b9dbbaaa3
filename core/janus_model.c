#include "janus_model.h"

#include <stdio.h>
#include <string.h>

#include "st_set.h"

/* Declares every component's tensors and allocates the arenas. */
static int declare_all(struct janus_model *m, struct dsr_err *err) {
    pt_init(&m->params);
    if (lm_declare(&m->cfg, m->tied, &m->params, err) || gen_declare(&m->cfg, &m->params, err) ||
        vision_declare(&m->cfg, &m->params, err))
        return -1;
    return pt_alloc(&m->params, err);
}

static int bind_all(struct janus_model *m, struct dsr_err *err) {
    if (lm_bind(&m->cfg, m->tied, &m->params, &m->lm, err)) return -1;
    if (gen_bind(&m->cfg, &m->params, &m->gen, err)) return -1;
    if (vision_bind(&m->cfg, &m->params, &m->vision, err)) return -1;
    return 0;
}

static int load_from_set(struct janus_model *m, const struct st_set *set, struct dsr_err *err) {
    m->tied = m->cfg.tie_word_embeddings || st_set_find(set, "lm_head.weight") == NULL;
    if (declare_all(m, err) || pt_load(&m->params, set, err) || bind_all(m, err)) return -1;
    return 0;
}

static int load(const char *config_path, const char *weights_path, const char *dir, struct janus_model *m,
                struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    if (janus_config_load(config_path, &m->cfg, err)) return -1;
    struct st_set set;
    int rc = dir ? st_set_open_dir(dir, &set, err) : st_set_open_file(weights_path, &set, err);
    if (rc) return -1;
    rc = load_from_set(m, &set, err);
    st_set_close(&set);
    if (rc) janus_model_free(m);
    return rc;
}

int janus_model_load_dir(const char *dir, struct janus_model *m, struct dsr_err *err) {
    char config_path[4096];
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    return load(config_path, NULL, dir, m, err);
}

int janus_model_load_files(const char *config_path, const char *weights_path, struct janus_model *m,
                           struct dsr_err *err) {
    return load(config_path, weights_path, NULL, m, err);
}

int janus_model_init_random(const struct janus_config *cfg, uint64_t seed, struct janus_model *m,
                            struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (janus_config_validate(&m->cfg, err)) return -1;
    m->tied = cfg->tie_word_embeddings;
    if (declare_all(m, err)) {
        janus_model_free(m);
        return -1;
    }
    pt_init_random(&m->params, seed);
    if (bind_all(m, err)) {
        janus_model_free(m);
        return -1;
    }
    return 0;
}

void janus_model_free(struct janus_model *m) {
    lm_release(&m->lm);
    gen_release(&m->gen);
    vision_free(m->vision);
    m->vision = NULL;
    pt_free(&m->params);
}
