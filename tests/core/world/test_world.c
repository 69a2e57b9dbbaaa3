/* The shapes world (core/world): the sampler obeys every placement rule of
 * shared/WORLD.md, the renderer matches an independent floating-point
 * rasteriser, the detector is exact on thousands of clean renders, the
 * grader accepts equivalent captions and rejects single-attribute changes,
 * and the parser holds to the grammar. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "world/world.h"

#define N_SCENES 3000
#define SEED 1234

/* Independent reference: does pixel (x, y) belong to object o, in doubles. */
static bool ref_covers(const struct world_object *o, int x, int y) {
    double px = x + 0.5, py = y + 0.5, s = o->size, cx = o->x0 + s / 2, cy = o->y0 + s / 2;
    if (o->shape == WORLD_SQUARE) return px > o->x0 && px < o->x0 + s && py > o->y0 && py < o->y0 + s;
    if (o->shape == WORLD_CIRCLE) return hypot(px - cx, py - cy) <= s / 2;
    if (py < o->y0 || py > o->y0 + s) return false;
    return fabs(px - cx) <= (py - o->y0) / s * (s / 2);
}

static double centre_x(const struct world_object *o) { return o->x0 + o->size / 2.0; }
static double centre_y(const struct world_object *o) { return o->y0 + o->size / 2.0; }

static bool gap_ok(const struct world_object *a, const struct world_object *b) {
    return a->x0 + a->size + 3 <= b->x0 || b->x0 + b->size + 3 <= a->x0 || a->y0 + a->size + 3 <= b->y0 ||
           b->y0 + b->size + 3 <= a->y0;
}

static void test_sampler_rules(struct th *t) {
    int kinds[WORLD_N_KINDS] = {0}, bad = 0;
    for (int i = 0; i < N_SCENES; i++) {
        struct world_scene s;
        world_sample_indexed(SEED, (uint64_t)i, -1, &s);
        kinds[s.kind]++;
        for (int k = 0; k < s.n_objects; k++) {
            const struct world_object *o = &s.obj[k];
            bad += o->size < 14 || o->size > 18 || o->x0 < 1 || o->y0 < 1 || o->x0 + o->size > 63 ||
                   o->y0 + o->size > 63;
            for (int j = k + 1; j < s.n_objects; j++) bad += !gap_ok(o, &s.obj[j]);
        }
        const struct world_object *a = &s.obj[0], *b = &s.obj[1];
        double x = centre_x(a), y = centre_y(a);
        if (s.kind == WORLD_POSITION) {
            static const double R[WORLD_N_WHERE][4] = {
                {10, 22, 22, 42}, {42, 54, 22, 42}, {22, 42, 10, 22}, {22, 42, 42, 54}, {28, 36, 28, 36}};
            const double *r = R[s.where];
            bad += s.n_objects != 1 || x < r[0] || x > r[1] || y < r[2] || y > r[3];
        } else if (s.kind == WORLD_RELATION) {
            double dx = centre_x(b) - x, dy = centre_y(b) - y;
            bool ok = s.rel == WORLD_LEFT_OF    ? dx >= 20 && fabs(dy) <= 10
                      : s.rel == WORLD_RIGHT_OF ? -dx >= 20 && fabs(dy) <= 10
                      : s.rel == WORLD_ABOVE    ? dy >= 20 && fabs(dx) <= 10
                                                : -dy >= 20 && fabs(dx) <= 10;
            bad += s.n_objects != 2 || !ok || (a->colour == b->colour && a->shape == b->shape);
        } else {
            bad += s.n_objects < 2 || s.n_objects > 3;
            for (int k = 1; k < s.n_objects; k++) bad += s.obj[k].colour != a->colour || s.obj[k].shape != a->shape;
        }
    }
    TH_CHECK(t, bad == 0, "%d placement rule violations in %d scenes", bad, N_SCENES);
    for (int k = 0; k < WORLD_N_KINDS; k++)
        TH_CHECK(t, abs(kinds[k] - N_SCENES / 3) < N_SCENES / 20, "kind %d drawn %d times of %d", k, kinds[k],
                 N_SCENES);
}

static void test_sampler_deterministic(struct th *t) {
    struct world_scene a, b, c;
    world_sample_indexed(7, 42, -1, &a);
    world_sample_indexed(7, 42, -1, &b);
    world_sample_indexed(7, 43, -1, &c);
    TH_CHECK(t, memcmp(&a, &b, sizeof a) == 0, "same seed and index give different scenes");
    TH_CHECK(t, memcmp(&a, &c, sizeof a) != 0, "neighbouring indices give the same scene");
    world_sample_indexed(7, 42, WORLD_COUNTING, &a);
    TH_CHECK(t, a.kind == WORLD_COUNTING, "kind request ignored");
}

