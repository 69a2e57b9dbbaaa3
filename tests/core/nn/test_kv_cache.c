/* The KV cache's BF16 storage (nn/kv_cache.h) against float32 storage.
 *
 *   rows       kv_cache_rows returns exactly what was written (float32) or its
 *              round-to-nearest-even BF16 value (BF16), per slot, layer, head
 *              and position;
 *   attention  attention_forward over a BF16 cache equals, bit for bit, the
 *              same call over a float32 cache holding the BF16-rounded keys
 *              and values: a 130-row prefill (the sgemm path), a group of 12
 *              decode rows reading that prefill as a shared prefix (8-row
 *              block + leftovers), a slot of its own (short path), over two
 *              steps; and it differs from the unrounded cache by rounding
 *              only (close, not equal);
 *   bytes      a BF16 cache takes half the bytes;
 *   shared     a kv_cache_init_shared cache (2 prefix slots, 3 members that
 *              store only the positions after the prefix) gives attention the
 *              same bits as a whole-length cache holding the same values,
 *              over a prefill and three decode steps; it takes the bytes of
 *              its layout; it refuses a member continuing from a prefix of
 *              another length, a member as a prefix, and bad layouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/bf16.h"
#include "base/rng.h"
#include "nn/attention.h"
#include "nn/kv_cache.h"

#define N_LAYERS 2
#define N_HEADS 4
#define N_KV_HEADS 2
#define HEAD_DIM 20 /* not a multiple of 8: the kernels' tails run */
#define KV_DIM (N_KV_HEADS * HEAD_DIM)
#define Q_DIM (N_HEADS * HEAD_DIM)
#define PREFILL 130 /* >= the sgemm threshold (attention.c) */
#define SHARERS 12  /* slots reading slot 0's prefill */
#define OWN_SLOT SHARERS
#define N_SLOTS (SHARERS + 1)
#define MAX_LEN (PREFILL + 4)

static void fill(struct dsr_rng *r, float *p, size_t count) {
    for (size_t i = 0; i < count; i++) p[i] = (float)(rng_uniform(r) * 4.0 - 2.0);
}

static void round_bf16(float *dst, const float *src, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = bf16_to_f32(f32_to_bf16(src[i]));
}

/* The three caches of the test: raw values in float32 and in BF16, and the
 * BF16-rounded values in float32. */
struct caches {
    struct kv_cache raw, bf16, rounded;
};

static int caches_init(struct caches *c, struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    return kv_cache_init(&c->raw, N_SLOTS, N_LAYERS, MAX_LEN, N_KV_HEADS, HEAD_DIM, KV_F32, err) ||
           kv_cache_init(&c->bf16, N_SLOTS, N_LAYERS, MAX_LEN, N_KV_HEADS, HEAD_DIM, KV_BF16, err) ||
           kv_cache_init(&c->rounded, N_SLOTS, N_LAYERS, MAX_LEN, N_KV_HEADS, HEAD_DIM, KV_F32, err);
}

static void caches_free(struct caches *c) {
    kv_cache_free(&c->raw);
    kv_cache_free(&c->bf16);
    kv_cache_free(&c->rounded);
}

/* n rows of random keys and values at slot's current length, every layer. */
static void caches_write(struct caches *c, struct dsr_rng *r, int slot, int n) {
    size_t count = (size_t)n * KV_DIM;
    float *k = malloc(count * sizeof *k), *v = malloc(count * sizeof *v);
    float *kr = malloc(count * sizeof *kr), *vr = malloc(count * sizeof *vr);
    if (k && v && kr && vr)
        for (int l = 0; l < N_LAYERS; l++) {
            fill(r, k, count);
            fill(r, v, count);
            round_bf16(kr, k, count);
            round_bf16(vr, v, count);
            kv_cache_write(&c->raw, slot, l, c->raw.len[slot], k, v, n);
            kv_cache_write(&c->bf16, slot, l, c->bf16.len[slot], k, v, n);
            kv_cache_write(&c->rounded, slot, l, c->rounded.len[slot], kr, vr, n);
        }
    free(k), free(v), free(kr), free(vr);
}

static void caches_advance(struct caches *c, int slot, int n) {
    c->raw.len[slot] += n;
    c->bf16.len[slot] += n;
    c->rounded.len[slot] += n;
}

