/* Samplers: greedy CFG image generation against the fixture, policy
 * log-probs equal a teacher-forced recomputation, reproducibility, and the
 * sampling distribution (temperature, top-k, top-p) itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "model/janus_model.h"
#include "janus/rollout.h"
#include "janus/teacher_forcing.h"

#define TINY "tests/fixtures/janus-tiny"
#define FIXTURE_BOI 259 /* fixtures/README: special ids */

static int load_model(struct th *t, struct janus_model *m) {
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, m, &err) == 0, "load: %s", err.msg)) return -1;
    m->cfg.boi_token_id = FIXTURE_BOI;
    return 0;
}

static void test_greedy_image_matches_fixture(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    struct st_file *cases = th_open_fixture("janus-tiny/cases.safetensors");
    size_t np, nc, nf;
    int32_t *prompt = th_tensor_i32(cases, "greedy_image.prompt_ids", &np);
    int32_t *want = th_tensor_i32(cases, "greedy_image.codes", &nc);
    float *first = th_tensor_f32(cases, "greedy_image.first_logits", &nf);
    float *scale = th_tensor_f32(cases, "greedy_image.guidance_scale", NULL);
    struct sampling_params p = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 1};
    struct image_group g;
    struct dsr_err err;
    /* a group of 3: every member is the same greedy image */
    if (TH_CHECK(t, sample_image_group(&m, prompt, (int)np, 3, scale[0], &p, &g, &err) == 0, "sample: %s",
                 err.msg)) {
        TH_CHECK(t, g.n_codes == (int)nc, "n_codes %d", g.n_codes);
        for (int s = 0; s < 3; s++) {
            int mismatches = 0;
            for (size_t i = 0; i < nc; i++) mismatches += g.codes[(size_t)s * nc + i] != want[i];
            TH_CHECK(t, mismatches == 0, "sample %d: %d codes differ from greedy_image.codes", s, mismatches);
        }
        TH_CLOSE(t, "greedy_image.first_logits", g.first_guided, first, nf, 1e-4);
        image_group_free(&g);
    }
    free(prompt), free(want), free(first), free(scale);
    st_close(cases);
    janus_model_free(&m);
}

static void test_image_logprobs_match_teacher_forcing(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    int32_t prompt[5] = {256, 30, 31, 32, FIXTURE_BOI};
    struct sampling_params p = {.temperature = 1.0f, .top_k = 0, .top_p = 1, .seed = 11};
    struct image_group g;
    struct dsr_err err;
    if (TH_CHECK(t, sample_image_group(&m, prompt, 5, 3, 3.0f, &p, &g, &err) == 0, "sample: %s", err.msg)) {
        struct tf_item items[3];
        for (int s = 0; s < 3; s++)
            items[s] = (struct tf_item){.context = prompt, .n_context = 5, .kind = TF_TARGET_CODES,
                                        .target = g.codes + (size_t)s * g.n_codes, .n_target = g.n_codes};
        float *lp = malloc((size_t)3 * g.n_codes * sizeof(float));
        if (TH_CHECK(t, tf_logprobs(&m, items, 3, lp, &err) == 0, "tf: %s", err.msg))
            TH_CLOSE(t, "image policy log-probs vs teacher forcing", g.logprobs, lp, (size_t)3 * g.n_codes, 1e-4);
        int distinct = memcmp(g.codes, g.codes + g.n_codes, (size_t)g.n_codes * sizeof(int32_t)) != 0;
        TH_CHECK(t, distinct, "two samples at temperature 1 are identical");
        free(lp);
        image_group_free(&g);
    }
    janus_model_free(&m);
}

/* CFG 1 runs the conditional rows only.  Against the two-branch path one
 * float step above 1 (guided logits within ~1e-7 of the conditional ones):
 * the same seeded samples, greedy and at temperature 1, and the policy
 * log-probs of both equal teacher forcing. */
