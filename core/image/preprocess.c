/* Janus image pre/postprocessing; see image_proc.h.  The float arithmetic
 * mirrors HF's numpy steps (rescale in float64 then cast to float32,
 * normalise in float32) so results agree to the last bit where possible. */
#include "image/preprocess.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/bicubic.h"

/* Largest S accepted from a config: well above any Janus checkpoint (384). */
#define IMAGE_PROC_MAX_SIZE 8192

void janus_image_config_default(struct janus_image_config *c, int image_size) {
    c->image_size = image_size;
    c->min_size = 14;
    for (int i = 0; i < 3; i++) {
        c->image_mean[i] = 0.5;
        c->image_std[i] = 0.5;
        c->background[i] = 127;
    }
    c->rescale_factor = 1.0 / 255.0;
    c->do_normalize = true;
    c->resize_flavor = BICUBIC_TORCH;
}

/* ---- preprocessor_config.json ---- */

static int get_size(json_t *root, int *out, struct dsr_err *err) {
    json_t *v = json_object_get(root, "size");
    const char *key = "size";
    if (!v || json_is_null(v)) {
        v = json_object_get(root, "image_size");
        key = "image_size";
    }
    if (!v || json_is_null(v)) return 0;
    if (json_is_object(v)) {
        json_t *hj = json_object_get(v, "height"), *wj = json_object_get(v, "width");
        if (!json_is_integer(hj) || !json_is_integer(wj))
            return dsr_errf(err, "preprocessor %s: expected integer height and width", key);
        if (json_integer_value(hj) != json_integer_value(wj))
            return dsr_errf(err, "preprocessor %s: height %lld and width %lld differ (need a square)", key,
                            (long long)json_integer_value(hj), (long long)json_integer_value(wj));
        v = hj;
    }
    if (!json_is_integer(v)) return dsr_errf(err, "preprocessor %s: expected an integer", key);
    json_int_t s = json_integer_value(v);
    if (s < 1 || s > IMAGE_PROC_MAX_SIZE)
        return dsr_errf(err, "preprocessor %s: %lld is outside [1, %d]", key, (long long)s, IMAGE_PROC_MAX_SIZE);
    *out = (int)s;
    return 0;
}

/* A number or a list of 3 numbers into out[3]; absent leaves out as is. */
static int get_triple(json_t *root, const char *key, double out[3], struct dsr_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = json_number_value(v);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return dsr_errf(err, "preprocessor %s: expected a number or a list of 3 numbers", key);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_number(e)) return dsr_errf(err, "preprocessor %s[%zu]: expected a number", key, i);
        out[i] = json_number_value(e);
    }
    return 0;
}

/* A boolean key that must be true (or absent) for this pipeline. */
static int require_true(json_t *root, const char *key, struct dsr_err *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v) || json_is_true(v)) return 0;
    return dsr_errf(err, "preprocessor %s: only true is supported", key);
}