static void test_render_matches_reference(struct th *t) {
    uint8_t rgb[WORLD_BYTES];
    int bad = 0;
    for (int i = 0; i < 500; i++) {
        struct world_scene s;
        world_sample_indexed(SEED, (uint64_t)i, -1, &s);
        world_render(&s, rgb);
        for (int y = 0; y < WORLD_SIZE; y++)
            for (int x = 0; x < WORLD_SIZE; x++) {
                uint8_t want[3] = {16, 16, 16};
                for (int k = 0; k < s.n_objects; k++)
                    if (ref_covers(&s.obj[k], x, y)) world_colour_rgb(s.obj[k].colour, want);
                bad += memcmp(rgb + 3 * (y * WORLD_SIZE + x), want, 3) != 0;
            }
    }
    TH_CHECK(t, bad == 0, "%d pixels differ from the floating-point rasteriser", bad);
}

static void test_detector_exact(struct th *t) {
    uint8_t rgb[WORLD_BYTES];
    int wrong_types = 0, wrong_caption = 0, wrong_centre = 0;
    for (int i = 0; i < N_SCENES; i++) {
        struct world_scene s;
        struct world_detection d;
        struct world_claim c;
        char cap[WORLD_CAPTION_MAX];
        world_sample_indexed(SEED + 1, (uint64_t)i, -1, &s);
        world_render(&s, rgb);
        TH_CHECK(t, world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d) == 0, "detect failed");
        world_scene_claim(&s, &c);
        /* types (and, for single objects, the centre of squares and circles:
         * symmetric shapes whose pixel mean is the box centre) */
        wrong_types += d.n_objects != s.n_objects || !world_check(&c, &d);
        if (s.n_objects == 1 && s.obj[0].shape != WORLD_TRIANGLE && d.n_objects == 1)
            wrong_centre += fabs(d.obj[0].cx - centre_x(&s.obj[0])) > 1e-9 ||
                            fabs(d.obj[0].cy - centre_y(&s.obj[0])) > 1e-9;
        int n = world_caption(&s, cap, sizeof cap);
        wrong_caption += n < 0 || !world_grade(cap, (size_t)n, &d);
    }
    TH_CHECK(t, wrong_types == 0, "detector wrong on %d of %d clean renders", wrong_types, N_SCENES);
    TH_CHECK(t, wrong_caption == 0, "caption rejected on %d of %d clean renders", wrong_caption, N_SCENES);
    TH_CHECK(t, wrong_centre == 0, "%d symmetric shapes with an off centre", wrong_centre);
}

static bool grade_str(const char *cap, const struct world_detection *d) { return world_grade(cap, strlen(cap), d); }

/* Counts a perturbed caption the grader accepted, showing the first few. */
static int accepted(const char *truth, const char *perturbed, const struct world_detection *d, int *shown) {
    if (!grade_str(perturbed, d)) return 0;
    if ((*shown)++ < 3) fprintf(stderr, "  accepted \"%s\" for a scene of \"%s\"\n", perturbed, truth);
    return 1;
}

/* world_mismatch_of names the attribute a one-attribute change of the claim
 * breaks, on clean renders of every kind (the claim is changed, the image
 * is the scene's). */
