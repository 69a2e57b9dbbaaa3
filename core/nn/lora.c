#include "nn/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const TARGET_NAMES[LORA_N_TARGETS] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    "generation_head.proj_out", "generation_head.vision_head", "aligner", "generation_aligner"};
static const char *const TARGET_MODULES[LORA_N_TARGETS] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
    "mlp.down_proj", "model.generation_head.proj_out", "model.generation_head.vision_head", "model.aligner",
    "model.generation_aligner"};

const char *lora_target_name(enum lora_target t) { return TARGET_NAMES[t]; }
const char *lora_target_module(enum lora_target t) { return TARGET_MODULES[t]; }
const char *lora_target_leaf(enum lora_target t) {
    const char *dot = strrchr(TARGET_NAMES[t], '.');
    return dot ? dot + 1 : TARGET_NAMES[t];
}

void lora_aligner_module(enum lora_target t, int i, char *buf, size_t cap) {
    if (i == 0) snprintf(buf, cap, "%s.fc1", TARGET_MODULES[t]);
    else snprintf(buf, cap, "%s.hidden_layers.%d", TARGET_MODULES[t], i - 1);
}

void lora_format_targets(unsigned targets, const char *sep, char *buf, int cap) {
    int len = 0;
    if (cap > 0) buf[0] = 0;
    for (int i = 0; i < LORA_N_TARGETS && len < cap; i++) {
        if (!(targets & (1u << i))) continue;
        int w = snprintf(buf + len, (size_t)(cap - len), "%s%s", len ? sep : "", TARGET_NAMES[i]);
        if (w < 0) break;
        len += w;
    }
}

int lora_parse_targets(const char *csv, unsigned *targets, struct dsr_err *err) {
    *targets = 0;
    const char *p = csv;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        int found = -1;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *targets |= LORA_LM_TARGETS;
            found = LORA_N_TARGETS;
        }
        for (int i = 0; i < LORA_N_TARGETS && found < 0; i++)
            if (strlen(TARGET_NAMES[i]) == len && strncmp(p, TARGET_NAMES[i], len) == 0) found = i;
        if (found < 0) {
            char valid[256];
            lora_format_targets(LORA_EVERY_TARGET, ", ", valid, sizeof valid);
            return dsr_errf(err, "unknown target \"%.*s\" (valid: %s; all = the seven language-model projections)",
                            (int)(len > 64 ? 64 : len), p, valid);
        }
        if (found < LORA_N_TARGETS) *targets |= 1u << found;
        if (!end) break;
        p = end + 1;
    }
    if (!*targets) return dsr_errf(err, "no targets given");
    return 0;
}

int lora_config_validate(const struct lora_config *c, int smallest_dim, struct dsr_err *err) {
    int max_rank = smallest_dim < LORA_MAX_RANK ? smallest_dim : LORA_MAX_RANK;
    if (c->rank < 1 || c->rank > max_rank)
        return dsr_errf(err, "lora rank: %d is outside [1, %d] (the smallest adapted dimension is %d)", c->rank,
                        max_rank, smallest_dim);
    if (!isfinite(c->alpha) || c->alpha <= 0) return dsr_errf(err, "lora alpha: must be a finite number > 0");
    if (!c->targets || (c->targets & ~LORA_EVERY_TARGET)) return dsr_errf(err, "lora targets: empty or unknown");
    return 0;
}

void lora_forward(float *out, const float *x, const struct lora *l, int n, int in_dim, int out_dim, float *u) {
    if (n <= 0) return;
    int r = l->rank;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r, in_dim, 1.0f, x, in_dim, l->a, in_dim, 0.0f, u, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_dim, r, l->scale, u, r, l->b, r, 1.0f, out, out_dim);
}

void lora_backward(const float *x, const float *u, const float *dy, const struct lora *l, int n, int in_dim,
                   int out_dim, float *ga, float *gb, float *dx, float *du) {
    if (n <= 0) return;
    int r = l->rank;
    if (gb)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, r, n, l->scale, dy, out_dim, u, r, 1.0f, gb, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, out_dim, l->scale, dy, out_dim, l->b, r, 0.0f, du, r);
    if (ga)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in_dim, n, 1.0f, du, r, x, in_dim, 1.0f, ga, in_dim);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_dim, r, 1.0f, du, r, l->a, in_dim, 1.0f, dx, in_dim);
}