static int parse_root(json_t *root, int vision_image_size, struct janus_image_config *c, struct dsr_err *err) {
    if (!json_is_object(root)) return dsr_errf(err, "preprocessor config: expected a JSON object");
    janus_image_config_default(c, vision_image_size);
    if (get_size(root, &c->image_size, err) != 0) return -1;
    if (c->image_size < 1) return dsr_errf(err, "preprocessor config: no size and no vision image_size");
    if (vision_image_size > 0 && c->image_size != vision_image_size)
        return dsr_errf(err, "preprocessor size %d differs from the vision tower's image_size %d", c->image_size,
                        vision_image_size);

    if (get_triple(root, "image_mean", c->image_mean, err) != 0) return -1;
    if (get_triple(root, "image_std", c->image_std, err) != 0) return -1;
    for (int i = 0; i < 3; i++)
        if (!(c->image_std[i] > 0.0) || !isfinite(c->image_mean[i]))
            return dsr_errf(err, "preprocessor image_std/image_mean[%d]: std must be > 0, mean finite", i);

    /* HF: background = int(mean * 255) whenever image_mean is configured
     * (truncated in double: a mean far outside [0, 1] must not overflow an
     * int cast, it fails the range check below). */
    double bg[3];
    for (int i = 0; i < 3; i++) bg[i] = trunc(c->image_mean[i] * 255.0);
    if (!json_object_get(root, "image_mean")) bg[0] = bg[1] = bg[2] = 127;
    bool given = json_object_get(root, "background_color") != NULL;
    if (get_triple(root, "background_color", bg, err) != 0) return -1;
    for (int i = 0; i < 3; i++) {
        if (!(bg[i] >= 0.0 && bg[i] <= 255.0) || bg[i] != floor(bg[i]))
            return given ? dsr_errf(err, "preprocessor background_color[%d]: expected an integer in [0, 255]", i)
                         : dsr_errf(err, "preprocessor image_mean[%d] = %g: the background int(mean * 255) is outside "
                                         "[0, 255]; give background_color", i, c->image_mean[i]);
        c->background[i] = (uint8_t)bg[i];
    }

    json_t *v = json_object_get(root, "min_size");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > IMAGE_PROC_MAX_SIZE)
            return dsr_errf(err, "preprocessor min_size: expected an integer in [1, %d]", IMAGE_PROC_MAX_SIZE);
        c->min_size = (int)json_integer_value(v);
    }
    v = json_object_get(root, "rescale_factor");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) > 0.0) || !isfinite(json_number_value(v)))
            return dsr_errf(err, "preprocessor rescale_factor: expected a positive number");
        c->rescale_factor = json_number_value(v);
    }
    v = json_object_get(root, "do_normalize");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) return dsr_errf(err, "preprocessor do_normalize: expected true or false");
        c->do_normalize = json_is_true(v);
    }
    v = json_object_get(root, "resample"); /* PILImageResampling.BICUBIC, or its name */
    if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 3) &&
        !(json_is_string(v) && strcasecmp(json_string_value(v), "bicubic") == 0))
        return dsr_errf(err, "preprocessor resample: only bicubic (3) is supported");
    v = json_object_get(root, "image_processor_type");
    if (json_is_string(v) && strcmp(json_string_value(v), "JanusImageProcessorPil") == 0)
        c->resize_flavor = BICUBIC_PIL;
    if (require_true(root, "do_resize", err) || require_true(root, "do_pad", err) ||
        require_true(root, "do_rescale", err))
        return -1;
    return 0;
}

int janus_image_config_parse(const char *json, size_t len, int vision_image_size, struct janus_image_config *c,
                             struct dsr_err *err) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return dsr_errf(err, "preprocessor config: JSON error at line %d: %s", jerr.line, jerr.text);
    int rc = parse_root(root, vision_image_size, c, err);
    json_decref(root);
    return rc;
}

int janus_image_config_load(const char *path, int vision_image_size, struct janus_image_config *c,
                            struct dsr_err *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return dsr_errf(err, "%s: JSON error at line %d: %s", path, jerr.line, jerr.text);
    int rc = parse_root(root, vision_image_size, c, err);
    json_decref(root);
    if (rc != 0) dsr_err_prefix(err, "%s", path);
    return rc;
}

/* ---- preprocessing ---- */

void janus_image_resized_size(const struct janus_image_config *c, int w, int h, int *out_w, int *out_h) {
    int S = c->image_size;
    int longer = w > h ? w : h, shorter = w > h ? h : w;
    /* HF: max(round(side * (S / longest)), min_size), Python's round: half
     * to even, as rint() in the default rounding mode. */
    int s = (int)rint(shorter * ((double)S / longer));
    if (s < c->min_size) s = c->min_size;
    if (s > S) s = S;
    if (w > h) {
        *out_w = S;
        *out_h = s;
    } else if (h > w) {
        *out_w = s;
        *out_h = S;
    } else {
        *out_w = *out_h = S;
    }
}

/* uint8 -> float32 exactly as HF: float32(float64(u) * rescale), then
 * (x - float32(mean)) / float32(std) in float32. */
static float normalize_value(const struct janus_image_config *c, int ch, uint8_t u) {
    float x = (float)((double)u * c->rescale_factor);
    if (!c->do_normalize) return x;
    return (x - (float)c->image_mean[ch]) / (float)c->image_std[ch];
}