static void test_mismatch(struct th *t) {
    static const int OPPOSITE_REL[WORLD_N_REL] = {WORLD_RIGHT_OF, WORLD_LEFT_OF, WORLD_BELOW, WORLD_ABOVE};
    static const int OPPOSITE_WHERE[WORLD_N_WHERE] = {WORLD_RIGHT, WORLD_LEFT, WORLD_BOTTOM, WORLD_TOP, WORLD_LEFT};
    uint8_t rgb[WORLD_BYTES];
    int wrong[WORLD_N_MISMATCH] = {0}, tried[WORLD_N_MISMATCH] = {0};
    for (int i = 0; i < 300; i++) {
        struct world_scene s;
        struct world_detection d;
        struct world_claim truth, c;
        world_sample_indexed(SEED + 5, (uint64_t)i, -1, &s);
        world_render(&s, rgb);
        world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
        world_scene_claim(&s, &truth);
        c = truth; /* a colour no object of the scene has */
        int colour = 0;
        for (bool used = true; used; colour++) {
            used = false;
            for (int k = 0; k < s.n_objects; k++) used |= s.obj[k].colour == colour;
        }
        c.colour[0] = colour - 1;
        if (s.kind == WORLD_COUNTING)
            for (int k = 1; k < c.n_objects; k++) c.colour[k] = c.colour[0];
        tried[WORLD_MISMATCH_COLOUR]++;
        wrong[WORLD_MISMATCH_COLOUR] += world_check(&c, &d) || world_mismatch_of(&c, &d) != WORLD_MISMATCH_COLOUR;
        c = truth; /* object 0 another shape: its colour stays, its type changes */
        c.shape[0] = (c.shape[0] + 1) % WORLD_N_SHAPES;
        if (s.kind == WORLD_COUNTING)
            for (int k = 1; k < c.n_objects; k++) c.shape[k] = c.shape[0];
        bool other_is_it = s.kind == WORLD_RELATION && c.colour[1] == c.colour[0] && c.shape[1] == c.shape[0];
        if (!other_is_it) { /* else the claim names one type twice: not a one-attribute change */
            tried[WORLD_MISMATCH_SHAPE]++;
            wrong[WORLD_MISMATCH_SHAPE] += world_check(&c, &d) || world_mismatch_of(&c, &d) != WORLD_MISMATCH_SHAPE;
        }
        c = truth;
        if (s.kind == WORLD_COUNTING) {
            c.n_objects = 5 - c.n_objects;
            c.colour[2] = c.colour[0], c.shape[2] = c.shape[0];
            tried[WORLD_MISMATCH_COUNT]++;
            wrong[WORLD_MISMATCH_COUNT] += world_check(&c, &d) || world_mismatch_of(&c, &d) != WORLD_MISMATCH_COUNT;
        } else {
            if (s.kind == WORLD_POSITION) c.where = OPPOSITE_WHERE[c.where];
            else c.rel = OPPOSITE_REL[c.rel];
            tried[WORLD_MISMATCH_SPATIAL]++;
            wrong[WORLD_MISMATCH_SPATIAL] +=
                world_check(&c, &d) || world_mismatch_of(&c, &d) != WORLD_MISMATCH_SPATIAL;
        }
    }
    for (int k = 0; k < WORLD_N_MISMATCH; k++)
        TH_CHECK(t, tried[k] > 20 && wrong[k] == 0, "%s: %d of %d changed claims misattributed",
                 world_mismatch_name(k), wrong[k], tried[k]);
    TH_CHECK(t, world_mismatch_name(-1) == NULL && world_mismatch_name(WORLD_N_MISMATCH) == NULL,
             "out-of-range mismatch names");
}

