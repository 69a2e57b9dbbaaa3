#include "world/world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and palette (WORLD.md, exact) ------------------------------ */

static const char *const COLOUR_NAMES[WORLD_N_COLOURS] = {"red", "green", "blue", "yellow", "purple", "white"};
static const uint8_t PALETTE[WORLD_N_COLOURS][3] = {{230, 50, 50},  {50, 190, 70},  {60, 110, 240},
                                                    {240, 220, 60}, {170, 80, 220}, {235, 235, 235}};
static const uint8_t BACKGROUND[3] = {16, 16, 16};
static const char *const SHAPE_NAMES[WORLD_N_SHAPES + 1] = {"square", "circle", "triangle", "unknown"};
static const char *const KIND_NAMES[WORLD_N_KINDS] = {"position", "relation", "counting"};
static const char *const WHERE_PHRASES[WORLD_N_WHERE] = {"on the left", "on the right", "at the top", "at the bottom",
                                                         "in the center"};
static const char *const REL_PHRASES[WORLD_N_REL] = {"to the left of", "to the right of", "above", "below"};

const char *world_colour_name(int c) { return c >= 0 && c < WORLD_N_COLOURS ? COLOUR_NAMES[c] : NULL; }
const char *world_shape_name(int s) { return s >= 0 && s <= WORLD_N_SHAPES ? SHAPE_NAMES[s] : NULL; }
const char *world_kind_name(int k) { return k >= 0 && k < WORLD_N_KINDS ? KIND_NAMES[k] : NULL; }
const char *world_where_phrase(int w) { return w >= 0 && w < WORLD_N_WHERE ? WHERE_PHRASES[w] : NULL; }
const char *world_rel_phrase(int r) { return r >= 0 && r < WORLD_N_REL ? REL_PHRASES[r] : NULL; }

void world_colour_rgb(int colour, uint8_t rgb[3]) { memcpy(rgb, PALETTE[colour], 3); }

/* ---- sampling ----------------------------------------------------------- */

static int uniform_int(struct dsr_rng *r, int lo, int hi) { /* [lo, hi] */
    return lo + (int)(rng_uniform(r) * (hi - lo + 1));
}

/* Centres in doubled units (2·centre is an integer), so every rule of
 * WORLD.md is checked exactly. */
static int cx2(const struct world_object *o) { return 2 * o->x0 + o->size; }
static int cy2(const struct world_object *o) { return 2 * o->y0 + o->size; }

/* A random box inside [1, 63) on both axes. */
static void random_box(struct dsr_rng *r, struct world_object *o) {
    o->size = uniform_int(r, 14, 18);
    o->x0 = uniform_int(r, 1, WORLD_SIZE - 1 - o->size);
    o->y0 = uniform_int(r, 1, WORLD_SIZE - 1 - o->size);
}

static bool apart(const struct world_object *a, const struct world_object *b) {
    return a->x0 + a->size + 3 <= b->x0 || b->x0 + b->size + 3 <= a->x0 || a->y0 + a->size + 3 <= b->y0 ||
           b->y0 + b->size + 3 <= a->y0;
}

static bool in_range2(int v2, int lo, int hi) { return v2 >= 2 * lo && v2 <= 2 * hi; }

static bool placed_where(const struct world_object *o, int where) {
    int x = cx2(o), y = cy2(o);
    switch (where) {
    case WORLD_LEFT: return in_range2(x, 10, 22) && in_range2(y, 22, 42);
    case WORLD_RIGHT: return in_range2(x, 42, 54) && in_range2(y, 22, 42);
    case WORLD_TOP: return in_range2(x, 22, 42) && in_range2(y, 10, 22);
    case WORLD_BOTTOM: return in_range2(x, 22, 42) && in_range2(y, 42, 54);
    default: return in_range2(x, 28, 36) && in_range2(y, 28, 36);
    }
}