int janus_image_normalize_square(const struct janus_image_config *c, const uint8_t *rgb, int w, int h, float *out,
                                 struct dsr_err *err) {
    int S = c->image_size;
    if (w != S || h != S) return dsr_errf(err, "image is %dx%d, expected %dx%d", w, h, S, S);
    float lut[3][256]; /* 768 values cover every pixel */
    for (int ch = 0; ch < 3; ch++)
        for (int u = 0; u < 256; u++) lut[ch][u] = normalize_value(c, ch, (uint8_t)u);
    size_t plane = (size_t)S * S;
    for (size_t i = 0; i < plane; i++)
        for (int ch = 0; ch < 3; ch++) out[ch * plane + i] = lut[ch][rgb[3 * i + ch]];
    return 0;
}

int janus_image_preprocess(const struct janus_image_config *c, const uint8_t *rgb, int w, int h, float *out,
                           struct dsr_err *err) {
    int S = c->image_size;
    if (S < 1 || w < 1 || h < 1) return dsr_errf(err, "preprocess: bad sizes (image %dx%d, target %d)", w, h, S);
    int rw, rh;
    janus_image_resized_size(c, w, h, &rw, &rh);
    uint8_t *square = malloc((size_t)S * S * 3);
    uint8_t *resized = malloc((size_t)rw * rh * 3);
    if (!square || !resized) {
        free(square);
        free(resized);
        return dsr_errf(err, "preprocess: out of memory");
    }
    int rc = bicubic_resize_rgb8(rgb, w, h, resized, rw, rh, c->resize_flavor, err);
    if (rc == 0) {
        for (size_t i = 0; i < (size_t)S * S; i++) memcpy(square + 3 * i, c->background, 3);
        int top = (S - rh) / 2, left = (S - rw) / 2;
        for (int y = 0; y < rh; y++)
            memcpy(square + ((size_t)(top + y) * S + left) * 3, resized + (size_t)y * rw * 3, (size_t)rw * 3);
        rc = janus_image_normalize_square(c, square, S, S, out, err);
    }
    free(square);
    free(resized);
    return rc;
}

/* ---- postprocessing ---- */

void janus_image_postprocess(const struct janus_image_config *c, const float *chw, uint8_t *hwc) {
    size_t plane = (size_t)c->image_size * c->image_size;
    double scale = 1.0 / c->rescale_factor; /* HF: 1 / self.rescale_factor */
    for (int ch = 0; ch < 3; ch++) {
        /* HF unnormalises by normalising with mean' = -mean/std, std' = 1/std. */
        double rmean = -c->image_mean[ch] / c->image_std[ch], rstd = 1.0 / c->image_std[ch];
        for (size_t i = 0; i < plane; i++) {
            double x = chw[ch * plane + i];
            if (c->do_normalize) x = (x - rmean) / rstd;
            float v = (float)(x * scale);
            /* clip(0, 255) then astype(uint8) truncates; NaN maps to 0. */
            uint8_t u = 0;
            if (v >= 255.0f) u = 255;
            else if (v > 0.0f) u = (uint8_t)v;
            hwc[3 * i + ch] = u;
        }
    }
}

void janus_image_from_pm1(const struct janus_image_config *c, const float *in, float *out) {
    size_t plane = (size_t)c->image_size * c->image_size;
    for (int ch = 0; ch < 3; ch++) {
        /* ((x + 1) / 2 - mean) / std, arranged so mean = std = 0.5 gives x
         * bit for bit. */
        double shift = 1.0 - 2.0 * c->image_mean[ch], div = 2.0 * c->image_std[ch];
        for (size_t i = 0; i < plane; i++) {
            double x = in[ch * plane + i];
            x = x < -1.0 ? -1.0 : (x > 1.0 ? 1.0 : x); /* NaN passes through */
            out[ch * plane + i] = c->do_normalize ? (float)((x + shift) / div) : (float)((x + 1.0) * 0.5);
        }
    }
}
