/* Language model and generation path against the janus-tiny fixtures:
 * full-sequence logits, teacher-forced log-probs (text and image targets),
 * BF16 weights, KV-cache decode == full recompute (also with shared prefixes),
 * packing invariance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tiny_fixture.h"
#include "model/janus_model.h"
#include "janus/reward.h"
#include "janus/teacher_forcing.h"


/* logits[n_seq, len, V] of full sequences through the LM, packed in one forward. */
static int full_logits(const struct janus_model *m, const int32_t *ids, int n_seq, int len, float *logits,
                       struct dsr_err *err) {
    int C = m->cfg.text.hidden_size;
    struct kv_cache cache;
    if (kv_cache_init(&cache, n_seq, m->cfg.text.n_layers, len, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32, err))
        return -1;
    float *rows = malloc((size_t)n_seq * len * C * sizeof(float));
    struct lm_segment segs[8];
    for (int s = 0; s < n_seq; s++) segs[s] = (struct lm_segment){.slot = s, .n = len};
    int rc = lm_embed_tokens(&m->lm, ids, n_seq * len, rows, err);
    if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, n_seq, rows, rows, err);
    if (rc == 0) rc = lm_logits(&m->lm, rows, n_seq * len, logits, err);
    free(rows);
    kv_cache_free(&cache);
    return rc;
}

static void test_lm_logits(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    size_t n, nl;
    int32_t *ids = th_tensor_i32(fx.cases, "lm.input_ids", &n);
    float *want = th_tensor_f32(fx.cases, "lm.logits", &nl);
    float *got = malloc(nl * sizeof *got);
    struct dsr_err err;
    if (TH_CHECK(t, full_logits(&fx.model, ids, 2, 12, got, &err) == 0, "forward: %s", err.msg))
        TH_CLOSE(t, "lm.logits", got, want, nl, 1e-4);
    free(ids), free(want), free(got);
    tiny_fixture_free(&fx);
}

static void test_lm_logits_bf16(struct th *t) {
    struct janus_model m;
    struct dsr_err err;
    if (!TH_CHECK(t,
                  janus_model_load_files(TINY_FIXTURE_DIR "/config.json", TINY_FIXTURE_DIR "/model-bf16.safetensors",
                                         JANUS_WEIGHTS_F32, NULL, &m, &err) == 0,
                  "load bf16: %s", err.msg))
        return;
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t n, nl;
    int32_t *ids = th_tensor_i32(cases, "lm.input_ids", &n);
    float *want = th_tensor_f32(cases, "bf16.lm.logits", &nl);
    float *got = malloc(nl * sizeof *got);
    if (TH_CHECK(t, full_logits(&m, ids, 2, 12, got, &err) == 0, "forward: %s", err.msg))
        TH_CLOSE(t, "bf16.lm.logits", got, want, nl, 1e-4);
    free(ids), free(want), free(got);
    st_close(cases);
    janus_model_free(&m);
}

static void test_lm_logprobs(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    size_t n, nw;
    int32_t *ids = th_tensor_i32(fx.cases, "lm.input_ids", &n);
    float *want = th_tensor_f32(fx.cases, "lm.logprobs", &nw);
    struct tf_item items[2];
    for (int s = 0; s < 2; s++)
        items[s] = (struct tf_item){.context = ids + 12 * s, .n_context = 1, .kind = TF_TARGET_TOKENS,
                                    .target = ids + 12 * s + 1, .n_target = 11};
    float got[22];
    struct dsr_err err;
    if (TH_CHECK(t, tf_logprobs(&fx.model, items, 2, got, &err) == 0, "tf: %s", err.msg))
        TH_CLOSE(t, "lm.logprobs", got, want, nw, 1e-4);
    free(ids), free(want);
    tiny_fixture_free(&fx);
}