static void test_cfg_one_skips_unconditional_branch(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    int32_t prompt[5] = {256, 30, 31, 32, FIXTURE_BOI};
    float scales[2] = {1.0f, nextafterf(1.0f, 2.0f)};
    for (int greedy = 0; greedy < 2; greedy++) {
        struct sampling_params p = {.temperature = greedy ? 0.0f : 1.0f, .top_k = 0, .top_p = 1, .seed = 5};
        struct image_group g[2];
        struct dsr_err err;
        int ok = 1;
        for (int i = 0; i < 2 && ok; i++)
            ok = TH_CHECK(t, sample_image_group(&m, prompt, 5, 4, scales[i], &p, &g[i], &err) == 0, "sample: %s",
                          err.msg);
        if (!ok) break;
        size_t n = (size_t)4 * g[0].n_codes;
        int differ = 0;
        for (size_t i = 0; i < n; i++) differ += g[0].codes[i] != g[1].codes[i];
        TH_CHECK(t, differ == 0, "%s: %d of %zu codes differ between CFG 1 and 1 + ulp", greedy ? "greedy" : "sampled",
                 differ, n);
        TH_CLOSE(t, "CFG 1 log-probs vs 1 + ulp", g[0].logprobs, g[1].logprobs, n, 1e-4);
        TH_CLOSE(t, "CFG 1 first guided logits vs 1 + ulp", g[0].first_guided, g[1].first_guided,
                 (size_t)m.gen.codebook_size, 1e-4);
        struct tf_item items[4];
        for (int s = 0; s < 4; s++)
            items[s] = (struct tf_item){.context = prompt, .n_context = 5, .kind = TF_TARGET_CODES,
                                        .target = g[0].codes + (size_t)s * g[0].n_codes, .n_target = g[0].n_codes};
        float *lp = malloc(n * sizeof(float));
        if (TH_CHECK(t, lp && tf_logprobs(&m, items, 4, lp, &err) == 0, "tf: %s", err.msg))
            TH_CLOSE(t, "CFG 1 policy log-probs vs teacher forcing", g[0].logprobs, lp, n, 1e-4);
        if (!greedy)
            TH_CHECK(t, memcmp(g[0].codes, g[0].codes + g[0].n_codes, (size_t)g[0].n_codes * sizeof(int32_t)) != 0,
                     "two samples at temperature 1 are identical");
        free(lp);
        image_group_free(&g[0]);
        image_group_free(&g[1]);
    }
    janus_model_free(&m);
}

/* Largest |rollout log-prob − teacher-forced log-prob| of an image group
 * sampled with the given KV cache (G = 3, CFG 3, temperature 1, seed 11). */
static int image_lp_gap(struct th *t, const struct janus_model *m, enum kv_dtype kv, double *gap) {
    int32_t prompt[5] = {256, 30, 31, 32, FIXTURE_BOI};
    struct sampling_params p = {.temperature = 1.0f, .top_k = 0, .top_p = 1, .seed = 11, .kv_dtype = kv};
    struct image_group g;
    struct dsr_err err;
    if (!TH_CHECK(t, sample_image_group(m, prompt, 5, 3, 3.0f, &p, &g, &err) == 0, "sample: %s", err.msg)) return -1;
    struct tf_item items[3];
    for (int s = 0; s < 3; s++)
        items[s] = (struct tf_item){.context = prompt, .n_context = 5, .kind = TF_TARGET_CODES,
                                    .target = g.codes + (size_t)s * g.n_codes, .n_target = g.n_codes};
    size_t n = (size_t)3 * g.n_codes;
    float *lp = malloc(n * sizeof(float));
    int rc = lp && tf_logprobs(m, items, 3, lp, &err) == 0 ? 0 : -1;
    *gap = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) *gap = fmax(*gap, fabs((double)g.logprobs[i] - lp[i]));
    TH_CHECK(t, rc == 0, "tf: %s", err.msg);
    free(lp);
    image_group_free(&g);
    return rc;
}

