#include "train/adapter.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bf16.h"
#include "io/safetensors_dir.h"

#define PATH_LEN 4096
#define LM_MODULES "model.language_model.layers"

bool adapter_dir_exists(const char *dir) {
    char path[PATH_LEN];
    return snprintf(path, sizeof path, "%s/" ADAPTER_CONFIG_FILE, dir) < (int)sizeof path && access(path, R_OK) == 0;
}

char *adapter_config_json(const struct lora_config *lora, const char *base, struct dsr_err *err) {
    char names[256], regex[768] = "";
    size_t len = 0;
    /* PEFT full-matches a string target_modules against each module's path: one alternative per part */
    if (lora->targets & LORA_LM_TARGETS) {
        lora_format_targets(lora->targets & LORA_LM_TARGETS, "|", names, sizeof names);
        len += (size_t)snprintf(regex + len, sizeof regex - len,
                                "model\\.language_model\\.layers\\.\\d+\\.(self_attn|mlp)\\.(%s)", names);
    }
    if (lora->targets & LORA_GEN_TARGETS) {
        int both = (lora->targets & LORA_GEN_TARGETS) == LORA_GEN_TARGETS;
        const char *one = lora_target_leaf(lora->targets & (1u << LORA_GEN_PROJ_OUT) ? LORA_GEN_PROJ_OUT
                                                                                     : LORA_GEN_VISION_HEAD);
        len += (size_t)snprintf(regex + len, sizeof regex - len, "%smodel\\.generation_head\\.%s", len ? "|" : "",
                                both ? "(proj_out|vision_head)" : one);
    }
    for (enum lora_target k = LORA_UND_ALIGNER; k <= LORA_GEN_ALIGNER; k++)
        if (lora->targets & (1u << k))
            len += (size_t)snprintf(regex + len, sizeof regex - len, "%smodel\\.%s\\.(fc1|hidden_layers\\.\\d+)",
                                    len ? "|" : "", lora_target_leaf(k));
    json_t *o = json_pack("{s:s, s:s?, s:s, s:i, s:f, s:s, s:f, s:s, s:b, s:b, s:b, s:b, s:n, s:n, s:{}, s:{}}",
                          "peft_type", "LORA", "base_model_name_or_path", base, "task_type", "CAUSAL_LM", "r",
                          lora->rank, "lora_alpha", (double)lora->alpha, "target_modules", regex, "lora_dropout", 0.0,
                          "bias", "none", "fan_in_fan_out", 0, "use_rslora", 0, "use_dora", 0, "inference_mode", 1,
                          "modules_to_save", "layers_to_transform", "rank_pattern", "alpha_pattern");
    if (!o) {
        dsr_errf(err, "out of memory");
        return NULL;
    }
    json_object_set_new(o, "init_lora_weights", json_true());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (!text) dsr_errf(err, "out of memory");
    return text;
}

/* Whether s names the understanding aligner: "aligner" not as the tail of
 * "generation_aligner". */
static bool names_und_aligner(const char *s) {
    for (const char *p = strstr(s, "aligner"); p; p = strstr(p + 1, "aligner"))
        if (p == s || p[-1] != '_') return true;
    return false;
}

/* The targets a target_modules value names: each of the seven projection
 * names found in it (a list entry, or inside a regular expression), the
 * generation head's linears where the expression names generation_head,
 * and either aligner; any other module is refused. */
static int targets_of(json_t *tm, unsigned *targets, struct dsr_err *err) {
    *targets = 0;
    if (json_is_string(tm)) {
        const char *s = json_string_value(tm);
        for (int k = 0; k < LORA_N_LM_TARGETS; k++)
            if (strstr(s, lora_target_name((enum lora_target)k))) *targets |= 1u << k;
        for (enum lora_target k = LORA_GEN_PROJ_OUT; k <= LORA_GEN_VISION_HEAD && strstr(s, "generation_head"); k++)
            if (strstr(s, lora_target_leaf(k))) *targets |= 1u << k;
        if (strstr(s, "generation_aligner")) *targets |= 1u << LORA_GEN_ALIGNER;
        if (names_und_aligner(s)) *targets |= 1u << LORA_UND_ALIGNER;
        if (strstr(s, "vision_model") || strstr(s, "embeddings") || strstr(s, "vqmodel") || strstr(s, "lm_head"))
            return dsr_errf(err, "target_modules: \"%s\" adapts modules dsr does not (the language model's "
                                 "projections, the generation head and the aligners only)", s);
    } else if (json_is_array(tm)) {
        size_t i;
        json_t *v;
        json_array_foreach(tm, i, v) {
            const char *name = json_string_value(v);
            unsigned one = 0;
            if (!name || lora_parse_targets(name, &one, err))
                return dsr_errf(err, "target_modules[%zu]: \"%s\" is not a module dsr adapts", i,
                                name ? name : "(not a string)");
            *targets |= one;
        }
    } else {
        return dsr_errf(err, "target_modules: must be a list of module names or a regular expression");
    }
    if (!*targets) return dsr_errf(err, "target_modules: names none of the modules dsr adapts");
    return 0;
}

