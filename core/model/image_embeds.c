#include "model/image_embeds.h"

#include <stdlib.h>

/* The VQ-VAE works in [-1, 1] at its own size, whatever the vision tower's
 * normalisation: same resize and padding, mean = std = 0.5. */
static void vq_input_config(const struct janus_model *m, struct janus_image_config *c) {
    *c = m->image_cfg;
    c->image_size = vq_image_size(&m->cfg);
    for (int i = 0; i < 3; i++) c->image_mean[i] = c->image_std[i] = 0.5;
    c->do_normalize = true;
}

static float *alloc_pixels(int side, struct dsr_err *err) {
    float *p = malloc((size_t)3 * side * side * sizeof(float));
    if (!p) dsr_errf(err, "out of memory for a %d×%d image", side, side);
    return p;
}

int janus_embeds_from_rgb(const struct janus_model *m, const uint8_t *rgb, int w, int h, float *rows,
                          struct dsr_err *err) {
    float *px = alloc_pixels(m->image_cfg.image_size, err);
    if (!px) return -1;
    int rc = janus_image_preprocess(&m->image_cfg, rgb, w, h, px, err);
    if (rc == 0) rc = janus_image_embeds(m, px, 1, rows, err);
    free(px);
    return rc;
}

int janus_embeds_from_codes(const struct janus_model *m, const int32_t *codes, float *rows, struct dsr_err *err) {
    int side = vq_image_size(&m->cfg);
    if (side != m->cfg.vision.image_size)
        return dsr_errf(err, "VQ images are %d px but the vision tower sees %d px: cannot view codes", side,
                        m->cfg.vision.image_size);
    float *px = alloc_pixels(side, err);
    if (!px) return -1;
    int rc = vq_decode(m->vq, codes, 1, px, err);
    if (rc == 0) {
        janus_image_from_pm1(&m->image_cfg, px, px);
        rc = janus_image_embeds(m, px, 1, rows, err);
    }
    free(px);
    return rc;
}

int janus_codes_from_rgb(const struct janus_model *m, const uint8_t *rgb, int w, int h, enum vq_quantizer mode,
                         int32_t *codes, struct dsr_err *err) {
    struct janus_image_config c;
    vq_input_config(m, &c);
    float *px = alloc_pixels(c.image_size, err);
    if (!px) return -1;
    int rc = janus_image_preprocess(&c, rgb, w, h, px, err);
    if (rc == 0) rc = vq_encode(m->vq, px, 1, mode, codes, NULL, NULL, err);
    free(px);
    return rc;
}

int janus_rgb_from_codes(const struct janus_model *m, const int32_t *codes, uint8_t *rgb, struct dsr_err *err) {
    struct janus_image_config c;
    vq_input_config(m, &c);
    float *px = alloc_pixels(c.image_size, err);
    if (!px) return -1;
    int rc = vq_decode(m->vq, codes, 1, px, err);
    if (rc == 0) janus_image_postprocess(&c, px, rgb);
    free(px);
    return rc;
}