static void test_gen_logits_and_reward(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    const struct janus_model *m = &fx.model;
    int C = m->cfg.text.hidden_size;
    size_t np, nc, nl, nlp, nr;
    int32_t *prompt = th_tensor_i32(fx.cases, "gen.prompt_ids", &np);
    int32_t *codes = th_tensor_i32(fx.cases, "gen.codes", &nc);
    float *want_logits = th_tensor_f32(fx.cases, "gen.logits", &nl);
    float *want_lp = th_tensor_f32(fx.cases, "gen.logprobs", &nlp);
    float *want_ru = th_tensor_f32(fx.cases, "gen.r_u", &nr);
    struct dsr_err err;

    /* full logits of the generation head over every code position */
    struct tf_item it = {.context = prompt, .n_context = (int)np, .kind = TF_TARGET_CODES, .target = codes,
                         .n_target = (int)nc};
    int len = (int)(np + nc - 1);
    float *rows = malloc((size_t)len * C * sizeof(float));
    float *logits = malloc(nl * sizeof(float));
    struct kv_cache cache;
    int rc = kv_cache_init(&cache, 1, m->cfg.text.n_layers, len, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32, &err);
    struct lm_segment seg = {.slot = 0, .n = len};
    if (rc == 0) rc = tf_embed_item(m, &it, rows, &err);
    if (rc == 0) rc = lm_forward(&m->lm, &cache, &seg, 1, rows, rows, &err);
    if (rc == 0) rc = gen_head_logits(&m->gen, rows + (np - 1) * C, (int)nc, logits, &err);
    if (TH_CHECK(t, rc == 0, "gen forward: %s", err.msg)) TH_CLOSE(t, "gen.logits", logits, want_logits, nl, 1e-4);

    /* teacher-forced log-probs and their mean, R_U */
    float *lp = malloc(nc * sizeof(float));
    if (TH_CHECK(t, tf_logprobs(m, &it, 1, lp, &err) == 0, "tf: %s", err.msg)) {
        TH_CLOSE(t, "gen.logprobs", lp, want_lp, nlp, 1e-4);
        float ru = (float)reward_of(lp, (int)nc).reward;
        TH_CLOSE(t, "gen.r_u", &ru, want_ru, 1, 1e-4);
    }
    kv_cache_free(&cache);
    free(rows), free(logits), free(lp);
    free(prompt), free(codes), free(want_logits), free(want_lp), free(want_ru);
    tiny_fixture_free(&fx);
}

/* Two sequences decoded token by token in one batch equal the full forward. */
static void test_kv_cache_decode_matches_full(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    const struct janus_model *m = &fx.model;
    int C = m->cfg.text.hidden_size, V = m->cfg.text.vocab_size;
    size_t n;
    int32_t *ids = th_tensor_i32(fx.cases, "lm.input_ids", &n);
    float *full = malloc((size_t)2 * 12 * V * sizeof(float));
    float *step = malloc((size_t)2 * 12 * V * sizeof(float));
    struct dsr_err err;
    int rc = full_logits(m, ids, 2, 12, full, &err);
    struct kv_cache cache;
    if (rc == 0)
        rc = kv_cache_init(&cache, 2, m->cfg.text.n_layers, 12, m->cfg.text.n_kv_heads, m->cfg.text.head_dim, KV_F32, &err);
    float rows[2 * 64 * 12], hidden[2 * 64 * 12];
    /* prefill: 5 tokens of sequence 0 (gemm attention path), 1 of sequence 1 */
    struct lm_segment pre[2] = {{.slot = 0, .n = 5}, {.slot = 1, .n = 1}};
    int32_t pre_ids[6] = {ids[0], ids[1], ids[2], ids[3], ids[4], ids[12]};
    if (rc == 0) rc = lm_embed_tokens(&m->lm, pre_ids, 6, rows, &err);
    if (rc == 0) rc = lm_forward(&m->lm, &cache, pre, 2, rows, hidden, &err);
    if (rc == 0) {
        TH_CHECK(t, lm_logits(&m->lm, hidden, 5, step, &err) == 0, "lm_logits: %s", err.msg);
        TH_CHECK(t, lm_logits(&m->lm, hidden + 5 * C, 1, step + (size_t)12 * V, &err) == 0, "lm_logits: %s", err.msg);
    }
    /* then one token per step for both (sequence 0 lags: it is already at 5) */
    int pos0 = 5, pos1 = 1;
    while (rc == 0 && (pos0 < 12 || pos1 < 12)) {
        struct lm_segment segs[2];
        int32_t step_ids[2];
        int ns = 0;
        if (pos0 < 12) segs[ns] = (struct lm_segment){.slot = 0, .n = 1}, step_ids[ns++] = ids[pos0];
        if (pos1 < 12) segs[ns] = (struct lm_segment){.slot = 1, .n = 1}, step_ids[ns++] = ids[12 + pos1];
        rc = lm_embed_tokens(&m->lm, step_ids, ns, rows, &err);
        if (rc == 0) rc = lm_forward(&m->lm, &cache, segs, ns, rows, hidden, &err);
        for (int s = 0; s < ns && rc == 0; s++) {
            int pos = segs[s].slot == 0 ? pos0++ : pos1++;
            TH_CHECK(t,
                     lm_logits(&m->lm, hidden + (size_t)s * C, 1, step + ((size_t)segs[s].slot * 12 + pos) * V, &err) ==
                         0,
                     "lm_logits: %s", err.msg);
        }
    }
    if (TH_CHECK(t, rc == 0, "decode: %s", err.msg)) {
        TH_CLOSE(t, "decode vs full", step, full, (size_t)2 * 12 * V, 1e-5);
        TH_CHECK(t, cache.len[0] == 12 && cache.len[1] == 12, "cache lengths %d %d", cache.len[0], cache.len[1]);
    }
    kv_cache_free(&cache);
    free(ids), free(full), free(step);
    tiny_fixture_free(&fx);
}