int adapter_config_read(const char *dir, struct lora_config *lora, char *base, size_t base_cap,
                        struct dsr_err *err) {
    char path[PATH_LEN];
    if (snprintf(path, sizeof path, "%s/" ADAPTER_CONFIG_FILE, dir) >= (int)sizeof path)
        return dsr_errf(err, "path too long");
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) return dsr_errf(err, "%s: %s (line %d)", path, je.text, je.line);
    int rc = 0;
    const char *type = json_string_value(json_object_get(o, "peft_type"));
    json_t *r = json_object_get(o, "r"), *alpha = json_object_get(o, "lora_alpha");
    const char *bias = json_string_value(json_object_get(o, "bias"));
    memset(lora, 0, sizeof *lora);
    if (!type || strcmp(type, "LORA") != 0)
        rc = dsr_errf(err, "peft_type: \"%s\" (dsr loads LORA adapters)", type ? type : "(missing)");
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > LORA_MAX_RANK)
        rc = dsr_errf(err, "r: must be an integer in [1, %d]", LORA_MAX_RANK);
    else if (!json_is_number(alpha) || !(json_number_value(alpha) > 0) || !isfinite(json_number_value(alpha)))
        rc = dsr_errf(err, "lora_alpha: must be a number > 0");
    else if (json_is_true(json_object_get(o, "use_dora")) || json_is_true(json_object_get(o, "use_rslora")))
        rc = dsr_errf(err, "use_dora/use_rslora: not supported (plain LoRA only)");
    else if (bias && strcmp(bias, "none") != 0)
        rc = dsr_errf(err, "bias: \"%s\" not supported (\"none\" only)", bias);
    else if (json_object_size(json_object_get(o, "rank_pattern")) || json_object_size(json_object_get(o, "alpha_pattern")))
        rc = dsr_errf(err, "rank_pattern/alpha_pattern: per-module ranks are not supported");
    else if (json_array_size(json_object_get(o, "modules_to_save")))
        rc = dsr_errf(err, "modules_to_save: fully trained extra modules are not supported");
    else
        rc = targets_of(json_object_get(o, "target_modules"), &lora->targets, err);
    if (rc == 0) {
        lora->rank = (int)json_integer_value(r);
        lora->alpha = (float)json_number_value(alpha);
        if (base) {
            const char *b = json_string_value(json_object_get(o, "base_model_name_or_path"));
            snprintf(base, base_cap, "%s", b ? b : "");
        }
    }
    json_decref(o);
    return rc ? dsr_err_prefix(err, "%s", path) : 0;
}

int adapter_config_check(const struct lora_config *have, const struct lora_config *want, struct dsr_err *err) {
    char a[256], b[256];
    if (have->rank != want->rank)
        return dsr_errf(err, "adapter rank r=%d, the model's adapters have rank %d", have->rank, want->rank);
    if (have->alpha != want->alpha)
        return dsr_errf(err, "adapter lora_alpha=%g, the model's is %g", (double)have->alpha, (double)want->alpha);
    if (have->targets != want->targets) {
        lora_format_targets(have->targets, ",", a, sizeof a);
        lora_format_targets(want->targets, ",", b, sizeof b);
        return dsr_errf(err, "adapter targets %s, the model's are %s", a, b);
    }
    return 0;
}

/* The adapter tensor of a module, factor "A" or "B", checked against its
 * shape. */
