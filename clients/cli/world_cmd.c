/* `dsr world ...`: the shapes world (core/world) from the command line.
 * These subcommands run locally; none talks to a server.
 *
 *   sample   scenes as JSON lines (index, kind, caption, objects)
 *   render   scenes as PNGs plus captions.jsonl
 *   grade    the description check of captions against images
 *   dataset  training data for the default-model recipe (raw RGB + token ids) */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "model/default_model.h"
#include "model/image_embeds.h"
#include "image/png_io.h"
#include "janus/template.h"
#include "tokenizer/tokenizer.h"
#include "world/world.h"

static const char WORLD_HELP[] =
    "usage: dsr world SUBCOMMAND [options]\n"
    "\n"
    "The shapes world of the default model (shared/WORLD.md), run locally.\n"
    "\n"
    "  sample  [--seed S] [--start I] [-n N] [--kind K]\n"
    "          scenes I..I+N-1 of seed S as JSON lines: index, kind, caption, objects\n"
    "  render  [--seed S] [--start I] [-n N] [--kind K] [--perturbed] --out DIR\n"
    "          DIR/scene-IIIIII.png for each scene, and DIR/captions.jsonl; with\n"
    "          --perturbed also a one-attribute-perturbed scene (scene-IIIIII-p.png,\n"
    "          perturbed_caption): neither caption holds on the other image\n"
    "  grade   --image PNG --caption TEXT\n"
    "          the description check; prints pass/fail and what the detector saw\n"
    "          (exit 0 pass, 3 fail)\n"
    "  grade   --batch\n"
    "          JSON lines on stdin {\"image\": PATH, \"caption\": TEXT} → JSON lines\n"
    "          {\"pass\": BOOL, \"parsed\": BOOL, \"detected\": [...]} on stdout\n"
    "  roundtrip [--model DIR|builtin:shapes] [--seed S] [--start I] [-n N] [--json]\n"
    "          VQ round trip of each scene (render, encode, decode, detect): the\n"
    "          fraction whose decoded image the grader accepts for the caption\n"
    "  dataset --tokenizer FILE [--seed S] [--start I] [-n N] --out PREFIX\n"
    "          PREFIX.rgb (N·64·64·3 bytes) and PREFIX.jsonl (a header line with the\n"
    "          understanding context and special ids, then one line per scene with\n"
    "          its caption's token ids in each template form)\n"
    "\n"
    "  --kind: position, relation or counting (default: each equally likely).\n"
    "  --seed default 0, --start default 0, -n default 1.\n";

enum { W_HELP = 1, W_SEED, W_START, W_N, W_KIND, W_OUT, W_IMAGE, W_CAPTION, W_BATCH, W_TOKENIZER, W_PERTURBED,
       W_MODEL };

struct world_opts {
    uint64_t seed, start;
    long n;
    int kind, batch, perturbed;
    const char *out, *image, *caption, *tokenizer, *model;
};

static int parse_u64(const char *s, uint64_t max, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || x > max) return -1;
    *v = x;
    return 0;
}