/* Four sequences with a common 9-token prefix: prefilled once into slot 0
 * and shared (kv_cache_share_prefix), then continued with steps of 1, 3 and
 * 8 rows, one slot lagging.  Every position's logits equal a full recompute
 * of that sequence on its own, in the 8-row block and the per-row prefix
 * loops alike (a group of 12 rows takes both).  member_layout: the cache
 * of kv_cache_init_shared, where slots 1-3 store only the positions after
 * the prefix (and refuse a write before they share it). */
#define SHARED_PREFIX 9
#define SHARED_LEN 17
/* teams 0: lm_forward's own choice; otherwise lm_forward_teams with that
 * many (each step's segments split between them, prefill chunks included) */
static void shared_prefix_decode(struct th *t, int teams, int member_layout) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    const struct janus_model *m = &fx.model;
    int C = m->cfg.text.hidden_size, V = m->cfg.text.vocab_size;
    size_t n;
    int32_t *ids = th_tensor_i32(fx.cases, "lm.input_ids", &n);
    int32_t seqs[4 * SHARED_LEN];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < SHARED_LEN; i++)
            seqs[k * SHARED_LEN + i] = i < SHARED_PREFIX ? ids[i] : ids[(size_t)(i + 5 * k) % n];
    float *full = malloc((size_t)4 * SHARED_LEN * V * sizeof(float));
    float *step = malloc((size_t)4 * SHARED_LEN * V * sizeof(float));
    float *rows = malloc((size_t)4 * SHARED_LEN * C * sizeof(float));
    struct dsr_err err;
    int rc = full_logits(m, seqs, 4, SHARED_LEN, full, &err);
    struct kv_cache cache = {0};
    if (rc == 0)
        rc = kv_cache_init_shared(&cache, 4, member_layout ? 1 : 4, member_layout ? SHARED_PREFIX : 0,
                                  m->cfg.text.n_layers, SHARED_LEN, m->cfg.text.n_kv_heads, m->cfg.text.head_dim,
                                  KV_F32, &err);
    /* poison the storage (all-ones bytes are NaN): reading a sharer's own
     * pages below its prefix must show */
    if (rc == 0) {
        size_t bytes = kv_cache_storage_bytes(&cache) / 2;
        memset(cache.k, 0xff, bytes);
        memset(cache.v, 0xff, bytes);
    }
    struct lm_segment pre = {.slot = 0, .n = SHARED_PREFIX};
    if (rc == 0) rc = lm_embed_tokens(&m->lm, seqs, SHARED_PREFIX, rows, &err);
    if (rc == 0 && member_layout) {
        /* a member slot has no storage for the prefix's positions */
        struct lm_segment early = {.slot = 2, .n = 1};
        struct dsr_err e = {{0}};
        TH_CHECK(t, lm_forward(&m->lm, &cache, &early, 1, rows, rows, &e) != 0 && strstr(e.msg, "share a prefix"),
                 "a member slot written before sharing: %s", e.msg);
    }
    if (rc == 0) rc = lm_forward(&m->lm, &cache, &pre, 1, rows, rows, &err);
    for (int k = 0; k < 4 && rc == 0; k++) {
        TH_CHECK(t, lm_logits(&m->lm, rows, SHARED_PREFIX, step + (size_t)k * SHARED_LEN * V, &err) == 0,
                 "lm_logits: %s", err.msg);
        if (k > 0) rc = kv_cache_share_prefix(&cache, k, 0, &err);
    }
    /* rows per step for each slot (0: wait); slot 3 starts late */
    static const int plan[4][8] = {{1, 1, 1, 1, 1, 1, 1, 1}, {3, 3, 1, 1, 0, 0, 0, 0}, {8, 0, 0, 0, 0, 0, 0, 0},
                                   {0, 0, 1, 1, 1, 2, 2, 1}};
    int pos[4] = {SHARED_PREFIX, SHARED_PREFIX, SHARED_PREFIX, SHARED_PREFIX};
    for (int st = 0; st < 8 && rc == 0; st++) {
        struct lm_segment segs[4];
        int32_t step_ids[4 * SHARED_LEN];
        int ns = 0, T = 0;
        for (int k = 0; k < 4; k++) {
            if (plan[k][st] == 0) continue;
            segs[ns++] = (struct lm_segment){.slot = k, .n = plan[k][st]};
            for (int i = 0; i < plan[k][st]; i++) step_ids[T++] = seqs[k * SHARED_LEN + pos[k] + i];
        }
        rc = lm_embed_tokens(&m->lm, step_ids, T, rows, &err);
        if (rc == 0)
            rc = teams ? lm_forward_teams(&m->lm, &cache, segs, ns, rows, rows, teams, &err)
                       : lm_forward(&m->lm, &cache, segs, ns, rows, rows, &err);
        for (int s = 0, r = 0; s < ns && rc == 0; r += segs[s++].n) {
            int k = segs[s].slot;
            TH_CHECK(t,
                     lm_logits(&m->lm, rows + (size_t)r * C, segs[s].n, step + ((size_t)k * SHARED_LEN + pos[k]) * V,
                               &err) == 0,
                     "lm_logits: %s", err.msg);
            pos[k] += segs[s].n;
        }
    }
    if (TH_CHECK(t, rc == 0, "decode: %s", err.msg)) {
        TH_CHECK(t, pos[0] == SHARED_LEN && pos[1] == SHARED_LEN && pos[2] == SHARED_LEN && pos[3] == SHARED_LEN,
                 "plan incomplete");
        TH_CLOSE(t, "shared-prefix decode vs full", step, full, (size_t)4 * SHARED_LEN * V, 1e-5);
        /* the sharers never wrote below the prefix: their own pages stay unused */
        TH_CHECK(t, cache.prefix_slot[2] == 0 && cache.prefix_len[2] == SHARED_PREFIX, "slot 2 prefix %d/%d",
                 cache.prefix_slot[2], cache.prefix_len[2]);
    }
    /* misuse is refused: a non-empty destination, itself, a chain */
    if (rc == 0) {
        struct dsr_err e = {{0}};
        TH_CHECK(t, kv_cache_share_prefix(&cache, 1, 0, &e) != 0 && e.msg[0], "non-empty destination accepted");
        TH_CHECK(t, kv_cache_share_prefix(&cache, 0, 0, &e) != 0, "self-share accepted");
        kv_cache_reset_slot(&cache, 3);
        TH_CHECK(t, kv_cache_share_prefix(&cache, 3, 1, &e) != 0, "share from a sharer accepted");
        TH_CHECK(t, kv_cache_share_prefix(&cache, 3, 4, &e) != 0, "slot out of range accepted");
    }
    kv_cache_free(&cache);
    free(ids), free(full), free(step), free(rows);
    tiny_fixture_free(&fx);
}

