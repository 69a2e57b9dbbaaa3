/* Parameter arenas (core/model/params.h): every tensor starts on a 64-byte
 * boundary, tensors do not overlap, pt_count() reports the parameters
 * without the alignment gaps, and the gaps are zero after random init and
 * stay zero in the weights, gradients and AdamW state through a training
 * step of the tiny model. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/janus_model.h"
#include "model/params.h"
#include "train/train.h"

#define TINY "tests/fixtures/janus-tiny"

/* 1 where arena float i belongs to a tensor of that arena; NULL on OOM. */
static unsigned char *coverage(const struct param_table *pt, bool trainable) {
    size_t len = trainable ? pt->n_trainable : pt->n_frozen;
    unsigned char *used = calloc(len + 1, 1);
    if (!used) return NULL;
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (p->trainable == trainable) memset(used + p->offset, 1, p->numel);
    }
    return used;
}

/* Number of nonzero floats of arr[len] outside the tensors (used[i] == 0). */
static size_t nonzero_gaps(const float *arr, const unsigned char *used, size_t len) {
    size_t bad = 0;
    for (size_t i = 0; i < len; i++) bad += !used[i] && arr[i] != 0.0f;
    return bad;
}

/* Alignment, disjointness, counts; returns the number of gap floats. */
static size_t check_layout(struct th *t, const struct param_table *pt) {
    size_t numel[2] = {0, 0}, gaps = 0;
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        numel[p->trainable] += p->numel;
        TH_CHECK(t, (uintptr_t)pt_data(pt, p) % 64 == 0, "%s starts at %p, not on a 64-byte boundary", p->name,
                 (void *)pt_data(pt, p));
        TH_CHECK(t, p->offset + p->numel <= (p->trainable ? pt->n_trainable : pt->n_frozen), "%s ends past its arena",
                 p->name);
    }
    TH_CHECK(t, pt_count(pt, true) == numel[1], "pt_count(trainable) %zu, tensors hold %zu", pt_count(pt, true),
             numel[1]);
    TH_CHECK(t, pt_count(pt, false) == numel[0] + numel[1], "pt_count(all) %zu, tensors hold %zu", pt_count(pt, false),
             numel[0] + numel[1]);
    for (int tr = 0; tr < 2; tr++) {
        size_t len = tr ? pt->n_trainable : pt->n_frozen, covered = 0;
        unsigned char *used = coverage(pt, tr);
        if (!TH_CHECK(t, used != NULL, "out of memory")) continue;
        for (size_t i = 0; i < len; i++) covered += used[i];
        /* disjoint tensors cover exactly the sum of their sizes */
        TH_CHECK(t, covered == numel[tr], "%s tensors overlap: %zu floats covered, %zu declared",
                 tr ? "trainable" : "frozen", covered, numel[tr]);
        TH_CHECK(t, nonzero_gaps(tr ? pt->trainable : pt->frozen, used, len) == 0, "nonzero gap in the %s arena",
                 tr ? "trainable" : "frozen");
        gaps += len - covered;
        free(used);
    }
    return gaps;
}

static void test_declared_layout(struct th *t) {
    struct param_table pt;
    struct dsr_err err;
    pt_init(&pt);
    static const int64_t shapes[][2] = {{3, 1}, {17, 1}, {5, 7}, {16, 1}, {1, 1}, {33, 2}};
    for (int i = 0; i < 6; i++) {
        int ndim = shapes[i][1] == 1 ? 1 : 2;
        TH_CHECK(t, pt_declare(&pt, i % 3 != 1, ndim, shapes[i], &err, "t%d.weight", i) == 0, "%s", err.msg);
    }
    if (!TH_CHECK(t, pt_alloc(&pt, &err) == 0, "%s", err.msg)) return;
    pt_init_random(&pt, 5);
    TH_CHECK(t, pt_count(&pt, false) == 3 + 17 + 35 + 16 + 1 + 66, "pt_count %zu", pt_count(&pt, false));
    TH_CHECK(t, check_layout(t, &pt) > 0, "odd sizes left no gaps: the test would not see padding");
    TH_CHECK(t, pt_declare(&pt, true, 1, shapes[0], &err, "late") != 0, "pt_declare after pt_alloc accepted");
    pt_free(&pt);

    /* an empty table still allocates valid arenas */
    pt_init(&pt);
    TH_CHECK(t, pt_alloc(&pt, &err) == 0 && pt.trainable && pt.frozen, "empty table: %s", err.msg);
    TH_CHECK(t, pt_count(&pt, false) == 0, "empty table counts %zu", pt_count(&pt, false));
    pt_free(&pt);
}

/* A real model: layout, and the gaps stay zero through backward + AdamW
 * (weight decay on) in the weights, the gradient and both moments. */
static void test_gaps_through_a_step(struct th *t) {
    struct janus_model m;
    struct trainer tr;
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "%s", err.msg)) return;
    TH_CHECK(t, check_layout(t, &m.params) > 0, "the tiny model has no alignment gaps");
    if (TH_CHECK(t, trainer_init(&tr, &m, 0, &err) == 0, "%s", err.msg)) {
        int32_t ctx[3] = {256, 10, 11}, comp[4] = {50, 51, 52, 53};
        const float old[4] = {-5.5f, -5.9f, -5.6f, -5.8f};
        struct train_sample s = {.kind = TF_TARGET_TOKENS, .context = ctx, .n_context = 3, .completion = comp,
                                 .n_completion = 4, .advantage = 1.0f, .old_logprobs = old};
        struct grpo_hyper gh = {.epsilon = 0.2f, .epsilon_high = 0.28f};
        struct adamw_hyper ah = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
        struct train_stats st;
        TH_CHECK(t, trainer_grpo_backward(&tr, &m, &s, 1, &gh, &st, &err) == 0 &&
                        trainer_step(&tr, &m, &ah, &st, &err) == 0,
                 "%s", err.msg);
        unsigned char *used = coverage(&m.params, true);
        if (TH_CHECK(t, used != NULL, "out of memory")) {
            size_t n = m.params.n_trainable;
            TH_CHECK(t, nonzero_gaps(m.params.trainable, used, n) == 0, "weights: nonzero gaps after a step");
            TH_CHECK(t, nonzero_gaps(tr.grad, used, n) == 0, "gradient: nonzero gaps");
            TH_CHECK(t, nonzero_gaps(tr.adam_m, used, n) == 0 && nonzero_gaps(tr.adam_v, used, n) == 0,
                     "AdamW moments: nonzero gaps");
            free(used);
        }
        trainer_free(&tr);
    }
    janus_model_free(&m);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "declared_layout", test_declared_layout);
    th_run(&t, "gaps_through_a_step", test_gaps_through_a_step);
    return th_finish(&t, "test_params");
}