/* A BF16 KV cache (--kv-dtype bf16) rounds the keys and values the rollout
 * attends to: its log-probs leave the float32 teacher-forced ones by that
 * rounding (well above the float32 cache's float noise, well below a wrong
 * token's), and scoring is untouched (teacher forcing keeps float32). */
static void test_bf16_kv_cache(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    double gap_f32, gap_bf16;
    if (image_lp_gap(t, &m, KV_F32, &gap_f32) == 0 && image_lp_gap(t, &m, KV_BF16, &gap_bf16) == 0) {
        TH_CHECK(t, gap_f32 <= 1e-4, "float32 cache: rollout vs teacher forcing %g", gap_f32);
        TH_CHECK(t, gap_bf16 > 10 * gap_f32 && gap_bf16 > 1e-5 && gap_bf16 < 5e-2,
                 "BF16 cache: rollout vs teacher forcing %g (float32 cache: %g)", gap_bf16, gap_f32);
    }
    janus_model_free(&m);
}

static void test_text_logprobs_match_teacher_forcing(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    int32_t ctx[6] = {256, 40, 41, 42, 43, 44};
    struct sampling_params p = {.temperature = 1.0f, .top_k = 50, .top_p = 0.95f, .seed = 3};
    struct text_group g;
    struct dsr_err err;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = sample_text_group(&m, ctx, 6, NULL, 0, 4, 12, &p, &g, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (TH_CHECK(t, rc == 0, "sample: %s", err.msg)) {
        double call_s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        /* the prefill's time is part of the call's (bench_decode subtracts it) */
        TH_CHECK(t, g.prefill_s > 0 && g.prefill_s < call_s, "prefill %g s of a %g s call", g.prefill_s, call_s);
        for (int s = 0; s < 4; s++) {
            int L = g.lengths[s];
            TH_CHECK(t, L >= 1 && L <= 12, "length %d", L);
            int eos_inside = 0;
            for (int i = 0; i < L - 1; i++) eos_inside |= g.tokens[s * 12 + i] == m.cfg.text.eos_token_id;
            TH_CHECK(t, !eos_inside, "sample %d continues past EOS", s);
            struct tf_item it = {.context = ctx, .n_context = 6, .kind = TF_TARGET_TOKENS, .target = g.tokens + s * 12,
                                 .n_target = L};
            float lp[12];
            if (TH_CHECK(t, tf_logprobs(&m, &it, 1, lp, &err) == 0, "tf: %s", err.msg))
                TH_CLOSE(t, "text policy log-probs vs teacher forcing", g.logprobs + s * 12, lp, (size_t)L, 1e-4);
        }
        text_group_free(&g);
    }
    janus_model_free(&m);
}

static void test_reproducible(struct th *t) {
    struct janus_model m;
    if (load_model(t, &m)) return;
    int32_t ctx[4] = {256, 7, 8, 9};
    struct sampling_params p = {.temperature = 0.9f, .top_k = 0, .top_p = 1, .seed = 42};
    struct text_group a, b, c;
    struct dsr_err err;
    int rc = sample_text_group(&m, ctx, 4, NULL, 0, 5, 16, &p, &a, &err);
    rc = rc ? rc : sample_text_group(&m, ctx, 4, NULL, 0, 5, 16, &p, &b, &err);
    p.seed = 43;
    rc = rc ? rc : sample_text_group(&m, ctx, 4, NULL, 0, 5, 16, &p, &c, &err);
    if (TH_CHECK(t, rc == 0, "sample: %s", err.msg)) {
        TH_CHECK(t, memcmp(a.tokens, b.tokens, sizeof(int32_t) * 5 * 16) == 0 &&
                        memcmp(a.lengths, b.lengths, sizeof(int) * 5) == 0,
                 "same seed gave different groups");
        TH_CHECK(t, memcmp(a.tokens, c.tokens, sizeof(int32_t) * 5 * 16) != 0, "different seeds gave the same group");
        /* sample g of a group of 5 equals sample g of a group of 2: streams are per sample */
        struct text_group d;
        p.seed = 42;
        if (TH_CHECK(t, sample_text_group(&m, ctx, 4, NULL, 0, 2, 16, &p, &d, &err) == 0, "%s", err.msg)) {
            TH_CHECK(t, memcmp(a.tokens, d.tokens, sizeof(int32_t) * 2 * 16) == 0, "group size changed sample 0/1");
            text_group_free(&d);
        }
        text_group_free(&a), text_group_free(&b), text_group_free(&c);
    }
    janus_model_free(&m);
}

/* Empirical frequencies at one step match softmax(logits / T) within 5 sigma. */
static void test_sampling_distribution(struct th *t) {
    enum { V = 8, DRAWS = 40000 };
    float logits[V] = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.5f, 1.2f, 0.7f};
    struct sample_scratch s;
    struct dsr_err err;
    if (sample_scratch_init(&s, V, &err)) return;
    struct dsr_rng rng;
    rng_seed(&rng, 5);
    const float temps[2] = {1.0f, 0.5f};
    for (int ti = 0; ti < 2; ti++) {
        struct sampling_params p = {.temperature = temps[ti], .top_k = 0, .top_p = 1, .seed = 0};
        int counts[V] = {0};
        for (int d = 0; d < DRAWS; d++) counts[sample_token(logits, V, &p, &rng, &s)]++;
        double z = 0, e[V];
        for (int i = 0; i < V; i++) z += e[i] = exp(logits[i] / temps[ti]);
        for (int i = 0; i < V; i++) {
            double pi = e[i] / z, f = (double)counts[i] / DRAWS;
            double sigma = sqrt(pi * (1 - pi) / DRAWS);
            TH_CHECK(t, fabs(f - pi) < 5 * sigma + 1e-9, "T=%.1f token %d: freq %.4f vs p %.4f", temps[ti], i, f, pi);
        }
    }
    /* top-k = 3 keeps tokens 3, 6, 0 (the three largest logits) */
    struct sampling_params pk = {.temperature = 1.0f, .top_k = 3, .top_p = 1, .seed = 0};
    int bad = 0, seen[V] = {0};
    for (int d = 0; d < 5000; d++) {
        int tok = sample_token(logits, V, &pk, &rng, &s);
        seen[tok] = 1;
        bad += !(tok == 3 || tok == 6 || tok == 0);
    }
    TH_CHECK(t, bad == 0 && seen[3] && seen[6] && seen[0], "top-k emitted %d excluded tokens", bad);
    /* top-p = 0.5: sorted probs .367 (3), .172 (6), ... → keep {3, 6} */
    struct sampling_params pp = {.temperature = 1.0f, .top_k = 0, .top_p = 0.5f, .seed = 0};
    bad = 0;
    memset(seen, 0, sizeof seen);
    for (int d = 0; d < 5000; d++) {
        int tok = sample_token(logits, V, &pp, &rng, &s);
        seen[tok] = 1;
        bad += !(tok == 3 || tok == 6);
    }
    TH_CHECK(t, bad == 0 && seen[3] && seen[6], "top-p emitted %d excluded tokens", bad);
    /* greedy picks the argmax */
    struct sampling_params pg = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 0};
    TH_CHECK(t, sample_token(logits, V, &pg, &rng, &s) == 3, "greedy");
    sample_scratch_free(&s);
}

