/* BF16 weight storage (--weights-dtype bf16, model/params.h): the janus-tiny
 * BF16 checkpoint held as BF16 gives HF's logits for that checkpoint
 * (fixture bf16.lm.logits, 1e-4), and every component (LM prefill and
 * one-row decode steps, generation head, vision tower, VQ-VAE) equals the same
 * checkpoint held as float32, i.e. float32 compute on the BF16-rounded
 * weights through the float32 kernels (1e-5: the BF16 kernels sum in
 * another order).  AUTO keeps a float32 checkpoint and a small BF16 one as
 * float32; matrices take half the bytes; promotion to float32 for
 * training widens exactly and leaves the frozen tower BF16; a checkpoint of
 * a BF16-held model stores BF16 and loads back bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tiny_fixture.h"
#include "model/janus_model.h"
#include "io/safetensors.h"
#include "io/safetensors_dir.h"

#define BF16_WEIGHTS TINY_FIXTURE_DIR "/model-bf16.safetensors"
#define CONFIG TINY_FIXTURE_DIR "/config.json"

static int load(struct th *t, const char *weights_path, enum janus_weights w, struct janus_model *m) {
    struct dsr_err err = {{0}};
    return TH_CHECK(t, janus_model_load_files(CONFIG, weights_path, w, NULL, m, &err) == 0, "load %s: %s", weights_path,
                    err.msg)
               ? 0
               : -1;
}

/* The BF16 checkpoint held as BF16 (b) and as float32 (f). */
static int load_pair(struct th *t, struct janus_model *b, struct janus_model *f) {
    if (load(t, BF16_WEIGHTS, JANUS_WEIGHTS_BF16, b)) return -1;
    if (load(t, BF16_WEIGHTS, JANUS_WEIGHTS_F32, f)) {
        janus_model_free(b);
        return -1;
    }
    return 0;
}

/* logits[len, V] of one sequence: prefill of `prefill` tokens, then one
 * token per step (the decode path: one-row kernels). */
static int logits_by_steps(const struct janus_model *m, const int32_t *ids, int len, int prefill, float *logits,
                           struct dsr_err *err) {
    int C = m->cfg.text.hidden_size, V = m->cfg.text.vocab_size;
    struct kv_cache cache;
    if (kv_cache_init(&cache, 1, m->cfg.text.n_layers, len, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32, err))
        return -1;
    float *rows = malloc((size_t)len * C * sizeof *rows);
    int rc = rows ? 0 : dsr_errf(err, "out of memory");
    for (int pos = 0; rc == 0 && pos < len;) {
        int n = pos == 0 ? prefill : 1;
        struct lm_segment seg = {.slot = 0, .n = n};
        rc = lm_embed_tokens(&m->lm, ids + pos, n, rows, err);
        if (rc == 0) rc = lm_forward(&m->lm, &cache, &seg, 1, rows, rows, err);
        if (rc == 0) rc = lm_logits(&m->lm, rows, n, logits + (size_t)pos * V, err);
        pos += n;
    }
    free(rows);
    kv_cache_free(&cache);
    return rc;
}

static void test_lm_matches_hf_and_f32(struct th *t) {
    struct janus_model b, f;
    if (load_pair(t, &b, &f)) return;
    const struct param *emb = pt_find(&b.params, "model.language_model.embed_tokens.weight");
    TH_CHECK(t, emb && emb->bf16 && b.lm.embed_tokens.bf16 && !b.lm.embed_tokens.f32, "embed_tokens not held BF16");
    TH_CHECK(t, b.lm.layers[0].q_w.bf16 && b.vision->layers[0].fc1_w.bf16 && b.gen.head_w.bf16,
             "q_proj / vision fc1 / vision_head not held BF16");
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t n, nl;
    int32_t *ids = th_tensor_i32(cases, "lm.input_ids", &n);
    float *want = th_tensor_f32(cases, "bf16.lm.logits", &nl);
    int V = b.cfg.text.vocab_size, len = 12;
    float *got = malloc(nl * sizeof *got), *ref = malloc(nl * sizeof *ref);
    struct dsr_err err = {{0}};
    /* sequence by sequence: a 5-token prefill (many-row panel path) then decode steps (one-row kernel) */
    int rc = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        rc = logits_by_steps(&b, ids + s * len, len, 5, got + (size_t)s * len * V, &err);
        if (rc == 0) rc = logits_by_steps(&f, ids + s * len, len, 5, ref + (size_t)s * len * V, &err);
    }
    if (TH_CHECK(t, rc == 0, "forward: %s", err.msg)) {
        TH_CLOSE(t, "bf16-held logits vs HF", got, want, nl, 1e-4);
        TH_CLOSE(t, "bf16-held logits vs float32-held", got, ref, nl, 1e-5);
    }
    free(ids), free(want), free(got), free(ref);
    st_close(cases);
    janus_model_free(&b);
    janus_model_free(&f);
}