/* "A {rel} B" placement: 20 px along the axis, within 10 px across it. */
static bool placed_rel(const struct world_object *a, const struct world_object *b, int rel) {
    int dx = cx2(b) - cx2(a), dy = cy2(b) - cy2(a);
    switch (rel) {
    case WORLD_LEFT_OF: return dx >= 40 && abs(dy) <= 20;
    case WORLD_RIGHT_OF: return -dx >= 40 && abs(dy) <= 20;
    case WORLD_ABOVE: return dy >= 40 && abs(dx) <= 20;
    default: return -dy >= 40 && abs(dx) <= 20;
    }
}

static void random_type(struct dsr_rng *r, struct world_object *o) {
    o->colour = uniform_int(r, 0, WORLD_N_COLOURS - 1);
    o->shape = uniform_int(r, 0, WORLD_N_SHAPES - 1);
}

void world_sample(struct dsr_rng *r, int kind, struct world_scene *s) {
    memset(s, 0, sizeof *s);
    s->kind = kind >= 0 && kind < WORLD_N_KINDS ? kind : uniform_int(r, 0, WORLD_N_KINDS - 1);
    struct world_object *o = s->obj;
    if (s->kind == WORLD_POSITION) {
        s->n_objects = 1;
        random_type(r, &o[0]);
        s->where = uniform_int(r, 0, WORLD_N_WHERE - 1);
        do random_box(r, &o[0]);
        while (!placed_where(&o[0], s->where));
    } else if (s->kind == WORLD_RELATION) {
        s->n_objects = 2;
        random_type(r, &o[0]);
        do random_type(r, &o[1]);
        while (o[1].colour == o[0].colour && o[1].shape == o[0].shape);
        s->rel = uniform_int(r, 0, WORLD_N_REL - 1);
        do {
            random_box(r, &o[0]);
            random_box(r, &o[1]);
        } while (!placed_rel(&o[0], &o[1], s->rel) || !apart(&o[0], &o[1]));
    } else {
        s->n_objects = uniform_int(r, 2, 3);
        random_type(r, &o[0]);
        for (int i = 1; i < s->n_objects; i++) o[i].colour = o[0].colour, o[i].shape = o[0].shape;
        bool ok;
        do {
            ok = true;
            for (int i = 0; i < s->n_objects; i++) random_box(r, &o[i]);
            for (int i = 0; ok && i < s->n_objects; i++)
                for (int j = i + 1; ok && j < s->n_objects; j++) ok = apart(&o[i], &o[j]);
        } while (!ok);
    }
}

void world_sample_indexed(uint64_t seed, uint64_t index, int kind, struct world_scene *scene) {
    struct dsr_rng r;
    /* splitmix64 inside rng_seed decorrelates neighbouring (seed, index) pairs */
    rng_seed(&r, seed * 0x9E3779B97F4A7C15ull ^ (index + 0x632BE59BD9B4E019ull));
    world_sample(&r, kind, scene);
}

/* ---- rendering -------------------------------------------------------------- */

/* Pixel (x, y) with centre (x + ½, y + ½); in doubled units the centre is
 * (2x + 1, 2y + 1) and every test below is exact integer arithmetic. */
static bool covers(const struct world_object *o, int x, int y) {
    long px = 2 * x + 1, py = 2 * y + 1, x0 = 2 * o->x0, y0 = 2 * o->y0, s = 2 * o->size;
    long dx = px - (x0 + s / 2), dy = py - (y0 + s / 2); /* from the box centre */
    switch (o->shape) {
    case WORLD_SQUARE: return px > x0 && px < x0 + s && py > y0 && py < y0 + s;
    case WORLD_CIRCLE: return dx * dx + dy * dy <= (s / 2) * (s / 2);
    default:
        /* apex (cx, y0), base at y0 + s: inside when y0 <= py <= y0 + s and
         * |px - cx| <= (py - y0) / 2 (the half-width grows by 1/2 per unit of height) */
        return py >= y0 && py <= y0 + s && 2 * labs(dx) <= py - y0;
    }
}