/* attention_forward of random queries over the three caches: BF16 must equal
 * the rounded float32 cache bit for bit and the raw one within rounding. */
static void check_attention(struct th *t, struct caches *c, struct dsr_rng *r, const struct lm_segment *segs,
                            int n_segs, const char *what) {
    int T = 0;
    for (int s = 0; s < n_segs; s++) T += segs[s].n;
    size_t count = (size_t)T * Q_DIM;
    float *q = malloc(count * sizeof *q);
    float *o_raw = malloc(count * sizeof *o_raw), *o_bf16 = malloc(count * sizeof *o_bf16);
    float *o_rounded = malloc(count * sizeof *o_rounded);
    if (!TH_CHECK(t, q && o_raw && o_bf16 && o_rounded, "out of memory")) goto done;
    fill(r, q, count);
    for (int l = 0; l < N_LAYERS; l++) {
        struct dsr_err err = {{0}};
        int rc = attention_forward(q, &c->raw, l, segs, n_segs, N_HEADS, N_KV_HEADS, HEAD_DIM, o_raw, &err);
        rc = rc ? rc : attention_forward(q, &c->bf16, l, segs, n_segs, N_HEADS, N_KV_HEADS, HEAD_DIM, o_bf16, &err);
        rc = rc ? rc
                : attention_forward(q, &c->rounded, l, segs, n_segs, N_HEADS, N_KV_HEADS, HEAD_DIM, o_rounded, &err);
        if (!TH_CHECK(t, rc == 0, "%s: %s", what, err.msg)) goto done;
        TH_CHECK(t, memcmp(o_bf16, o_rounded, count * sizeof *o_bf16) == 0,
                 "%s, layer %d: BF16 cache differs from float32 storage of the rounded values", what, l);
        double max_diff = 0, max_abs = 0;
        for (size_t i = 0; i < count; i++) {
            max_diff = fmax(max_diff, fabs((double)o_bf16[i] - o_raw[i]));
            max_abs = fmax(max_abs, fabs((double)o_raw[i]));
        }
        /* values in [-2, 2] rounded to 8 bits: a few 1e-3 of the scale */
        TH_CHECK(t, max_diff > 0 && max_diff <= 2e-2 * max_abs, "%s, layer %d: BF16 vs float32 max diff %g (max %g)",
                 what, l, max_diff, max_abs);
    }
done:
    free(q), free(o_raw), free(o_bf16), free(o_rounded);
}

static void test_rows(struct th *t) {
    struct caches c;
    struct dsr_err err = {{0}};
    struct dsr_rng r;
    rng_seed(&r, 7);
    if (!TH_CHECK(t, caches_init(&c, &err) == 0, "init: %s", err.msg)) {
        caches_free(&c);
        return;
    }
    caches_write(&c, &r, 3, 5);
    float buf[4 * HEAD_DIM];
    int same_rounded = 1, raw_differs = 0;
    for (int l = 0; l < N_LAYERS; l++)
        for (int h = 0; h < N_KV_HEADS; h++)
            for (int part = KV_KEYS; part <= KV_VALUES; part++) {
                /* positions 1..4: an offset range */
                const float *b = kv_cache_rows(&c.bf16, (enum kv_part)part, 3, l, h, 1, 5, buf);
                const float *f = kv_cache_rows(&c.rounded, (enum kv_part)part, 3, l, h, 1, 5, NULL);
                const float *w = kv_cache_rows(&c.raw, (enum kv_part)part, 3, l, h, 1, 5, NULL);
                TH_CHECK(t, b == buf, "a BF16 cache must widen into the caller's buffer");
                same_rounded &= memcmp(b, f, sizeof buf) == 0;
                raw_differs |= memcmp(b, w, sizeof buf) != 0;
            }
    TH_CHECK(t, same_rounded, "BF16 rows are not the rounded values written");
    TH_CHECK(t, raw_differs, "BF16 rows equal unrounded float32 values: nothing was rounded");
    TH_CHECK(t, kv_cache_bytes(N_SLOTS, N_LAYERS, MAX_LEN, KV_DIM, KV_BF16) * 2 ==
                    kv_cache_bytes(N_SLOTS, N_LAYERS, MAX_LEN, KV_DIM, KV_F32),
             "a BF16 cache must take half the bytes");
    struct kv_cache bad;
    TH_CHECK(t, kv_cache_init(&bad, 1, 1, 4, 1, 8, (enum kv_dtype)7, &err) != 0 && err.msg[0],
             "an unknown element type was accepted");
    caches_free(&c);
}