static int parse_world_opts(struct cli *c, int argc, char **argv, struct world_opts *o) {
    static const struct option OPTS[] = {
        {"help", no_argument, 0, W_HELP},          {"seed", required_argument, 0, W_SEED},
        {"start", required_argument, 0, W_START},  {"n", required_argument, 0, W_N},
        {"kind", required_argument, 0, W_KIND},    {"out", required_argument, 0, W_OUT},
        {"image", required_argument, 0, W_IMAGE},  {"caption", required_argument, 0, W_CAPTION},
        {"batch", no_argument, 0, W_BATCH},        {"tokenizer", required_argument, 0, W_TOKENIZER},
        {"perturbed", no_argument, 0, W_PERTURBED},  {"model", required_argument, 0, W_MODEL},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->n = 1;
    o->kind = -1;
    optind = 0;
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, "hn:", OPTS, NULL);
        if (opt == -1) break;
        uint64_t v = 0;
        int bad = 0;
        switch (opt) {
        case W_HELP:
        case 'h': fputs(WORLD_HELP, c->out); return 1;
        case W_SEED: bad = parse_u64(optarg, UINT64_MAX, &o->seed); break;
        case W_START: bad = parse_u64(optarg, UINT64_MAX / 2, &o->start); break;
        case W_N:
        case 'n':
            bad = parse_u64(optarg, 10000000, &v) || v == 0;
            o->n = (long)v;
            break;
        case W_KIND:
            o->kind = -2;
            for (int k = 0; k < WORLD_N_KINDS; k++)
                if (strcmp(optarg, world_kind_name(k)) == 0) o->kind = k;
            bad = o->kind == -2;
            break;
        case W_OUT: o->out = optarg; break;
        case W_IMAGE: o->image = optarg; break;
        case W_CAPTION: o->caption = optarg; break;
        case W_BATCH: o->batch = 1; break;
        case W_PERTURBED: o->perturbed = 1; break;
        case W_MODEL: o->model = optarg; break;
        case W_TOKENIZER: o->tokenizer = optarg; break;
        default: return cli_usage_error(c, "world", "unknown option or missing value: %s", argv[optind - 1]);
        }
        if (bad) return cli_usage_error(c, "world", "bad value '%s'", optarg);
    }
    if (optind < argc) return cli_usage_error(c, "world", "unexpected argument '%s'", argv[optind]);
    return 0;
}

static json_t *scene_json(const struct world_scene *s, uint64_t index) {
    char cap[WORLD_CAPTION_MAX];
    world_caption(s, cap, sizeof cap);
    json_t *objs = json_array();
    for (int k = 0; k < s->n_objects; k++) {
        const struct world_object *o = &s->obj[k];
        json_array_append_new(objs, json_pack("{s:s, s:s, s:i, s:i, s:i}", "colour", world_colour_name(o->colour),
                                              "shape", world_shape_name(o->shape), "size", o->size, "x0", o->x0,
                                              "y0", o->y0));
    }
    return json_pack("{s:I, s:s, s:s, s:o}", "index", (json_int_t)index, "kind", world_kind_name(s->kind), "caption",
                     cap, "objects", objs);
}

static void print_line(struct cli *c, json_t *j) {
    cli_print_json(c, j);
    json_decref(j);
}

static int world_sample_cmd(struct cli *c, const struct world_opts *o) {
    for (long i = 0; i < o->n; i++) {
        struct world_scene s;
        world_sample_indexed(o->seed, o->start + (uint64_t)i, o->kind, &s);
        print_line(c, scene_json(&s, o->start + (uint64_t)i));
    }
    return CLI_EXIT_OK;
}