void world_render(const struct world_scene *scene, uint8_t *rgb) {
    for (int i = 0; i < WORLD_SIZE * WORLD_SIZE; i++) memcpy(rgb + 3 * i, BACKGROUND, 3);
    for (int k = 0; k < scene->n_objects; k++) {
        const struct world_object *o = &scene->obj[k];
        for (int y = o->y0 > 0 ? o->y0 - 1 : 0; y <= o->y0 + o->size && y < WORLD_SIZE; y++)
            for (int x = o->x0 > 0 ? o->x0 - 1 : 0; x <= o->x0 + o->size && x < WORLD_SIZE; x++)
                if (covers(o, x, y)) memcpy(rgb + 3 * (y * WORLD_SIZE + x), PALETTE[o->colour], 3);
    }
}

/* ---- captions ---------------------------------------------------------------- */

int world_caption(const struct world_scene *s, char *buf, size_t cap) {
    const struct world_object *o = s->obj;
    int n;
    if (s->kind == WORLD_POSITION)
        n = snprintf(buf, cap, "a %s %s %s", COLOUR_NAMES[o[0].colour], SHAPE_NAMES[o[0].shape],
                     WHERE_PHRASES[s->where]);
    else if (s->kind == WORLD_RELATION)
        n = snprintf(buf, cap, "a %s %s %s a %s %s", COLOUR_NAMES[o[0].colour], SHAPE_NAMES[o[0].shape],
                     REL_PHRASES[s->rel], COLOUR_NAMES[o[1].colour], SHAPE_NAMES[o[1].shape]);
    else
        n = snprintf(buf, cap, "%s %s %ss", s->n_objects == 2 ? "two" : "three", COLOUR_NAMES[o[0].colour],
                     SHAPE_NAMES[o[0].shape]);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

void world_scene_claim(const struct world_scene *s, struct world_claim *c) {
    memset(c, 0, sizeof *c);
    c->kind = s->kind;
    c->n_objects = s->n_objects;
    for (int i = 0; i < s->n_objects; i++) c->colour[i] = s->obj[i].colour, c->shape[i] = s->obj[i].shape;
    c->where = s->where;
    c->rel = s->rel;
}

/* ---- parsing ----------------------------------------------------------------- */

#define MAX_WORDS 12

struct words {
    int n;
    const char *w[MAX_WORDS];
    size_t len[MAX_WORDS];
};

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Splits on single spaces after trimming the ends; a double space, any other
 * inner whitespace or too many words is a parse failure. */
static int split_words(const char *s, size_t len, struct words *out) {
    while (len && is_space(*s)) s++, len--;
    while (len && is_space(s[len - 1])) len--;
    out->n = 0;
    if (!len) return -1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ' ') {
            if (is_space(s[i])) return -1;
            continue;
        }
        if (i == start || out->n == MAX_WORDS) return -1;
        out->w[out->n] = s + start;
        out->len[out->n++] = i - start;
        start = i + 1;
    }
    return 0;
}

static bool word_is(const struct words *ws, int i, const char *lit) {
    return i < ws->n && ws->len[i] == strlen(lit) && memcmp(ws->w[i], lit, ws->len[i]) == 0;
}

static int find_name(const struct words *ws, int i, const char *const *names, int n, bool plural) {
    if (i >= ws->n) return -1;
    for (int k = 0; k < n; k++) {
        size_t l = strlen(names[k]);
        if (ws->len[i] == l + plural && memcmp(ws->w[i], names[k], l) == 0 && (!plural || ws->w[i][l] == 's'))
            return k;
    }
    return -1;
}

/* Matches a multi-word phrase at word i; returns the number of words, 0 if none. */
static int match_phrase(const struct words *ws, int i, const char *phrase) {
    char buf[32];
    snprintf(buf, sizeof buf, "%s", phrase);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save), n++)
        if (!word_is(ws, i + n, t)) return 0;
    return n;
}