/* Reference for the draw: without a filter, by id; with one, sort every
 * candidate (probability descending, id ascending), cut to top-k, then to
 * the top-p nucleus of what is left (of the whole mass when there is no
 * top-k), draw in that order. */
static int cmp_ref(const void *a, const void *b) {
    const struct sample_candidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

static int reference_draw(const float *logits, int V, const struct sampling_params *p, struct dsr_rng *rng,
                          struct sample_candidate *c) {
    float inv_t = 1.0f / p->temperature, mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = fmaxf(mx, logits[i] * inv_t);
    double total = 0;
    for (int i = 0; i < V; i++) {
        c[i] = (struct sample_candidate){expf(logits[i] * inv_t - mx), i};
        total += c[i].p;
    }
    int use_k = p->top_k > 0 && p->top_k < V;
    if (use_k || p->top_p < 1.0f) qsort(c, (size_t)V, sizeof *c, cmp_ref);
    int keep = use_k ? p->top_k : V;
    if (p->top_p < 1.0f) {
        double kept_total = 0;
        for (int i = 0; i < keep; i++) kept_total += c[i].p;
        if (keep == V) kept_total = total; /* summed in id order, as the sampler does */
        double acc = 0;
        int n = 0;
        while (n < keep) {
            acc += c[n++].p;
            if (acc >= p->top_p * kept_total) break;
        }
        keep = n;
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) kept += c[i].p;
    double u = rng_uniform(rng) * kept, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[0].id;
}

/* The sampler selects only the candidates it needs (a heap of the top m);
 * its draws equal the full-sort reference's, token for token, over top-k and
 * top-p settings on a vocabulary with many tied logits. */
static void test_top_k_top_p_match_full_sort(struct th *t) {
    enum { V = 3000, DRAWS = 60 };
    float *logits = malloc(V * sizeof *logits);
    struct sample_candidate *ref = malloc(V * sizeof *ref);
    struct sample_scratch s;
    struct dsr_err err;
    if (!logits || !ref || sample_scratch_init(&s, V, &err)) return;
    struct dsr_rng g;
    rng_seed(&g, 77);
    for (int i = 0; i < V; i++) logits[i] = roundf((float)(rng_uniform(&g) * 24.0 - 12.0)) / 2; /* ties */
    const int ks[] = {0, 1, 7, 50, V - 1, V};
    const float ps[] = {1.0f, 0.999f, 0.9f, 0.5f, 0.05f};
    const float temps[] = {1.0f, 0.7f};
    int mismatches = 0, cases = 0;
    for (int ti = 0; ti < 2; ti++)
        for (int ki = 0; ki < 6; ki++)
            for (int pj = 0; pj < 5; pj++) {
                struct sampling_params p = {.temperature = temps[ti], .top_k = ks[ki], .top_p = ps[pj], .seed = 0};
                struct dsr_rng a, b;
                rng_seed(&a, 1000 + (uint64_t)cases);
                rng_seed(&b, 1000 + (uint64_t)cases);
                cases++;
                for (int d = 0; d < DRAWS; d++) {
                    int got = sample_token(logits, V, &p, &a, &s), want = reference_draw(logits, V, &p, &b, ref);
                    if (got != want && mismatches++ == 0)
                        TH_CHECK(t, 0, "T=%.1f top_k=%d top_p=%.3f draw %d: %d, reference %d", temps[ti], ks[ki],
                                 ps[pj], d, got, want);
                }
            }
    TH_CHECK(t, mismatches == 0, "%d of %d draws differ from the full sort", mismatches, cases * DRAWS);
    sample_scratch_free(&s);
    free(logits);
    free(ref);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "greedy_image_matches_fixture", test_greedy_image_matches_fixture);
    th_run(&t, "image_logprobs_match_teacher_forcing", test_image_logprobs_match_teacher_forcing);
    th_run(&t, "cfg_one_skips_unconditional_branch", test_cfg_one_skips_unconditional_branch);
    th_run(&t, "text_logprobs_match_teacher_forcing", test_text_logprobs_match_teacher_forcing);
    th_run(&t, "reproducible", test_reproducible);
    th_run(&t, "bf16_kv_cache", test_bf16_kv_cache);
    th_run(&t, "sampling_distribution", test_sampling_distribution);
    th_run(&t, "top_k_top_p_match_full_sort", test_top_k_top_p_match_full_sort);
    return th_finish(&t, "test_rollout");
}