static void test_equivalent_and_perturbed(struct th *t) {
    static const int OPPOSITE_REL[WORLD_N_REL] = {WORLD_RIGHT_OF, WORLD_LEFT_OF, WORLD_BELOW, WORLD_ABOVE};
    static const int OPPOSITE_WHERE[WORLD_N_WHERE] = {WORLD_RIGHT, WORLD_LEFT, WORLD_BOTTOM, WORLD_TOP, WORLD_LEFT};
    uint8_t rgb[WORLD_BYTES];
    int swapped_rejected = 0, accepted_perturbed = 0, perturbations = 0, shown = 0;
    for (int i = 0; i < 1500; i++) {
        struct world_scene s, p;
        struct world_detection d;
        char cap[WORLD_CAPTION_MAX], alt[WORLD_CAPTION_MAX];
        world_sample_indexed(SEED + 2, (uint64_t)i, -1, &s);
        world_render(&s, rgb);
        world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
        world_caption(&s, cap, sizeof cap);
        if (s.kind == WORLD_RELATION) { /* "B {opposite} A" says the same */
            p = s;
            p.obj[0] = s.obj[1], p.obj[1] = s.obj[0], p.rel = OPPOSITE_REL[s.rel];
            world_caption(&p, alt, sizeof alt);
            swapped_rejected += !grade_str(alt, &d);
        }
        /* single-attribute changes, each always false on this scene */
        for (int k = 0; k < (s.kind == WORLD_RELATION ? 2 : 1); k++) {
            p = s;
            p.obj[k].colour = (s.obj[k].colour + 1 + i % (WORLD_N_COLOURS - 1)) % WORLD_N_COLOURS;
            if (s.kind == WORLD_COUNTING)
                for (int j = 1; j < s.n_objects; j++) p.obj[j].colour = p.obj[0].colour;
            world_caption(&p, alt, sizeof alt);
            accepted_perturbed += accepted(cap, alt, &d, &shown), perturbations++;
            p = s;
            p.obj[k].shape = (s.obj[k].shape + 1 + i % 2) % WORLD_N_SHAPES;
            if (s.kind == WORLD_COUNTING)
                for (int j = 1; j < s.n_objects; j++) p.obj[j].shape = p.obj[0].shape;
            world_caption(&p, alt, sizeof alt);
            accepted_perturbed += accepted(cap, alt, &d, &shown), perturbations++;
        }
        p = s;
        if (s.kind == WORLD_POSITION) p.where = OPPOSITE_WHERE[s.where];
        if (s.kind == WORLD_RELATION) p.rel = OPPOSITE_REL[s.rel];
        if (s.kind == WORLD_COUNTING) p.n_objects = 5 - s.n_objects, p.obj[2] = p.obj[0];
        world_caption(&p, alt, sizeof alt);
        accepted_perturbed += accepted(cap, alt, &d, &shown), perturbations++;
        if (s.kind == WORLD_RELATION) { /* roles swapped, same relation */
            p = s;
            p.obj[0] = s.obj[1], p.obj[1] = s.obj[0];
            world_caption(&p, alt, sizeof alt);
            accepted_perturbed += accepted(cap, alt, &d, &shown), perturbations++;
        }
        /* "in the center" is false off centre for squares and circles; a
         * triangle's pixel centre sits s/6 below its box centre, so one drawn
         * "at the top" near y = 22 can honestly satisfy "in the center" too */
        if (s.kind == WORLD_POSITION && s.where != WORLD_CENTER && s.obj[0].shape != WORLD_TRIANGLE) {
            p = s;
            p.where = WORLD_CENTER;
            world_caption(&p, alt, sizeof alt);
            accepted_perturbed += accepted(cap, alt, &d, &shown), perturbations++;
        }
    }
    TH_CHECK(t, swapped_rejected == 0, "%d equivalent (swapped) relation captions rejected", swapped_rejected);
    TH_CHECK(t, accepted_perturbed == 0, "%d of %d single-attribute changes accepted", accepted_perturbed,
             perturbations);
}

static void test_parse_grammar(struct th *t) {
    static const char *const GOOD[] = {"a red circle on the left",      "a white triangle in the center",
                                       "two blue squares",              "three purple triangles",
                                       "a green square above a yellow circle", "  a red circle at the top \n",
                                       "a red circle to the right of a red square"};
    static const char *const BAD[] = {"",
                                      "a red circle on the left.",
                                      "A red circle on the left",
                                      "a red  circle on the left",
                                      "a red circle\ton the left",
                                      "a red circles on the left",
                                      "two red circle",
                                      "four red circles",
                                      "two red circles on the left",
                                      "a red circle",
                                      "a orange circle on the left",
                                      "a red hexagon on the left",
                                      "a red circle on the lefts",
                                      "a red circle to the left of",
                                      "a red circle to the left of a blue",
                                      "a red circle to the left of a blue square now",
                                      "a red circle near a blue square",
                                      "a red unknown on the left",
                                      "a red circle on the left a red circle on the left a red circle"};
    struct world_claim c;
    for (size_t i = 0; i < sizeof GOOD / sizeof *GOOD; i++)
        TH_CHECK(t, world_parse(GOOD[i], strlen(GOOD[i]), &c) == 0, "rejected \"%s\"", GOOD[i]);
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++)
        TH_CHECK(t, world_parse(BAD[i], strlen(BAD[i]), &c) != 0, "accepted \"%s\"", BAD[i]);
    world_parse("a green square below a yellow circle", 36, &c);
    TH_CHECK(t, c.kind == WORLD_RELATION && c.rel == WORLD_BELOW && c.colour[0] == WORLD_GREEN &&
                    c.shape[1] == WORLD_CIRCLE,
             "relation claim parsed wrong");
    world_parse("three white triangles", 21, &c);
    TH_CHECK(t, c.kind == WORLD_COUNTING && c.n_objects == 3 && c.colour[2] == WORLD_WHITE &&
                    c.shape[2] == WORLD_TRIANGLE,
             "counting claim parsed wrong");
}

/* The detector under colour noise within the palette's tolerance, on an
 * odd-sized canvas, and on shapes the world never draws. */
