/* The shapes world (shared/WORLD.md, normative): scenes, renders, captions,
 * and the graders both directions are measured with.
 *
 *   world_sample()   seeded scene sampler (kind, objects, spatial word)
 *   world_render()   scene → 64×64 RGB, no anti-aliasing
 *   world_caption()  scene → its reference caption
 *   world_parse()    caption → claim (types named + spatial claim), or reject
 *   world_detect()   RGB → objects (colour, shape, centre)
 *   world_check()    claim × objects → satisfied or not (the description check)
 *   world_grade()    caption × RGB → world_parse + world_detect + world_check
 *
 * This is the project's only implementation: the training recipe, the
 * experiment, the evaluation, `dsr world` and the tests all call it.
 * Everything is plain data owned by the caller; only world_detect allocates
 * (scratch, freed before it returns). */
#ifndef DSR_WORLD_H
#define DSR_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

#define WORLD_SIZE 64                 /* image side, pixels */
#define WORLD_BYTES (WORLD_SIZE * WORLD_SIZE * 3)
#define WORLD_MAX_OBJECTS 3           /* in a scene */
#define WORLD_MAX_DETECTED 16         /* the detector reports at most this many objects */
#define WORLD_CAPTION_MAX 96          /* bytes, including the NUL; captions are ≤ 60 */
#define WORLD_N_COLOURS 6
#define WORLD_N_SHAPES 3

enum world_kind { WORLD_POSITION, WORLD_RELATION, WORLD_COUNTING, WORLD_N_KINDS };
enum world_colour { WORLD_RED, WORLD_GREEN, WORLD_BLUE, WORLD_YELLOW, WORLD_PURPLE, WORLD_WHITE };
/* WORLD_UNKNOWN is only ever detected (aspect outside [0.6, 1.6]); it matches no caption. */
enum world_shape { WORLD_SQUARE, WORLD_CIRCLE, WORLD_TRIANGLE, WORLD_UNKNOWN };
enum world_where { WORLD_LEFT, WORLD_RIGHT, WORLD_TOP, WORLD_BOTTOM, WORLD_CENTER, WORLD_N_WHERE };
enum world_rel { WORLD_LEFT_OF, WORLD_RIGHT_OF, WORLD_ABOVE, WORLD_BELOW, WORLD_N_REL };

/* A drawn object: its type and its s × s box with top-left corner (x0, y0), pixels. */
struct world_object {
    int colour, shape;
    int size, x0, y0;
};

/* A scene.  relation: obj[0] is A and obj[1] is B in "A {rel} B"; where/rel
 * are meaningful only for their kind. */
struct world_scene {
    int kind;
    int n_objects;
    struct world_object obj[WORLD_MAX_OBJECTS];
    int where; /* position */
    int rel;   /* relation */
};

/* What a caption claims: the types it names (with multiplicity) and its
 * spatial claim. */
struct world_claim {
    int kind;
    int n_objects;
    int colour[WORLD_MAX_OBJECTS], shape[WORLD_MAX_OBJECTS];
    int where, rel;
};

struct world_detected {
    int colour, shape;
    double cx, cy; /* mean pixel coordinate + 0.5 */
    int pixels;
    int width, height; /* bounding box */
};

struct world_detection {
    int n_objects;
    bool truncated; /* more than WORLD_MAX_DETECTED components (never on a scene) */
    struct world_detected obj[WORLD_MAX_DETECTED];
};

/* Names, as spelled in captions (NULL for out-of-range values). */
const char *world_colour_name(int colour);
const char *world_shape_name(int shape); /* "unknown" for WORLD_UNKNOWN */
const char *world_kind_name(int kind);
const char *world_where_phrase(int where); /* "on the left", ... */
const char *world_rel_phrase(int rel);     /* "to the left of", ... */
/* The palette colour of a colour index, RGB. */
void world_colour_rgb(int colour, uint8_t rgb[3]);

/* Draws a scene of a uniformly chosen kind (kind < 0) or of the given kind. */
void world_sample(struct dsr_rng *rng, int kind, struct world_scene *scene);
/* Scene number index of the deterministic stream seeded by seed: the
 * same (seed, index) gives the same scene in every program. */
void world_sample_indexed(uint64_t seed, uint64_t index, int kind, struct world_scene *scene);

/* rgb [WORLD_SIZE, WORLD_SIZE, 3] row-major. */
void world_render(const struct world_scene *scene, uint8_t *rgb);

/* The scene's caption; returns its length, or -1 when cap is too small. */
int world_caption(const struct world_scene *scene, char *buf, size_t cap);

/* Parses a caption under the grammar (surrounding whitespace ignored).
 * Returns 0, or -1 when it does not parse. */
int world_parse(const char *caption, size_t len, struct world_claim *claim);

/* The detector on an RGB image (1 ≤ w, h ≤ 8192; rgb [h, w, 3]).  Returns
 * 0, or -1 for a bad size or when its scratch (w·h·5 bytes) cannot be allocated. */
int world_detect(const uint8_t *rgb, int w, int h, struct world_detection *det);

/* The description check. */
bool world_check(const struct world_claim *claim, const struct world_detection *det);

/* Why world_check fails, the first of: a different number of objects (or a
 * truncated detection), a different multiset of colours, of types (so a
 * shape, "unknown" included), else the spatial claim.  Meaningful only when
 * world_check is false (it then never says "spatial" for a counting claim). */
enum world_mismatch {
    WORLD_MISMATCH_COUNT,
    WORLD_MISMATCH_COLOUR,
    WORLD_MISMATCH_SHAPE,
    WORLD_MISMATCH_SPATIAL,
    WORLD_N_MISMATCH
};
enum world_mismatch world_mismatch_of(const struct world_claim *claim, const struct world_detection *det);
/* "count", "colour", "shape", "spatial" (NULL out of range). */
const char *world_mismatch_name(int mismatch);

/* Parse + check; false when the caption does not parse. */
bool world_grade(const char *caption, size_t len, const struct world_detection *det);

/* A scene differing from in by one attribute: an object's colour or shape,
 * or the spatial word (a new region, or the opposite relation: the boxes
 * swap), or the count (two ↔ three).  out is a valid scene; neither scene's
 * caption holds on the other's render (the self-reward checks' perturbed pair). */
void world_perturb(struct dsr_rng *rng, const struct world_scene *in, struct world_scene *out);

/* The scene's claim (what its caption says), without a text round trip. */
void world_scene_claim(const struct world_scene *scene, struct world_claim *claim);

#endif