static void test_gen_head_and_vision_match_f32(struct th *t) {
    struct janus_model b, f;
    if (load_pair(t, &b, &f)) return;
    struct dsr_err err = {{0}};
    /* generation head on 1 row (decode) and on 5 rows */
    int C = b.cfg.text.hidden_size, K = b.gen.codebook_size;
    float hidden[5 * 256], got[5 * 512], ref[5 * 512];
    TH_CHECK(t, C <= 256 && K <= 512, "fixture larger than the buffers");
    for (int i = 0; i < 5 * C; i++) hidden[i] = (float)((i * 37) % 23 - 11) / 7.0f;
    for (int rows = 1; rows <= 5; rows += 4) {
        int rc = gen_head_logits(&b.gen, hidden, rows, got, &err);
        if (rc == 0) rc = gen_head_logits(&f.gen, hidden, rows, ref, &err);
        if (TH_CHECK(t, rc == 0, "gen head: %s", err.msg))
            TH_CLOSE(t, "gen head logits", got, ref, (size_t)rows * K, 1e-5);
    }
    /* code embeddings through the aligner (BF16 embedding rows widened) */
    int32_t codes[3] = {0, 7, K - 1};
    float *e1 = malloc((size_t)3 * C * sizeof *e1), *e2 = malloc((size_t)3 * C * sizeof *e2);
    if (TH_CHECK(t,
                 gen_embed_codes(&b.gen, codes, 3, e1, &err) == 0 && gen_embed_codes(&f.gen, codes, 3, e2, &err) == 0,
                 "embed codes: %s", err.msg))
        TH_CLOSE(t, "code embeddings", e1, e2, (size_t)3 * C, 1e-6);
    free(e1), free(e2);
    /* the vision tower on the fixture's pixels */
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t n_px;
    float *px = th_tensor_f32(cases, "vision.pixel_values", &n_px);
    const struct vision_config *v = &b.cfg.vision;
    size_t per_image = (size_t)v->num_channels * v->image_size * v->image_size;
    int n_images = (int)(n_px / per_image);
    size_t n_feat = (size_t)n_images * v->num_image_tokens * v->hidden_size;
    float *fb = malloc(n_feat * sizeof *fb), *ff = malloc(n_feat * sizeof *ff);
    if (TH_CHECK(t, vision_tower_forward(b.vision, px, n_images, fb, &err) == 0 &&
                        vision_tower_forward(f.vision, px, n_images, ff, &err) == 0,
                 "tower: %s", err.msg))
        TH_CLOSE(t, "vision features", fb, ff, n_feat, 1e-5);
    free(fb), free(ff), free(px);
    st_close(cases);
    /* the VQ-VAE: BF16-held convolutions widen exactly, so encode and decode
     * are bit for bit the float32-held model's */
    int S = vq_image_size(&b.cfg), P2 = b.cfg.vq.num_patches * b.cfg.vq.num_patches;
    size_t n_img = (size_t)3 * S * S;
    float *img = malloc(n_img * sizeof *img), *db = malloc(n_img * sizeof *db), *df = malloc(n_img * sizeof *df);
    int32_t *cb = malloc((size_t)P2 * sizeof *cb), *cf = malloc((size_t)P2 * sizeof *cf);
    for (size_t i = 0; i < n_img; i++) img[i] = (float)((int)(i * 53 % 97) - 48) / 48.0f;
    int rc = vq_encode(b.vq, img, 1, VQ_QUANT_L2, cb, NULL, NULL, &err) ||
             vq_encode(f.vq, img, 1, VQ_QUANT_L2, cf, NULL, NULL, &err) || vq_decode(b.vq, cb, 1, db, &err) ||
             vq_decode(f.vq, cb, 1, df, &err);
    if (TH_CHECK(t, rc == 0, "vq: %s", err.msg))
        TH_CHECK(t, memcmp(cb, cf, (size_t)P2 * sizeof *cb) == 0 && memcmp(db, df, n_img * sizeof *db) == 0,
                 "BF16-held VQ-VAE differs from the float32-held one");
    const struct param *conv = pt_find(&b.params, "model.vqmodel.encoder.conv_in.weight");
    TH_CHECK(t, conv && conv->bf16, "VQ convolutions not held BF16");
    free(img), free(db), free(df), free(cb), free(cf);
    janus_model_free(&b);
    janus_model_free(&f);
}