int world_parse(const char *caption, size_t len, struct world_claim *c) {
    struct words ws;
    memset(c, 0, sizeof *c);
    if (split_words(caption, len, &ws)) return -1;
    if (word_is(&ws, 0, "two") || word_is(&ws, 0, "three")) {
        int col = find_name(&ws, 1, COLOUR_NAMES, WORLD_N_COLOURS, false);
        int shp = find_name(&ws, 2, SHAPE_NAMES, WORLD_N_SHAPES, true);
        if (col < 0 || shp < 0 || ws.n != 3) return -1;
        c->kind = WORLD_COUNTING;
        c->n_objects = word_is(&ws, 0, "two") ? 2 : 3;
        for (int i = 0; i < c->n_objects; i++) c->colour[i] = col, c->shape[i] = shp;
        return 0;
    }
    if (!word_is(&ws, 0, "a")) return -1;
    c->colour[0] = find_name(&ws, 1, COLOUR_NAMES, WORLD_N_COLOURS, false);
    c->shape[0] = find_name(&ws, 2, SHAPE_NAMES, WORLD_N_SHAPES, false);
    if (c->colour[0] < 0 || c->shape[0] < 0) return -1;
    for (int w = 0; w < WORLD_N_WHERE; w++) {
        int n = match_phrase(&ws, 3, WHERE_PHRASES[w]);
        if (n && 3 + n == ws.n) {
            c->kind = WORLD_POSITION;
            c->n_objects = 1;
            c->where = w;
            return 0;
        }
    }
    for (int r = 0; r < WORLD_N_REL; r++) {
        int n = match_phrase(&ws, 3, REL_PHRASES[r]);
        if (!n || ws.n != 3 + n + 3 || !word_is(&ws, 3 + n, "a")) continue;
        c->colour[1] = find_name(&ws, 4 + n, COLOUR_NAMES, WORLD_N_COLOURS, false);
        c->shape[1] = find_name(&ws, 5 + n, SHAPE_NAMES, WORLD_N_SHAPES, false);
        if (c->colour[1] < 0 || c->shape[1] < 0) return -1;
        c->kind = WORLD_RELATION;
        c->n_objects = 2;
        c->rel = r;
        return 0;
    }
    return -1;
}

/* ---- the detector ------------------------------------------------------------- */

/* Palette index of a pixel, or -1 for background (WORLD.md: nearest palette
 * colour within distance 80 and nearer than the background). */
static int classify(const uint8_t *p) {
    int best = -1;
    long best_d = 0;
    for (int c = 0; c < WORLD_N_COLOURS; c++) {
        long d = 0;
        for (int k = 0; k < 3; k++) d += (long)(p[k] - PALETTE[c][k]) * (p[k] - PALETTE[c][k]);
        if (best < 0 || d < best_d) best = c, best_d = d;
    }
    long bg = 0;
    for (int k = 0; k < 3; k++) bg += (long)(p[k] - BACKGROUND[k]) * (p[k] - BACKGROUND[k]);
    return best_d <= 80 * 80 && best_d < bg ? best : -1;
}

static int shape_of(int pixels, int width, int height) {
    double aspect = (double)width / height, fill = (double)pixels / ((double)width * height);
    if (aspect < 0.6 || aspect > 1.6) return WORLD_UNKNOWN;
    if (fill >= 0.88) return WORLD_SQUARE;
    return fill >= 0.66 ? WORLD_CIRCLE : WORLD_TRIANGLE;
}

int world_detect(const uint8_t *rgb, int w, int h, struct world_detection *det) {
    memset(det, 0, sizeof *det);
    if (w < 1 || h < 1 || w > 8192 || h > 8192) return -1;
    size_t n = (size_t)w * h;
    int8_t *label = malloc(n);
    int32_t *stack = malloc(n * sizeof *stack);
    if (!label || !stack) {
        free(label);
        free(stack);
        return -1;
    }
    for (size_t i = 0; i < n; i++) label[i] = (int8_t)classify(rgb + 3 * i);
    for (size_t start = 0; start < n; start++) {
        int colour = label[start];
        if (colour < 0) continue;
        /* flood fill of one 4-connected component; visited pixels become -1 */
        long sx = 0, sy = 0;
        int count = 0, minx = w, maxx = -1, miny = h, maxy = -1, top = 0;
        stack[top++] = (int32_t)start;
        label[start] = -1;
        while (top) {
            int32_t p = stack[--top];
            int x = p % w, y = p / w;
            sx += x, sy += y, count++;
            minx = x < minx ? x : minx, maxx = x > maxx ? x : maxx;
            miny = y < miny ? y : miny, maxy = y > maxy ? y : maxy;
            const int nx[4] = {x - 1, x + 1, x, x}, ny[4] = {y, y, y - 1, y + 1};
            for (int k = 0; k < 4; k++) {
                if (nx[k] < 0 || nx[k] >= w || ny[k] < 0 || ny[k] >= h) continue;
                int32_t q = ny[k] * w + nx[k];
                if (label[q] == colour) label[q] = -1, stack[top++] = q;
            }
        }
        if (count < 24) continue;
        if (det->n_objects == WORLD_MAX_DETECTED) {
            det->truncated = true;
            continue;
        }
        struct world_detected *o = &det->obj[det->n_objects++];
        o->colour = colour;
        o->width = maxx - minx + 1;
        o->height = maxy - miny + 1;
        o->pixels = count;
        o->shape = shape_of(count, o->width, o->height);
        o->cx = (double)sx / count + 0.5;
        o->cy = (double)sy / count + 0.5;
    }
    free(label);
    free(stack);
    return 0;
}