static void test_attention(struct th *t) {
    struct caches c;
    struct dsr_err err = {{0}};
    struct dsr_rng r;
    rng_seed(&r, 11);
    if (!TH_CHECK(t, caches_init(&c, &err) == 0, "init: %s", err.msg)) {
        caches_free(&c);
        return;
    }
    /* the prefill of slot 0 (sgemm path) and a 3-row sequence of its own */
    caches_write(&c, &r, 0, PREFILL);
    caches_write(&c, &r, OWN_SLOT, 3);
    struct lm_segment pre[2] = {{.slot = 0, .n = PREFILL}, {.slot = OWN_SLOT, .n = 3}};
    check_attention(t, &c, &r, pre, 2, "prefill");
    caches_advance(&c, 0, PREFILL);
    caches_advance(&c, OWN_SLOT, 3);
    for (int s = 1; s < SHARERS; s++) {
        int rc = kv_cache_share_prefix(&c.raw, s, 0, &err) || kv_cache_share_prefix(&c.bf16, s, 0, &err) ||
                 kv_cache_share_prefix(&c.rounded, s, 0, &err);
        if (!TH_CHECK(t, rc == 0, "share: %s", err.msg)) {
            caches_free(&c);
            return;
        }
    }
    /* two decode steps: one row per sharer (a group of 12) and two rows of
     * the slot of its own */
    for (int step = 0; step < 2; step++) {
        struct lm_segment segs[N_SLOTS];
        for (int s = 0; s < SHARERS; s++) {
            caches_write(&c, &r, s, 1);
            segs[s] = (struct lm_segment){.slot = s, .n = 1};
        }
        caches_write(&c, &r, OWN_SLOT, 2);
        segs[OWN_SLOT] = (struct lm_segment){.slot = OWN_SLOT, .n = 2};
        check_attention(t, &c, &r, segs, N_SLOTS, step == 0 ? "decode step 1" : "decode step 2");
        for (int s = 0; s < SHARERS; s++) caches_advance(&c, s, 1);
        caches_advance(&c, OWN_SLOT, 2);
    }
    caches_free(&c);
}

/* The same n random rows at slot's current length in both caches (float32),
 * every layer; the lengths advance. */
static void write_both(struct kv_cache *a, struct kv_cache *b, struct dsr_rng *r, int slot, int n) {
    size_t count = (size_t)n * KV_DIM;
    float *k = malloc(count * sizeof *k), *v = malloc(count * sizeof *v);
    if (k && v)
        for (int l = 0; l < N_LAYERS; l++) {
            fill(r, k, count);
            fill(r, v, count);
            kv_cache_write(a, slot, l, a->len[slot], k, v, n);
            kv_cache_write(b, slot, l, b->len[slot], k, v, n);
        }
    a->len[slot] += n;
    b->len[slot] += n;
    free(k), free(v);
}

enum { SH_SLOTS = 5, SH_ROOTS = 2 };