/* hidden[16, C] after a 3-token prefill of 16 slots and two decode steps
 * of one row each: 16 rows, so lm_forward runs a BF16-held model's steps as
 * per-thread teams (model/lm.h) on a machine with 2+ threads. */
#define TEAM_SLOTS 16
static int batched_decode(const struct janus_model *m, float *hidden, struct dsr_err *err) {
    const struct text_config *tc = &m->cfg.text;
    int C = tc->hidden_size;
    struct kv_cache cache;
    if (kv_cache_init(&cache, TEAM_SLOTS, tc->n_layers, 5, tc->n_kv_heads, tc->head_dim, KV_F32, err)) return -1;
    float *rows = malloc((size_t)3 * TEAM_SLOTS * C * sizeof *rows);
    int32_t ids[3 * TEAM_SLOTS];
    struct lm_segment segs[TEAM_SLOTS];
    int rc = rows ? 0 : dsr_errf(err, "out of memory");
    for (int step = 0; rc == 0 && step < 3; step++) {
        int n = step == 0 ? 3 : 1;
        for (int k = 0; k < TEAM_SLOTS; k++) {
            segs[k] = (struct lm_segment){.slot = k, .n = n};
            for (int i = 0; i < n; i++) ids[k * n + i] = (7 + 13 * k + 5 * step + i) % tc->vocab_size;
        }
        rc = lm_embed_tokens(&m->lm, ids, n * TEAM_SLOTS, rows, err);
        if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, TEAM_SLOTS, rows, rows, err);
    }
    if (rc == 0) memcpy(hidden, rows, (size_t)TEAM_SLOTS * C * sizeof *rows);
    free(rows);
    kv_cache_free(&cache);
    return rc;
}

static void test_batched_decode_matches_f32(struct th *t) {
    struct janus_model b, f;
    if (load_pair(t, &b, &f)) return;
    size_t n = (size_t)TEAM_SLOTS * b.cfg.text.hidden_size;
    float *hb = malloc(n * sizeof *hb), *hf = malloc(n * sizeof *hf);
    struct dsr_err err;
    if (TH_CHECK(t, batched_decode(&b, hb, &err) == 0, "bf16: %s", err.msg) &&
        TH_CHECK(t, batched_decode(&f, hf, &err) == 0, "f32: %s", err.msg))
        TH_CLOSE(t, "16-row decode, BF16-held vs float32-held", hb, hf, n, 1e-5);
    free(hb), free(hf);
    janus_model_free(&b);
    janus_model_free(&f);
}