static void test_detector_robustness(struct th *t) {
    uint8_t rgb[WORLD_BYTES];
    struct world_scene s;
    struct world_detection d;
    char cap[WORLD_CAPTION_MAX];
    struct dsr_rng r;
    rng_seed(&r, 99);
    int wrong = 0;
    for (int i = 0; i < 300; i++) {
        world_sample_indexed(SEED + 3, (uint64_t)i, -1, &s);
        world_render(&s, rgb);
        for (int k = 0; k < WORLD_BYTES; k++) {
            int v = rgb[k] + (int)(rng_uniform(&r) * 41) - 20; /* ±20 per channel: distance ≤ 35 */
            rgb[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
        int n = world_caption(&s, cap, sizeof cap);
        wrong += !world_grade(cap, (size_t)n, &d);
    }
    TH_CHECK(t, wrong == 0, "%d noisy renders misgraded", wrong);

    /* a 30 × 5 bar: aspect 6, unknown, so no caption holds */
    memset(rgb, 16, sizeof rgb);
    for (int y = 20; y < 25; y++)
        for (int x = 10; x < 40; x++) world_colour_rgb(WORLD_RED, rgb + 3 * (y * WORLD_SIZE + x));
    world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
    TH_CHECK(t, d.n_objects == 1 && d.obj[0].shape == WORLD_UNKNOWN, "bar detected as shape %d",
             d.n_objects ? d.obj[0].shape : -1);
    TH_CHECK(t, !grade_str("a red square in the center", &d), "a bar graded as a square");
    /* fewer than 24 pixels is not an object */
    memset(rgb, 16, sizeof rgb);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++) world_colour_rgb(WORLD_BLUE, rgb + 3 * (y * WORLD_SIZE + x));
    world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
    TH_CHECK(t, d.n_objects == 0, "a 20-pixel speck counted as an object");
    /* a colour 81 away from every palette entry is background */
    memset(rgb, 16, sizeof rgb);
    for (int k = 0; k < 20 * 20; k++) rgb[3 * k] = 130, rgb[3 * k + 1] = 130, rgb[3 * k + 2] = 130;
    world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d);
    TH_CHECK(t, d.n_objects == 0, "grey counted as an object");
    uint8_t small[5 * 7 * 3];
    memset(small, 0, sizeof small);
    TH_CHECK(t, world_detect(small, 5, 7, &d) == 0 && d.n_objects == 0, "odd-sized canvas");
    TH_CHECK(t, world_detect(small, 0, 7, &d) != 0, "zero width accepted");
}

/* world_perturb: a valid scene, one attribute away, each caption false on the other render. */
static void test_perturb(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 5);
    uint8_t rgb[WORLD_BYTES];
    int bad = 0, changed_kind[3] = {0};
    for (int i = 0; i < 1000; i++) {
        struct world_scene s, p;
        struct world_detection ds, dp;
        char cs[WORLD_CAPTION_MAX], cp[WORLD_CAPTION_MAX];
        world_sample_indexed(SEED + 4, (uint64_t)i, -1, &s);
        world_perturb(&r, &s, &p);
        world_caption(&s, cs, sizeof cs);
        world_caption(&p, cp, sizeof cp);
        world_render(&s, rgb);
        world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &ds);
        world_render(&p, rgb);
        world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &dp);
        bad += p.kind != s.kind || !grade_str(cp, &dp) || grade_str(cp, &ds) || grade_str(cs, &dp);
        for (int k = 0; k < p.n_objects; k++) {
            const struct world_object *o = &p.obj[k];
            bad += o->x0 < 1 || o->y0 < 1 || o->x0 + o->size > 63 || o->y0 + o->size > 63;
            for (int j = k + 1; j < p.n_objects; j++) bad += !gap_ok(o, &p.obj[j]);
        }
        /* which attribute changed: words that differ between the two captions */
        int diff = 0;
        for (const char *a = cs, *b = cp; *a || *b; a += !!*a, b += !!*b) diff += *a != *b;
        changed_kind[s.kind] += diff > 0;
    }
    TH_CHECK(t, bad == 0, "%d bad perturbations of 1000", bad);
    for (int k = 0; k < WORLD_N_KINDS; k++) TH_CHECK(t, changed_kind[k] > 250, "kind %d: %d changed captions", k, changed_kind[k]);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "sampler_rules", test_sampler_rules);
    th_run(&t, "sampler_deterministic", test_sampler_deterministic);
    th_run(&t, "render_matches_reference", test_render_matches_reference);
    th_run(&t, "detector_exact", test_detector_exact);
    th_run(&t, "equivalent_and_perturbed", test_equivalent_and_perturbed);
    th_run(&t, "mismatch", test_mismatch);
    th_run(&t, "parse_grammar", test_parse_grammar);
    th_run(&t, "detector_robustness", test_detector_robustness);
    th_run(&t, "perturb", test_perturb);
    return th_finish(&t, "world");
}