static int write_bytes(struct cli *c, const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(c->err, "dsr world: cannot write %s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    return 0;
}

/* Renders scene s as DIR/scene-IIIIII<suffix>.png. */
static int write_scene_png(struct cli *c, const struct world_scene *s, const char *path) {
    uint8_t rgb[WORLD_BYTES], *png = NULL;
    size_t png_n = 0;
    struct dsr_err e;
    world_render(s, rgb);
    int rc = png_encode_rgb8(rgb, WORLD_SIZE, WORLD_SIZE, &png, &png_n, &e);
    if (rc != 0) fprintf(c->err, "dsr world: %s\n", e.msg);
    else rc = write_bytes(c, path, png, png_n);
    free(png);
    return rc;
}

static int world_render_cmd(struct cli *c, const struct world_opts *o) {
    if (!o->out) return cli_usage_error(c, "world", "render needs --out DIR");
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST) {
        fprintf(c->err, "dsr world: cannot create %s: %s\n", o->out, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/captions.jsonl", o->out);
    FILE *index = fopen(path, "w");
    if (!index) {
        fprintf(c->err, "dsr world: cannot write %s: %s\n", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_OK;
    for (long i = 0; i < o->n && rc == CLI_EXIT_OK; i++) {
        struct world_scene s, p;
        uint64_t at = o->start + (uint64_t)i;
        world_sample_indexed(o->seed, at, o->kind, &s);
        snprintf(path, sizeof path, "%s/scene-%06llu.png", o->out, (unsigned long long)at);
        if (write_scene_png(c, &s, path) != 0) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        json_t *j = scene_json(&s, at);
        json_object_set_new(j, "file", json_string(strrchr(path, '/') + 1));
        if (o->perturbed) {
            /* its own stream per (seed, index), so any subset renders the same */
            struct dsr_rng r;
            char cap[WORLD_CAPTION_MAX];
            rng_seed(&r, (o->seed * 0x9E3779B97F4A7C15ull) ^ (at * 0xD1B54A32D192ED03ull) ^ 0x5EEDull);
            world_perturb(&r, &s, &p);
            world_caption(&p, cap, sizeof cap);
            snprintf(path, sizeof path, "%s/scene-%06llu-p.png", o->out, (unsigned long long)at);
            if (write_scene_png(c, &p, path) != 0) rc = CLI_EXIT_FAIL;
            json_object_set_new(j, "perturbed_caption", json_string(cap));
            json_object_set_new(j, "perturbed_file", json_string(strrchr(path, '/') + 1));
        }
        char *line = json_dumps(j, JSON_COMPACT);
        fprintf(index, "%s\n", line ? line : "{}");
        free(line);
        json_decref(j);
    }
    if (fclose(index) != 0) rc = CLI_EXIT_FAIL;
    if (rc == CLI_EXIT_OK) fprintf(c->err, "dsr world: wrote %ld scenes to %s\n", o->n, o->out);
    return rc;
}

static json_t *detection_json(const struct world_detection *d) {
    json_t *arr = json_array();
    for (int k = 0; k < d->n_objects; k++) {
        const struct world_detected *x = &d->obj[k];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:f, s:f, s:i}", "colour", world_colour_name(x->colour),
                                             "shape", world_shape_name(x->shape), "cx", x->cx, "cy", x->cy,
                                             "pixels", x->pixels));
    }
    return arr;
}

/* Grades one caption against one PNG file; *result gets the JSON verdict. */
static int grade_one(const char *image, const char *caption, json_t **result, char *why, size_t why_n) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    struct dsr_err e;
    if (png_decode_file_rgb8(image, 64u << 20, NULL, &rgb, &w, &h, &e) != 0) {
        snprintf(why, why_n, "%s: %s", image, e.msg);
        return -1;
    }
    struct world_detection d;
    int rc = world_detect(rgb, w, h, &d);
    free(rgb);
    if (rc != 0) {
        snprintf(why, why_n, "%s: %dx%d image is too large to grade", image, w, h);
        return -1;
    }
    struct world_claim claim;
    bool parsed = world_parse(caption, strlen(caption), &claim) == 0;
    *result = json_pack("{s:b, s:b, s:o}", "pass", parsed && world_check(&claim, &d), "parsed", parsed, "detected",
                        detection_json(&d));
    return 0;
}