static void test_auto_and_bytes(struct th *t) {
    struct janus_model a, f32file, b, autob;
    if (load(t, BF16_WEIGHTS, JANUS_WEIGHTS_BF16, &a)) return;
    if (load(t, TINY_FIXTURE_DIR "/model.safetensors", JANUS_WEIGHTS_AUTO, &f32file)) {
        janus_model_free(&a);
        return;
    }
    TH_CHECK(t, a.params.trainable_bf16 && a.params.frozen_bf16, "BF16 requested, not held");
    TH_CHECK(t, !f32file.params.trainable_bf16 && !f32file.params.frozen_bf16,
             "AUTO on a float32 checkpoint held BF16");
    /* AUTO on a BF16 checkpoint far below JANUS_AUTO_BF16_MIN_BYTES: float32 */
    if (load(t, BF16_WEIGHTS, JANUS_WEIGHTS_AUTO, &autob) == 0) {
        TH_CHECK(t, pt_count(&autob.params, false) * 4 < JANUS_AUTO_BF16_MIN_BYTES && !autob.params.trainable_bf16 &&
                        !autob.params.frozen_bf16,
                 "AUTO held a small BF16 checkpoint as BF16");
        janus_model_free(&autob);
    }
    /* bytes: every matrix declared with pt_declare_matrix at 2, the rest at 4 */
    size_t matrix = 0, other = 0;
    for (size_t i = 0; i < a.params.n; i++) {
        const struct param *p = &a.params.items[i];
        if (p->matrix) matrix += p->numel;
        else other += p->numel;
        TH_CHECK(t, p->bf16 == p->matrix, "%s: bf16 %d, matrix %d", p->name, p->bf16, p->matrix);
        if (p->bf16) TH_CHECK(t, (uintptr_t)pt_data_bf16(&a.params, p) % 64 == 0, "%s not 64-byte aligned", p->name);
    }
    TH_CHECK(t, pt_weight_bytes(&a.params) == 2 * matrix + 4 * other, "bytes %zu, want %zu",
             pt_weight_bytes(&a.params), 2 * matrix + 4 * other);
    TH_CHECK(t, pt_weight_bytes(&f32file.params) == 4 * (matrix + other), "float32 bytes %zu",
             pt_weight_bytes(&f32file.params));
    janus_model_free(&f32file);
    /* random weights: AUTO is float32, BF16 on request rounds them */
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, janus_model_init_random(&a.cfg, 3, JANUS_WEIGHTS_BF16, NULL, &b, &err) == 0, "random: %s", err.msg)) {
        TH_CHECK(t, b.params.trainable_bf16 != NULL, "random BF16 not held BF16");
        janus_model_free(&b);
    }
    janus_model_free(&a);
}

/* Training's float32 promotion: exact widening of the trainable matrices,
 * the frozen tower still BF16, and the LM then computes exactly as the
 * float32-held model (same kernels, same values). */
static void test_promote(struct th *t) {
    struct janus_model b, f;
    if (load_pair(t, &b, &f)) return;
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, pt_promote_trainable(&b.params, &err) == 0 && janus_model_rebind(&b, &err) == 0, "promote: %s",
                 err.msg)) {
        TH_CHECK(t, !b.params.trainable_bf16 && b.params.frozen_bf16, "after promotion: trainable %p frozen %p",
                 (void *)b.params.trainable_bf16, (void *)b.params.frozen_bf16);
        TH_CHECK(t, b.lm.layers[0].q_w.f32 && b.vision->layers[0].q_w.bf16, "rebind: q_proj f32, vision q BF16");
        int same = 1;
        for (size_t i = 0; i < b.params.n; i++) {
            const struct param *p = &b.params.items[i];
            if (p->trainable)
                same &= memcmp(pt_data(&b.params, p), pt_data(&f.params, pt_find(&f.params, p->name)),
                               p->numel * sizeof(float)) == 0;
        }
        TH_CHECK(t, same, "promoted trainable weights differ from the float32-held load");
        size_t n;
        struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
        int32_t *ids = th_tensor_i32(cases, "lm.input_ids", &n);
        int V = b.cfg.text.vocab_size;
        float *got = malloc((size_t)12 * V * sizeof *got), *ref = malloc((size_t)12 * V * sizeof *ref);
        if (TH_CHECK(t,
                     logits_by_steps(&b, ids, 12, 5, got, &err) == 0 && logits_by_steps(&f, ids, 12, 5, ref, &err) == 0,
                     "forward: %s", err.msg))
            TH_CHECK(t, memcmp(got, ref, (size_t)12 * V * sizeof *got) == 0,
                     "promoted logits differ from float32-held");
        free(got), free(ref), free(ids);
        st_close(cases);
    }
    janus_model_free(&b);
    janus_model_free(&f);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "lm_matches_hf_and_f32", test_lm_matches_hf_and_f32);
    th_run(&t, "gen_head_and_vision_match_f32", test_gen_head_and_vision_match_f32);
    th_run(&t, "batched_decode_matches_f32", test_batched_decode_matches_f32);
    th_run(&t, "auto_and_bytes", test_auto_and_bytes);
    th_run(&t, "promote", test_promote);
    return th_finish(&t, "test_bf16_storage");
}
