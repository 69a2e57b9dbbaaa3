#include "mid_model.h"

#include <time.h>

void mid_config(struct janus_config *c) {
    janus_config_defaults(c);
    struct text_config *t = &c->text;
    t->vocab_size = 32000;
    t->hidden_size = 1024;
    t->intermediate_size = 2816;
    t->n_layers = 12;
    t->n_heads = 16;
    t->n_kv_heads = 16;
    t->head_dim = 64;
    t->max_position_embeddings = 4096;
    t->bos_token_id = MID_BOS;
    t->eos_token_id = MID_EOS;
    t->pad_token_id = MID_PAD;
    t->tie_word_embeddings = false;
    c->tie_word_embeddings = false;

    /* a token vision tower: frozen, outside the measured language model */
    struct vision_config *v = &c->vision;
    v->hidden_size = 32;
    v->n_layers = 1;
    v->n_heads = 2;
    v->intermediate_size = 64;
    v->projection_dim = t->hidden_size;

    struct vq_config *q = &c->vq;
    q->num_patches = 24; /* 576 image tokens */
    q->projection_dim = t->hidden_size;
    q->image_token_embed_dim = t->hidden_size;

    c->image_token_id = MID_IMAGE;
    c->boi_token_id = MID_BOI;
    c->eoi_token_id = MID_EOI;
}

double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* weights of one decoder layer's projections, in floats */
static double layer_linear_params(const struct text_config *t) {
    double C = t->hidden_size, I = t->intermediate_size;
    double Q = (double)t->n_heads * t->head_dim, KV = (double)t->n_kv_heads * t->head_dim;
    return C * (Q + 2 * KV) + Q * C + 3 * C * I;
}

double lm_linear_flops_per_row(const struct text_config *t) { return 2.0 * t->n_layers * layer_linear_params(t); }

double lm_attention_flops(const struct text_config *t, int n, int start) {
    /* row i sees start + i + 1 positions: Σ = n·start + n(n+1)/2 */
    double visible = (double)n * start + (double)n * (n + 1) / 2.0;
    return 2.0 /* QKᵀ and PV */ * 2.0 * t->n_layers * (double)t->n_heads * t->head_dim * visible;
}

double text_head_flops_per_row(const struct janus_config *c) {
    return 2.0 * c->text.hidden_size * (double)c->text.vocab_size;
}

double code_head_flops_per_row(const struct janus_config *c) {
    double W = c->vq.projection_dim;
    return 2.0 * (c->vq.image_token_embed_dim * W + W * c->vq.num_embeddings);
}

double code_embed_flops_per_row(const struct janus_config *c) {
    double W = c->vq.projection_dim;
    return 2.0 * (c->vq.embed_dim * W + (c->vq.num_hidden_layers - 1) * W * W);
}

double lm_layer_weight_bytes(const struct text_config *t) {
    return 4.0 * (t->n_layers * (layer_linear_params(t) + 2.0 * t->hidden_size) + t->hidden_size);
}

double text_head_weight_bytes(const struct janus_config *c) {
    return 4.0 * c->text.hidden_size * (double)c->text.vocab_size;
}

double code_path_weight_bytes(const struct janus_config *c) {
    const struct vq_config *q = &c->vq;
    double W = q->projection_dim;
    double aligner = q->embed_dim * W + W + (q->num_hidden_layers - 1) * (W * W + W);
    double head = q->image_token_embed_dim * W + W + W * q->num_embeddings + q->num_embeddings;
    return 4.0 * (aligner + head);
}

double kv_read_bytes(const struct text_config *t, int len) {
    return 4.0 * 2.0 * t->n_layers * (double)t->n_kv_heads * t->head_dim * len;
}