static const struct st_tensor *factor(const struct st_set *set, const char *module, char which, int64_t rows,
                                      int64_t cols, struct dsr_err *err) {
    char name[256];
    snprintf(name, sizeof name, ADAPTER_TENSOR_PREFIX "%s.lora_%c.weight", module, which);
    const struct st_tensor *t = st_set_find(set, name);
    if (!t) {
        dsr_errf(err, "adapter is missing tensor %s", name);
        return NULL;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F64) {
        dsr_errf(err, "tensor %s is not floating point (%s)", name, st_dtype_name(t->dtype));
        return NULL;
    }
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        dsr_errf(err, "tensor %s has shape [%lld, %lld], the base model implies [%lld, %lld] (an adapter for another "
                      "base?)",
                 name, (long long)(t->ndim > 0 ? t->shape[0] : 0), (long long)(t->ndim > 1 ? t->shape[1] : 0),
                 (long long)rows, (long long)cols);
        return NULL;
    }
    return t;
}

/* W += s·B·A, row by row in double, stored back in W's own storage. */
static void fold(struct weight w, const float *a, const float *b, int r, int in, int out, float s, float *row) {
    for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
            double acc = 0;
            for (int q = 0; q < r; q++) acc += (double)b[(size_t)o * r + q] * a[(size_t)q * in + i];
            row[i] = (float)(s * acc);
        }
        size_t off = (size_t)o * in;
        if (w.f32)
            for (int i = 0; i < in; i++) ((float *)w.f32)[off + i] += row[i];
        else
            for (int i = 0; i < in; i++)
                ((uint16_t *)w.bf16)[off + i] = st_f32_to_bf16(bf16_to_f32(w.bf16[off + i]) + row[i]);
    }
}

int adapter_merge(struct janus_model *base, const char *dir, struct dsr_err *err) {
    if (base->lora.rank) return dsr_errf(err, "merge: the base model has adapters of its own");
    struct lora_config lora;
    if (adapter_config_read(dir, &lora, NULL, 0, err)) return -1;
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/" ADAPTER_WEIGHTS_FILE, dir);
    struct st_set set;
    if (st_set_open_file(path, &set, err)) return -1;
    int r = lora.rank, rc = 0, n_sites = janus_lora_sites(&base->cfg, lora.targets, NULL, 0);
    struct lora_site *sites = malloc((size_t)n_sites * sizeof *sites + 1);
    if (!sites) rc = dsr_errf(err, "out of memory");
    else janus_lora_sites(&base->cfg, lora.targets, sites, n_sites);
    /* every factor present and shaped before anything changes */
    for (int i = 0; i < n_sites && rc == 0; i++)
        if (!factor(&set, sites[i].module, 'A', r, sites[i].in_dim, err) ||
            !factor(&set, sites[i].module, 'B', sites[i].out_dim, r, err))
            rc = -1;
    size_t present = 0, expected = 2 * (size_t)n_sites;
    for (size_t f = 0; f < set.n_files; f++) present += set.files[f]->n_tensors;
    if (rc == 0 && present != expected)
        rc = dsr_errf(err, "adapter holds %zu tensors, its config implies %zu (other modules or layers?)", present,
                      expected);
    /* buffers for the largest site */
    size_t max_a = 0, max_b = 0, max_in = 0;
    for (int i = 0; i < n_sites; i++) {
        max_a = (size_t)r * sites[i].in_dim > max_a ? (size_t)r * sites[i].in_dim : max_a;
        max_b = (size_t)sites[i].out_dim * r > max_b ? (size_t)sites[i].out_dim * r : max_b;
        max_in = (size_t)sites[i].in_dim > max_in ? (size_t)sites[i].in_dim : max_in;
    }
    float *a = malloc(max_a * sizeof *a + 1), *b = malloc(max_b * sizeof *b + 1);
    float *row = malloc(max_in * sizeof *row + 1);
    if (rc == 0 && (!a || !b || !row)) rc = dsr_errf(err, "out of memory merging the adapter");
    for (int i = 0; i < n_sites && rc == 0; i++) {
        const struct lora_site *st = &sites[i];
        rc = st_to_f32(factor(&set, st->module, 'A', r, st->in_dim, err), a, err) ||
             st_to_f32(factor(&set, st->module, 'B', st->out_dim, r, err), b, err);
        if (rc == 0)
            fold(pt_get_weight(&base->params, "%s.weight", st->module), a, b, r, st->in_dim, st->out_dim,
                 lora.alpha / (float)r, row);
    }
    free(a);
    free(b);
    free(row);
    free(sites);
    st_set_close(&set);
    return rc ? dsr_err_prefix(err, "adapter %s", dir) : 0;
}
