#include "prepare.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image_io.h"
#include "proto_fields.h"

int prep_resolve_under(const char *root, const char *flag, const char *rel, const char *path, char out[PATH_MAX],
                        struct proto_error *e) {
    if (!root) return proto_fail(e, 400, path, "%s: the server runs without %s", path, flag);
    if (rel[0] == '/' || rel[0] == 0) return proto_fail(e, 400, path, "%s must be a relative path under %s", path, flag);
    for (const char *c = rel; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.') return proto_fail(e, 400, path, "%s must not contain \"..\"", path);
        c += n + (end ? 1 : 0);
    }
    char real_root[PATH_MAX], joined[PATH_MAX];
    if (!realpath(root, real_root)) return proto_fail(e, 500, path, "%s %s is not accessible", flag, root);
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", real_root, rel) >= sizeof joined)
        return proto_fail(e, 400, path, "%s is too long", path);
    if (!realpath(joined, out)) return proto_fail(e, 404, path, "%s: no such file under %s", path, flag);
    size_t rl = strlen(real_root);
    if (strncmp(out, real_root, rl) != 0 || out[rl] != '/')
        return proto_fail(e, 400, path, "%s resolves outside %s", path, flag);
    return 0;
}

/* proto_limits.load_path: ctx is the --image-root directory. */
static int load_image_path(const void *ctx, const char *rel, const char *param, const struct proto_limits *lim,
                           struct proto_image *out, struct proto_error *e) {
    char real[PATH_MAX];
    if (prep_resolve_under(ctx, "--image-root", rel, param, real, e)) return -1;
    struct dsr_err err = {{0}};
    if (image_decode_file_rgb8(real, lim->max_png_bytes, &lim->png, &out->rgb, &out->width, &out->height, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    out->kind = PROTO_IMAGE_RGB;
    return 0;
}

void prep_limits(const struct janus_runtime *rt, const struct dsrd_config *cfg, struct proto_limits *lim) {
    const struct janus_config *c = &rt->model.cfg;
    memset(lim, 0, sizeof *lim);
    lim->vocab_size = c->text.vocab_size;
    lim->codebook_size = c->vq.num_embeddings;
    lim->n_image_codes = rt->n_codes;
    lim->max_items = 1024;
    lim->max_span_tokens = c->text.max_position_embeddings;
    lim->max_text_bytes = 1 << 20;
    lim->max_group = SAMPLER_MAX_GROUP;
    lim->max_new_tokens = c->text.max_position_embeddings;
    lim->max_png_bytes = cfg->max_body;
    png_limits_default(&lim->png);
    lim->png.max_pixels = 16u << 20; /* 16 Mpx: any sane photo; bounds the RGB buffer per image */
    lim->load_path = cfg->image_root ? load_image_path : NULL;
    lim->load_path_ctx = cfg->image_root;
    lim->default_cfg_scale = (float)rt->default_cfg_scale;
    lim->default_temperature = (float)rt->default_temperature;
    lim->default_top_p = (float)rt->default_top_p;
    lim->default_top_k = rt->default_top_k;
}

void prepared_item_free(struct prepared_item *p) {
    tok_ids_free(&p->context);
    free(p->see_pixels);
    free(p->target_pixels);
    free(p->target);
    free(p->logprobs);
    memset(p, 0, sizeof *p);
}

int prep_span_tokens(const struct janus_runtime *rt, const struct proto_span *sp, const char *param, struct tok_ids *out,
                     struct proto_error *e) {
    struct dsr_err err = {{0}};
    if (sp->kind == PROTO_SPAN_TOKENS) {
        for (int i = 0; i < sp->n_tokens; i++)
            if (tok_ids_push(out, sp->tokens[i], &err)) return proto_fail(e, 500, param, "%s", err.msg);
        return 0;
    }
    if (tokenizer_encode(rt->tok, sp->text, sp->text_len, 0, out, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    return 0;
}

int prep_span_text(const struct janus_runtime *rt, const struct proto_span *sp, const char *param, char **text,
                   size_t *len, struct proto_error *e) {
    if (sp->kind == PROTO_SPAN_TEXT) {
        if (!(*text = proto_strdup(sp->text, sp->text_len))) return proto_fail(e, 500, param, "out of memory");
        *len = sp->text_len;
        return 0;
    }
    struct dsr_err err = {{0}};
    if (tokenizer_decode(rt->tok, sp->tokens, (size_t)sp->n_tokens, 1, text, len, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    return 0;
}

static int preprocess(const struct janus_image_config *ic, const struct proto_image *im, const char *param,
                      float **out, struct proto_error *e) {
    size_t n = (size_t)3 * ic->image_size * ic->image_size;
    if (!(*out = malloc(n * sizeof **out))) return proto_fail(e, 500, param, "out of memory for an image");
    struct dsr_err err = {{0}};
    if (janus_image_preprocess(ic, im->rgb, im->width, im->height, *out, &err)) {
        free(*out);
        *out = NULL;
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    }
    return 0;
}

int prep_see(const struct janus_runtime *rt, const struct proto_image *im, const char *param, struct seen_image *see,
             float **pixels_owned, struct proto_error *e) {
    memset(see, 0, sizeof *see);
    *pixels_owned = NULL;
    if (im->kind == PROTO_IMAGE_CODES) {
        see->codes = im->codes;
        return 0;
    }
    if (im->kind != PROTO_IMAGE_RGB) return 0;
    if (preprocess(&rt->vision_img, im, param, pixels_owned, e)) return -1;
    see->pixels = *pixels_owned;
    return 0;
}

int prep_vq_pixels(const struct janus_runtime *rt, const struct proto_image *im, const char *param, float **out,
                   struct proto_error *e) {
    return preprocess(&rt->vq_img, im, param, out, e);
}

int prep_check_placeholders(const struct janus_runtime *rt, const int32_t *ids, size_t n, bool has_image,
                            const char *param, struct proto_error *e) {
    int count = 0;
    for (size_t i = 0; i < n; i++) count += ids[i] == rt->ids.image;
    int want = has_image ? rt->ids.n_image_tokens : 0;
    if (count != want)
        return proto_fail(e, 400, param,
                          has_image ? "%s has %d image placeholders (id %d); the image fills exactly %d"
                                    : "%s has %d image placeholders (id %d) but no image is given%.0d",
                          param, count, rt->ids.image, want);
    return 0;
}

static int check_length(const struct janus_runtime *rt, const struct prepared_item *p, const char *param,
                        struct proto_error *e) {
    int max = rt->model.cfg.text.max_position_embeddings;
    if ((long)p->context.n + p->req.n_target > max)
        return proto_fail(e, 400, param, "%s: context (%zu) + target (%d) exceeds the model's %d positions", param,
                          p->context.n, p->req.n_target, max);
    return 0;
}

static int alloc_outputs(struct prepared_item *p, int n_target, const char *param, struct proto_error *e) {
    p->req.n_target = n_target;
    p->logprobs = malloc((size_t)n_target * sizeof *p->logprobs);
    if (!p->target) p->target = malloc((size_t)n_target * sizeof *p->target);
    if (!p->logprobs || !p->target) return proto_fail(e, 500, param, "out of memory");
    p->req.logprobs = p->logprobs;
    p->req.target = p->target;
    return 0;
}

/* Target image: codes copied, or RGB to be VQ-encoded by the worker. */
static int target_image(const struct janus_runtime *rt, const struct proto_image *im, const char *param,
                        struct prepared_item *p, struct proto_error *e) {
    p->req.kind = TF_TARGET_CODES;
    if (im->kind == PROTO_IMAGE_CODES) {
        if (alloc_outputs(p, im->n_codes, param, e)) return -1;
        memcpy(p->target, im->codes, (size_t)im->n_codes * sizeof *p->target);
        return 0;
    }
    if (prep_vq_pixels(rt, im, param, &p->target_pixels, e)) return -1;
    p->req.target_pixels = p->target_pixels;
    return alloc_outputs(p, rt->n_codes, param, e);
}

static void finish_context(struct prepared_item *p) {
    p->req.context = p->context.ids;
    p->req.n_context = (int)p->context.n;
}

int prep_logprobs_item(const struct janus_runtime *rt, const struct proto_logprobs_item *it, const char *param,
                       struct prepared_item *p, struct proto_error *e) {
    char pc[PROTO_PARAM_MAX], pi[PROTO_PARAM_MAX], pt[PROTO_PARAM_MAX];
    proto_path(pc, sizeof pc, param, "context");
    proto_path(pi, sizeof pi, param, "image");
    proto_path(pt, sizeof pt, param, "target");
    bool has_image = it->image.kind != PROTO_IMAGE_NONE;
    if (prep_span_tokens(rt, &it->context, pc, &p->context, e) ||
        prep_check_placeholders(rt, p->context.ids, p->context.n, has_image, pc, e) ||
        prep_see(rt, &it->image, pi, &p->req.see, &p->see_pixels, e))
        return -1;
    finish_context(p);
    if (it->target_is_image) {
        if (target_image(rt, &it->target_image, pt, p, e)) return -1;
    } else {
        struct tok_ids t = {0};
        if (prep_span_tokens(rt, &it->target, pt, &t, e)) return -1;
        if (t.n == 0) {
            tok_ids_free(&t);
            return proto_fail(e, 400, pt, "%s tokenizes to nothing", pt);
        }
        p->target = t.ids; /* ownership moves to the item */
        p->req.kind = TF_TARGET_TOKENS;
        if (alloc_outputs(p, (int)t.n, pt, e)) return -1;
    }
    return check_length(rt, p, param, e);
}

/* R_U once p->context holds the gen_context: the image's codes as target. */
static int understanding_target(const struct janus_runtime *rt, const struct proto_image *image, const char *param,
                                struct prepared_item *p, struct proto_error *e) {
    finish_context(p);
    char pi[PROTO_PARAM_MAX];
    proto_path(pi, sizeof pi, param, "image");
    if (target_image(rt, image, pi, p, e)) return -1;
    return check_length(rt, p, param, e);
}

int prep_understanding_reward(const struct janus_runtime *rt, const struct proto_image *image, const char *text,
                              size_t len, const char *param, struct prepared_item *p, struct proto_error *e) {
    struct dsr_err err = {{0}};
    if (janus_gen_context(rt->tok, &rt->tpl, &rt->ids, text, len, &p->context, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    return understanding_target(rt, image, param, p, e);
}

int prep_understanding_reward_ids(const struct janus_runtime *rt, const struct proto_image *image, const int32_t *ids,
                                  int n, const char *param, struct prepared_item *p, struct proto_error *e) {
    struct dsr_err err = {{0}};
    if (janus_runtime_gen_context_ids(rt, ids, n, &p->context, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    return understanding_target(rt, image, param, p, e);
}

int prep_generation_reward(const struct janus_runtime *rt, const struct proto_image *image, const char *text, size_t len,
                           const char *param, struct prepared_item *p, struct proto_error *e) {
    struct dsr_err err = {{0}};
    char pi[PROTO_PARAM_MAX];
    proto_path(pi, sizeof pi, param, "image");
    if (janus_und_context(rt->tok, &rt->tpl, &rt->ids, NULL, 0, &p->context, NULL, &err))
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    finish_context(p);
    if (prep_see(rt, image, pi, &p->req.see, &p->see_pixels, e)) return -1;
    struct tok_ids t = {0};
    if (janus_rg_target(rt->tok, &rt->tpl, text, len, &t, &err)) {
        tok_ids_free(&t);
        return proto_fail(e, 400, param, "%s: %s", param, err.msg);
    }
    p->target = t.ids;
    p->req.kind = TF_TARGET_TOKENS;
    if (t.n == 0) return proto_fail(e, 400, param, "%s: the prompt tokenizes to nothing", param);
    if (alloc_outputs(p, (int)t.n, param, e)) return -1;
    return check_length(rt, p, param, e);
}