/* ---- the description check ------------------------------------------------------ */

static bool same_type(const struct world_detected *d, int colour, int shape) {
    return d->colour == colour && d->shape == shape;
}

/* Multiset equality of the claimed types and the detected objects. */
static bool types_match(const struct world_claim *c, const struct world_detection *det) {
    if (det->truncated || det->n_objects != c->n_objects) return false;
    bool used[WORLD_MAX_DETECTED] = {false};
    for (int i = 0; i < c->n_objects; i++) {
        int j = 0;
        while (j < det->n_objects && (used[j] || !same_type(&det->obj[j], c->colour[i], c->shape[i]))) j++;
        if (j == det->n_objects) return false;
        used[j] = true;
    }
    return true;
}

static bool where_holds(const struct world_detected *o, int where) {
    switch (where) {
    case WORLD_LEFT: return o->cx < 26;
    case WORLD_RIGHT: return o->cx > 38;
    case WORLD_TOP: return o->cy < 26;
    case WORLD_BOTTOM: return o->cy > 38;
    default: return o->cx >= 24 && o->cx <= 40 && o->cy >= 24 && o->cy <= 40;
    }
}

static bool rel_holds(const struct world_detected *a, const struct world_detected *b, int rel) {
    switch (rel) {
    case WORLD_LEFT_OF: return a->cx < b->cx - 6;
    case WORLD_RIGHT_OF: return a->cx > b->cx + 6;
    case WORLD_ABOVE: return a->cy < b->cy - 6;
    default: return a->cy > b->cy + 6;
    }
}

bool world_check(const struct world_claim *c, const struct world_detection *det) {
    if (!types_match(c, det)) return false;
    if (c->kind == WORLD_COUNTING) return true;
    if (c->kind == WORLD_POSITION) return where_holds(&det->obj[0], c->where);
    /* relation: any assignment of the two detected objects to A and B that
     * fits the types (both, should the caption name one type twice) */
    for (int a = 0; a < 2; a++) {
        const struct world_detected *A = &det->obj[a], *B = &det->obj[1 - a];
        if (same_type(A, c->colour[0], c->shape[0]) && same_type(B, c->colour[1], c->shape[1]) &&
            rel_holds(A, B, c->rel))
            return true;
    }
    return false;
}

enum world_mismatch world_mismatch_of(const struct world_claim *c, const struct world_detection *det) {
    if (det->truncated || det->n_objects != c->n_objects) return WORLD_MISMATCH_COUNT;
    int colours[WORLD_N_COLOURS] = {0}; /* claimed minus detected, per colour */
    for (int i = 0; i < c->n_objects; i++) {
        colours[c->colour[i]]++;
        colours[det->obj[i].colour]--;
    }
    for (int k = 0; k < WORLD_N_COLOURS; k++)
        if (colours[k] != 0) return WORLD_MISMATCH_COLOUR;
    if (!types_match(c, det)) return WORLD_MISMATCH_SHAPE;
    return WORLD_MISMATCH_SPATIAL;
}