static void test_shared_prefix_decode_matches_full(struct th *t) {
    shared_prefix_decode(t, 0, 0);
    shared_prefix_decode(t, 0, 1); /* kv_cache_init_shared: members store their own positions only */
}

/* Independent row teams (lm_forward_teams): the same logits as the full
 * forward, each team writing only its own slots. */
static void test_teams_decode_matches_full(struct th *t) {
    for (int teams = 2; teams <= 4; teams++) shared_prefix_decode(t, teams, teams == 3);
}

/* Items of different lengths and kinds scored together equal one at a time. */
static void test_packing_invariance(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    size_t n, nc;
    int32_t *ids = th_tensor_i32(fx.cases, "lm.input_ids", &n);
    int32_t *codes = th_tensor_i32(fx.cases, "gen.codes", &nc);
    struct tf_item items[3] = {
        {.context = ids, .n_context = 3, .kind = TF_TARGET_TOKENS, .target = ids + 3, .n_target = 9},
        {.context = ids + 12, .n_context = 2, .kind = TF_TARGET_CODES, .target = codes, .n_target = 20},
        {.context = ids + 12, .n_context = 7, .kind = TF_TARGET_TOKENS, .target = ids + 19, .n_target = 5},
    };
    float together[34], alone[34];
    struct dsr_err err;
    int rc = tf_logprobs(&fx.model, items, 3, together, &err);
    int off = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = tf_logprobs(&fx.model, &items[i], 1, alone + off, &err);
        off += items[i].n_target;
    }
    if (TH_CHECK(t, rc == 0, "tf: %s", err.msg)) TH_CLOSE(t, "packed vs alone", together, alone, 34, 1e-5);
    free(ids), free(codes);
    tiny_fixture_free(&fx);
}