static int world_grade_cmd(struct cli *c, const struct world_opts *o) {
    char why[600];
    if (!o->batch) {
        if (!o->image || !o->caption) return cli_usage_error(c, "world", "grade needs --image and --caption, or --batch");
        json_t *r = NULL;
        if (grade_one(o->image, o->caption, &r, why, sizeof why) != 0) {
            fprintf(c->err, "dsr world: %s\n", why);
            return CLI_EXIT_FAIL;
        }
        int pass = json_is_true(json_object_get(r, "pass"));
        if (c->json) cli_print_json(c, r);
        else {
            fprintf(c->out, "%s: \"%s\"%s\n", pass ? "pass" : "fail", o->caption,
                    json_is_true(json_object_get(r, "parsed")) ? "" : " (does not parse)");
            size_t k;
            json_t *x;
            json_array_foreach(json_object_get(r, "detected"), k, x)
                fprintf(c->out, "  %s %s at (%.1f, %.1f), %lld px\n", json_string_value(json_object_get(x, "colour")),
                        json_string_value(json_object_get(x, "shape")), json_real_value(json_object_get(x, "cx")),
                        json_real_value(json_object_get(x, "cy")),
                        (long long)json_integer_value(json_object_get(x, "pixels")));
        }
        json_decref(r);
        return pass ? CLI_EXIT_OK : 3;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = CLI_EXIT_OK;
    while (getline(&line, &cap, stdin) > 0) {
        lineno++;
        json_error_t je;
        json_t *req = json_loads(line, 0, &je), *r = NULL;
        const char *image = json_string_value(json_object_get(req, "image"));
        const char *caption = json_string_value(json_object_get(req, "caption"));
        if (!image || !caption) {
            r = json_pack("{s:s}", "error", "each line needs string fields image and caption");
            rc = CLI_EXIT_FAIL;
        } else if (grade_one(image, caption, &r, why, sizeof why) != 0) {
            r = json_pack("{s:s}", "error", why);
            rc = CLI_EXIT_FAIL;
        }
        json_decref(req);
        print_line(c, r);
        fflush(c->out);
    }
    free(line);
    return rc;
}

/* ---- VQ round trip ------------------------------------------------------- */

static int world_roundtrip_cmd(struct cli *c, const struct world_opts *o) {
    struct janus_model m;
    struct dsr_err e;
    int rc;
    if (!o->model || strcmp(o->model, "builtin:shapes") == 0) {
        struct default_model_blob blob;
        default_model_blob(&blob);
        rc = janus_model_load_memory(&blob.checkpoint, JANUS_WEIGHTS_F32, NULL, &m, &e);
    } else {
        rc = janus_model_load_dir(o->model, JANUS_WEIGHTS_F32, NULL, &m, &e);
    }
    if (rc != 0) {
        fprintf(c->err, "dsr world: %s\n", e.msg);
        return CLI_EXIT_FAIL;
    }
    if (vq_image_size(&m.cfg) != WORLD_SIZE || m.cfg.vq.num_patches * m.cfg.vq.num_patches > 4096) {
        fprintf(c->err, "dsr world: the model's VQ images are %d px, the world's %d\n", vq_image_size(&m.cfg),
                WORLD_SIZE);
        janus_model_free(&m);
        return CLI_EXIT_FAIL;
    }
    long agree = 0, by_kind[WORLD_N_KINDS][2] = {{0}}, failures[WORLD_N_MISMATCH] = {0};
    uint8_t rgb[WORLD_BYTES], back[WORLD_BYTES];
    int32_t codes[4096];
    for (long i = 0; i < o->n; i++) {
        struct world_scene s;
        struct world_claim claim;
        struct world_detection d;
        world_sample_indexed(o->seed, o->start + (uint64_t)i, o->kind, &s);
        world_render(&s, rgb);
        if (janus_codes_from_rgb(&m, rgb, WORLD_SIZE, WORLD_SIZE, VQ_QUANT_L2, codes, &e) ||
            janus_rgb_from_codes(&m, codes, back, &e)) {
            fprintf(c->err, "dsr world: %s\n", e.msg);
            janus_model_free(&m);
            return CLI_EXIT_FAIL;
        }
        world_scene_claim(&s, &claim);
        if (world_detect(back, WORLD_SIZE, WORLD_SIZE, &d) != 0) {
            fprintf(c->err, "dsr world: out of memory for the detector\n");
            janus_model_free(&m);
            return CLI_EXIT_FAIL;
        }
        bool ok = world_check(&claim, &d);
        if (!ok) failures[world_mismatch_of(&claim, &d)]++;
        agree += ok;
        by_kind[s.kind][0] += ok;
        by_kind[s.kind][1]++;
    }
    janus_model_free(&m);
    json_t *kinds = json_object();
    for (int k = 0; k < WORLD_N_KINDS; k++)
        json_object_set_new(kinds, world_kind_name(k),
                            json_real(by_kind[k][1] ? (double)by_kind[k][0] / (double)by_kind[k][1] : 0.0));
    json_t *why = json_object();
    for (int k = 0; k < WORLD_N_MISMATCH; k++)
        json_object_set_new(why, world_mismatch_name(k), json_integer(failures[k]));
    json_t *r = json_pack("{s:f, s:I, s:o, s:o}", "agree", (double)agree / (double)o->n, "n", (json_int_t)o->n,
                          "by_kind", kinds, "failures", why);
    if (c->json) {
        cli_print_json(c, r);
    } else {
        fprintf(c->out, "VQ round trip: the grader accepts %ld of %ld decoded scenes (%.1f%%)\n", agree, o->n,
                100.0 * (double)agree / (double)o->n);
        fprintf(c->out, "failures:");
        for (int k = 0; k < WORLD_N_MISMATCH; k++)
            fprintf(c->out, "%s %ld %s", k ? "," : "", failures[k], world_mismatch_name(k));
        fprintf(c->out, "\n");
    }
    json_decref(r);
    return CLI_EXIT_OK;
}

/* ---- dataset ------------------------------------------------------------- */

static json_t *ids_json(const struct tok_ids *v) {
    json_t *a = json_array();
    for (size_t i = 0; i < v->n; i++) json_array_append_new(a, json_integer(v->ids[i]));
    return a;
}

/* Token ids of one caption in each form the daemon builds:
 *   target  = tok(" " + caption) + [EOS]   (what the understanding direction emits; R_G's target)
 *   gen     = gen_context(caption)          (a prompt given as text)
 *   gen_alt = [BOS] + tok(user_prefix) + tok(" " + caption) + tok(assistant_suffix) + [BOI]
 *             (the R_U context of a sampled caption, whose ids are used verbatim) */
static json_t *caption_ids(const struct tokenizer *tk, const struct janus_template *tpl,
                           const struct janus_template_ids *ids, int32_t eos, const char *caption,
                           struct dsr_err *e) {
    struct tok_ids target = {0}, gen = {0}, alt = {0};
    size_t n = strlen(caption);
    json_t *out = NULL;
    if (janus_rg_target(tk, tpl, caption, n, &target, e) || janus_gen_context(tk, tpl, ids, caption, n, &gen, e) ||
        tok_ids_push(&alt, ids->bos, e) ||
        tokenizer_encode(tk, tpl->user_prefix, strlen(tpl->user_prefix), 0, &alt, e))
        goto done;
    for (size_t i = 0; i < target.n; i++)
        if (tok_ids_push(&alt, target.ids[i], e)) goto done;
    if (tokenizer_encode(tk, tpl->assistant_suffix, strlen(tpl->assistant_suffix), 0, &alt, e) ||
        tok_ids_push(&alt, ids->boi, e) || tok_ids_push(&target, eos, e))
        goto done;
    out = json_pack("{s:o, s:o, s:o}", "target", ids_json(&target), "gen", ids_json(&gen), "gen_alt", ids_json(&alt));
done:
    tok_ids_free(&target);
    tok_ids_free(&gen);
    tok_ids_free(&alt);
    return out;
}

static int special_id(struct cli *c, const struct tokenizer *tk, const char *spelling, int32_t *id) {
    *id = tokenizer_token_to_id(tk, spelling);
    if (*id < 0) fprintf(c->err, "dsr world: the tokenizer has no %s token\n", spelling);
    return *id < 0 ? -1 : 0;
}

static int world_dataset_cmd(struct cli *c, const struct world_opts *o) {
    if (!o->tokenizer || !o->out) return cli_usage_error(c, "world", "dataset needs --tokenizer FILE and --out PREFIX");
    struct tokenizer *tk = NULL;
    struct dsr_err e;
    if (tokenizer_load(o->tokenizer, &tk, &e) != 0) {
        fprintf(c->err, "dsr world: %s\n", e.msg);
        return CLI_EXIT_FAIL;
    }
    struct janus_template tpl;
    janus_template_defaults(&tpl);
    struct janus_template_ids ids = {.n_image_tokens = (WORLD_SIZE / 8) * (WORLD_SIZE / 8)};
    int32_t eos, pad;
    int rc = CLI_EXIT_FAIL;
    char path[PATH_MAX];
    FILE *rgb_f = NULL, *meta = NULL;
    struct tok_ids und = {0};
    size_t image_start = 0;
    if (special_id(c, tk, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", &ids.bos) ||
        special_id(c, tk, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", &eos) ||
        special_id(c, tk, "<\xef\xbd\x9c\xe2\x96\x81pad\xe2\x96\x81\xef\xbd\x9c>", &pad) ||
        special_id(c, tk, "<begin_of_image>", &ids.boi) || special_id(c, tk, "<end_of_image>", &ids.eoi) ||
        special_id(c, tk, "<image_placeholder>", &ids.image))
        goto done;
    if (janus_und_context(tk, &tpl, &ids, NULL, 0, &und, &image_start, &e) != 0) {
        fprintf(c->err, "dsr world: %s\n", e.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s.rgb", o->out);
    rgb_f = fopen(path, "wb");
    snprintf(path, sizeof path, "%s.jsonl", o->out);
    meta = fopen(path, "w");
    if (!rgb_f || !meta) {
        fprintf(c->err, "dsr world: cannot write %s.*: %s\n", o->out, strerror(errno));
        goto done;
    }
    json_t *head = json_pack("{s:o, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I}", "und_context", ids_json(&und),
                             "image_start", (json_int_t)image_start, "bos", ids.bos, "eos", eos, "pad", pad, "boi",
                             ids.boi, "eoi", ids.eoi, "image", ids.image, "seed", (json_int_t)o->seed, "start",
                             (json_int_t)o->start, "n", (json_int_t)o->n);
    char *s = json_dumps(head, JSON_COMPACT);
    fprintf(meta, "%s\n", s);
    free(s);
    json_decref(head);
    uint8_t rgb[WORLD_BYTES];
    for (long i = 0; i < o->n; i++) {
        struct world_scene sc;
        char cap[WORLD_CAPTION_MAX];
        world_sample_indexed(o->seed, o->start + (uint64_t)i, o->kind, &sc);
        world_render(&sc, rgb);
        world_caption(&sc, cap, sizeof cap);
        json_t *line = caption_ids(tk, &tpl, &ids, eos, cap, &e);
        if (!line) {
            fprintf(c->err, "dsr world: \"%s\": %s\n", cap, e.msg);
            goto done;
        }
        json_object_set_new(line, "index", json_integer((json_int_t)(o->start + (uint64_t)i)));
        json_object_set_new(line, "kind", json_string(world_kind_name(sc.kind)));
        json_object_set_new(line, "caption", json_string(cap));
        s = json_dumps(line, JSON_COMPACT);
        fprintf(meta, "%s\n", s);
        free(s);
        json_decref(line);
        if (fwrite(rgb, 1, sizeof rgb, rgb_f) != sizeof rgb) {
            fprintf(c->err, "dsr world: writing %s.rgb: %s\n", o->out, strerror(errno));
            goto done;
        }
    }
    rc = CLI_EXIT_OK;
done:
    if (rgb_f && fclose(rgb_f) != 0) rc = CLI_EXIT_FAIL;
    if (meta && fclose(meta) != 0) rc = CLI_EXIT_FAIL;
    tok_ids_free(&und);
    tokenizer_free(tk);
    return rc;
}

int cmd_world(struct cli *c, int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(WORLD_HELP, argc < 2 ? c->err : c->out);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    struct world_opts o;
    int rc = parse_world_opts(c, argc - 1, argv + 1, &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (strcmp(argv[1], "sample") == 0) return world_sample_cmd(c, &o);
    if (strcmp(argv[1], "render") == 0) return world_render_cmd(c, &o);
    if (strcmp(argv[1], "grade") == 0) return world_grade_cmd(c, &o);
    if (strcmp(argv[1], "dataset") == 0) return world_dataset_cmd(c, &o);
    if (strcmp(argv[1], "roundtrip") == 0) return world_roundtrip_cmd(c, &o);
    return cli_usage_error(c, "world", "unknown subcommand '%s'", argv[1]);
}