const char *world_mismatch_name(int mismatch) {
    static const char *const NAMES[WORLD_N_MISMATCH] = {"count", "colour", "shape", "spatial"};
    return mismatch >= 0 && mismatch < WORLD_N_MISMATCH ? NAMES[mismatch] : NULL;
}

bool world_grade(const char *caption, size_t len, const struct world_detection *det) {
    struct world_claim c;
    return world_parse(caption, len, &c) == 0 && world_check(&c, det);
}

/* ---- one-attribute perturbations (self-reward sanity checks) ------------------ */

/* Re-draws object k's box until it is placed as the scene's kind requires
 * and apart from every other object. */
static void replace_box(struct dsr_rng *r, struct world_scene *s, int k) {
    for (;;) {
        random_box(r, &s->obj[k]);
        bool ok = s->kind != WORLD_POSITION || placed_where(&s->obj[k], s->where);
        for (int j = 0; ok && j < s->n_objects; j++) ok = j == k || apart(&s->obj[k], &s->obj[j]);
        if (ok) return;
    }
}

static bool distinct_types(const struct world_scene *s) {
    return s->kind != WORLD_RELATION ||
           s->obj[0].colour != s->obj[1].colour || s->obj[0].shape != s->obj[1].shape;
}

static void perturb_once(struct dsr_rng *r, const struct world_scene *in, struct world_scene *out) {
    static const int OPPOSITE_REL[WORLD_N_REL] = {WORLD_RIGHT_OF, WORLD_LEFT_OF, WORLD_BELOW, WORLD_ABOVE};
    *out = *in;
    /* attribute: 0 colour, 1 shape, 2 the spatial word or the count */
    int attr = uniform_int(r, 0, 2), k = in->kind == WORLD_RELATION ? uniform_int(r, 0, 1) : 0;
    if (attr == 0 || attr == 1) {
        do {
            if (attr == 0) out->obj[k].colour = (in->obj[k].colour + uniform_int(r, 1, WORLD_N_COLOURS - 1)) % WORLD_N_COLOURS;
            else out->obj[k].shape = (in->obj[k].shape + uniform_int(r, 1, WORLD_N_SHAPES - 1)) % WORLD_N_SHAPES;
        } while (!distinct_types(out));
        if (in->kind == WORLD_COUNTING)
            for (int j = 1; j < in->n_objects; j++) out->obj[j].colour = out->obj[0].colour, out->obj[j].shape = out->obj[0].shape;
        return;
    }
    if (in->kind == WORLD_POSITION) {
        out->where = (in->where + uniform_int(r, 1, WORLD_N_WHERE - 1)) % WORLD_N_WHERE;
        replace_box(r, out, 0);
    } else if (in->kind == WORLD_RELATION) { /* the opposite relation: the boxes swap */
        out->rel = OPPOSITE_REL[in->rel];
        int size = out->obj[0].size, x0 = out->obj[0].x0, y0 = out->obj[0].y0;
        out->obj[0].size = out->obj[1].size, out->obj[0].x0 = out->obj[1].x0, out->obj[0].y0 = out->obj[1].y0;
        out->obj[1].size = size, out->obj[1].x0 = x0, out->obj[1].y0 = y0;
    } else if (in->n_objects == 2) { /* two → three */
        out->n_objects = 3;
        out->obj[2] = out->obj[0];
        replace_box(r, out, 2);
    } else {
        out->n_objects = 2;
    }
}

/* Whether a's caption holds on b's render. */
static bool claim_holds_on(const struct world_scene *a, const struct world_scene *b) {
    uint8_t rgb[WORLD_BYTES];
    struct world_detection d;
    struct world_claim c;
    world_render(b, rgb);
    world_scene_claim(a, &c);
    return world_detect(rgb, WORLD_SIZE, WORLD_SIZE, &d) == 0 && world_check(&c, &d);
}

void world_perturb(struct dsr_rng *r, const struct world_scene *in, struct world_scene *out) {
    /* a changed spatial word can still hold (a triangle "at the top" may also
     * be "in the center"): draw again until neither caption fits the other
     * scene; colour, shape and count changes always qualify at once */
    do perturb_once(r, in, out);
    while (claim_holds_on(out, in) || claim_holds_on(in, out));
}