static void test_rejects_bad_ids(struct th *t) {
    struct tiny_fixture fx;
    if (tiny_fixture_load(t, &fx)) return;
    int32_t ctx[3] = {256, 5, 6}, bad_tok[2] = {7, 320}, bad_code[2] = {3, 96}, img_ctx[2] = {256, 261};
    struct tf_item cases[3] = {
        {.context = ctx, .n_context = 3, .kind = TF_TARGET_TOKENS, .target = bad_tok, .n_target = 2},
        {.context = ctx, .n_context = 3, .kind = TF_TARGET_CODES, .target = bad_code, .n_target = 2},
        {.context = img_ctx, .n_context = 2, .kind = TF_TARGET_TOKENS, .target = ctx, .n_target = 2},
    };
    for (int i = 0; i < 3; i++) {
        float lp[2];
        struct dsr_err err = {{0}};
        TH_CHECK(t, tf_logprobs(&fx.model, &cases[i], 1, lp, &err) != 0 && err.msg[0], "case %d accepted", i);
    }
    tiny_fixture_free(&fx);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "lm_logits", test_lm_logits);
    th_run(&t, "lm_logits_bf16", test_lm_logits_bf16);
    th_run(&t, "lm_logprobs", test_lm_logprobs);
    th_run(&t, "gen_logits_and_reward", test_gen_logits_and_reward);
    th_run(&t, "kv_cache_decode_matches_full", test_kv_cache_decode_matches_full);
    th_run(&t, "shared_prefix_decode_matches_full", test_shared_prefix_decode_matches_full);
    th_run(&t, "teams_decode_matches_full", test_teams_decode_matches_full);
    th_run(&t, "packing_invariance", test_packing_invariance);
    th_run(&t, "rejects_bad_ids", test_rejects_bad_ids);
    return th_finish(&t, "test_lm");
}