static void test_shared(struct th *t) {
    struct kv_cache whole = {0}, shared = {0};
    struct dsr_err err = {{0}};
    struct dsr_rng r;
    rng_seed(&r, 13);
    int rc = kv_cache_init(&whole, SH_SLOTS, N_LAYERS, MAX_LEN, N_KV_HEADS, HEAD_DIM, KV_F32, &err) ||
             kv_cache_init_shared(&shared, SH_SLOTS, SH_ROOTS, PREFILL, N_LAYERS, MAX_LEN, N_KV_HEADS, HEAD_DIM,
                                  KV_F32, &err);
    if (!TH_CHECK(t, rc == 0, "init: %s", err.msg)) goto done;
    size_t want = 2 * (size_t)(SH_ROOTS * MAX_LEN + (SH_SLOTS - SH_ROOTS) * (MAX_LEN - PREFILL)) * N_LAYERS * KV_DIM *
                  sizeof(float);
    TH_CHECK(t, kv_cache_storage_bytes(&shared) == want, "shared cache: %zu bytes, layout says %zu",
             kv_cache_storage_bytes(&shared), want);
    TH_CHECK(t, kv_cache_storage_bytes(&whole) == kv_cache_bytes(SH_SLOTS, N_LAYERS, MAX_LEN, KV_DIM, KV_F32),
             "whole-length cache: storage bytes disagree with kv_cache_bytes");
    TH_CHECK(t, kv_cache_first_position(&shared, 1) == 0 && kv_cache_first_position(&shared, 2) == PREFILL &&
                    kv_cache_first_position(&whole, 4) == 0,
             "first positions");

    /* a member cannot be a prefix, nor continue from a shorter one */
    write_both(&whole, &shared, &r, 1, 5);
    TH_CHECK(t, kv_cache_share_prefix(&shared, 3, 1, &err) != 0 && strstr(err.msg, "slot 3"),
             "a member continued from a 5-position prefix: %s", err.msg);
    TH_CHECK(t, kv_cache_share_prefix(&shared, 2, 4, &err) != 0, "a member slot accepted as a prefix");
    write_both(&whole, &shared, &r, 1, PREFILL - 5);
    write_both(&whole, &shared, &r, 0, PREFILL);
    /* members 2, 4 read slot 0's prefix, member 3 slot 1's */
    static const int root_of[SH_SLOTS] = {0, 1, 0, 1, 0};
    for (int s = SH_ROOTS; s < SH_SLOTS; s++) {
        rc = kv_cache_share_prefix(&whole, s, root_of[s], &err) || kv_cache_share_prefix(&shared, s, root_of[s], &err);
        if (!TH_CHECK(t, rc == 0, "share: %s", err.msg)) goto done;
    }
    float *q = malloc((size_t)2 * SH_SLOTS * Q_DIM * sizeof *q);
    float *o_whole = malloc((size_t)2 * SH_SLOTS * Q_DIM * sizeof *o_whole);
    float *o_shared = malloc((size_t)2 * SH_SLOTS * Q_DIM * sizeof *o_shared);
    for (int step = 0; step < 3 && q && o_whole && o_shared; step++) {
        /* every slot one new row, slot 3 two at the first step (MAX_LEN
         * leaves 4 positions after the prefix) */
        struct lm_segment segs[SH_SLOTS];
        int T = 0;
        for (int s = 0; s < SH_SLOTS; s++) {
            int n = s == 3 && step == 0 ? 2 : 1;
            write_both(&whole, &shared, &r, s, n);
            whole.len[s] -= n, shared.len[s] -= n; /* attention reads rows already written at len .. len+n-1 */
            segs[s] = (struct lm_segment){.slot = s, .n = n};
            T += n;
        }
        fill(&r, q, (size_t)T * Q_DIM);
        for (int l = 0; l < N_LAYERS; l++) {
            rc = attention_forward(q, &whole, l, segs, SH_SLOTS, N_HEADS, N_KV_HEADS, HEAD_DIM, o_whole, &err) ||
                 attention_forward(q, &shared, l, segs, SH_SLOTS, N_HEADS, N_KV_HEADS, HEAD_DIM, o_shared, &err);
            if (!TH_CHECK(t, rc == 0, "attention: %s", err.msg)) break;
            TH_CHECK(t, memcmp(o_whole, o_shared, (size_t)T * Q_DIM * sizeof *o_whole) == 0,
                     "step %d, layer %d: the shared layout changes attention", step, l);
        }
        for (int s = 0; s < SH_SLOTS; s++) whole.len[s] += segs[s].n, shared.len[s] += segs[s].n;
    }
    free(q), free(o_whole), free(o_shared);
    struct kv_cache bad;
    TH_CHECK(t, kv_cache_init_shared(&bad, 3, 0, 2, 1, 4, 1, 8, KV_F32, &err) != 0 && err.msg[0], "no prefix slot");
    TH_CHECK(t, kv_cache_init_shared(&bad, 3, 4, 2, 1, 4, 1, 8, KV_F32, &err) != 0, "more prefix slots than slots");
    TH_CHECK(t, kv_cache_init_shared(&bad, 3, 1, 4, 1, 4, 1, 8, KV_F32, &err) != 0, "prefix as long as the cache");
done:
    kv_cache_free(&whole);
    kv_cache_free(&shared);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "rows", test_rows);
    th_run(&t, "attention", test_attention);
    th_run(&t, "shared", test_shared);
    return th_finish(&t, "test_kv_cache");
}
