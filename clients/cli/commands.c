/* The `dsr` commands. Each parses its own options, makes one API call and
 * prints either a human summary or (--json) the server's answer. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base64.h"
#include "cli.h"
#include "contact_sheet.h"
#include "image/png_io.h"

/* ---- option parsing ----------------------------------------------------- */

enum { OPT_HELP = 'h', OPT_N = 'n', OPT_IMAGE = 256, OPT_RESPONSE, OPT_PROMPT, OPT_QUESTION, OPT_MAX_TOKENS,
       OPT_TEMPERATURE, OPT_TOP_K, OPT_TOP_P, OPT_SEED, OPT_CFG, OPT_OUT, OPT_FILE, OPT_NAME, OPT_PATH, OPT_TEXT,
       OPT_TOKEN_LOGPROBS };

/* Options of one command invocation; NULL / negative = not given. */
struct cmd_opts {
    const char *image, *response, *prompt, *question, *out, *file, *name, *path, *text;
    long n, max_tokens, top_k, seed;
    double temperature, top_p, cfg_scale;
    int token_logprobs;
};

static const struct option ALL_OPTS[] = {
    {"help", no_argument, 0, OPT_HELP},
    {"image", required_argument, 0, OPT_IMAGE},
    {"response", required_argument, 0, OPT_RESPONSE},
    {"prompt", required_argument, 0, OPT_PROMPT},
    {"question", required_argument, 0, OPT_QUESTION},
    {"n", required_argument, 0, OPT_N},
    {"max-tokens", required_argument, 0, OPT_MAX_TOKENS},
    {"temperature", required_argument, 0, OPT_TEMPERATURE},
    {"top-k", required_argument, 0, OPT_TOP_K},
    {"top-p", required_argument, 0, OPT_TOP_P},
    {"seed", required_argument, 0, OPT_SEED},
    {"cfg-scale", required_argument, 0, OPT_CFG},
    {"out", required_argument, 0, OPT_OUT},
    {"file", required_argument, 0, OPT_FILE},
    {"name", required_argument, 0, OPT_NAME},
    {"path", required_argument, 0, OPT_PATH},
    {"text", required_argument, 0, OPT_TEXT},
    {"token-logprobs", no_argument, 0, OPT_TOKEN_LOGPROBS},
    {0, 0, 0, 0},
};

static int parse_num(const char *s, double lo, double hi, double *v) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(x) || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* Parses argv against the options the command allows (a string of OPT_
 * codes).  Returns 0, 1 after printing help, or CLI_EXIT_USAGE. */
static int parse_cmd(struct cli *c, int argc, char **argv, const int *allowed, const char *help,
                     struct cmd_opts *o) {
    memset(o, 0, sizeof *o);
    o->n = o->max_tokens = o->top_k = o->seed = -1;
    o->temperature = o->top_p = o->cfg_scale = -1;
    optind = 0; /* GNU: full re-initialisation (cli_main may run more than once) */
    opterr = 0;
    for (;;) {
        int idx = -1;
        int opt = getopt_long(argc, argv, "hn:", ALL_OPTS, &idx);
        if (opt == -1) break;
        if (opt == OPT_HELP) {
            fputs(help, c->out);
            return 1;
        }
        int ok = 0;
        for (const int *a = allowed; *a; a++) ok |= *a == opt;
        if (opt == '?' || opt == ':' || !ok)
            return cli_usage_error(c, argv[0], "unknown option or missing value: %s", argv[optind - 1]);
        double v = 0;
        int bad = 0;
        switch (opt) {
        case OPT_IMAGE: o->image = optarg; break;
        case OPT_RESPONSE: o->response = optarg; break;
        case OPT_PROMPT: o->prompt = optarg; break;
        case OPT_QUESTION: o->question = optarg; break;
        case OPT_OUT: o->out = optarg; break;
        case OPT_FILE: o->file = optarg; break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_PATH: o->path = optarg; break;
        case OPT_TEXT: o->text = optarg; break;
        case OPT_TOKEN_LOGPROBS: o->token_logprobs = 1; break;
        case OPT_N: bad = parse_num(optarg, 1, 1024, &v); o->n = (long)v; break;
        case OPT_MAX_TOKENS: bad = parse_num(optarg, 1, 1 << 20, &v); o->max_tokens = (long)v; break;
        case OPT_TOP_K: bad = parse_num(optarg, 0, 1 << 30, &v); o->top_k = (long)v; break;
        case OPT_SEED: bad = parse_num(optarg, 0, 2147483647.0, &v); o->seed = (long)v; break;
        case OPT_TEMPERATURE: bad = parse_num(optarg, 0, 1000, &o->temperature); break;
        case OPT_TOP_P: bad = parse_num(optarg, 0, 1, &o->top_p); break;
        case OPT_CFG: bad = parse_num(optarg, 0, 1000, &o->cfg_scale); break;
        }
        if (bad || ((opt == OPT_N || opt == OPT_MAX_TOKENS || opt == OPT_TOP_K || opt == OPT_SEED) && v != floor(v)))
            return cli_usage_error(c, argv[0], "%s%s: bad value '%s'", idx >= 0 ? "--" : "-",
                                   idx >= 0 ? ALL_OPTS[idx].name : "n", optarg); /* idx < 0: the short -n */
    }
    if (optind < argc) return cli_usage_error(c, argv[0], "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* ---- small commands ------------------------------------------------------ */

int cmd_health(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, "usage: dsr health\n  Prints the server's status, model and policy_version.\n", &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    json_t *resp;
    struct dsr_call_err e;
    if (dsr_health(c->client, &resp, &e) != 0) return cli_fail_call(c, "health", &e);
    if (c->json) cli_print_json(c, resp);
    else
        fprintf(c->out, "%s  model=%s  policy_version=%ld\n", json_string_value(json_object_get(resp, "status")),
                json_string_value(json_object_get(resp, "model")), dsr_policy_version(resp));
    json_decref(resp);
    return CLI_EXIT_OK;
}

int cmd_model(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, "usage: dsr model\n  Prints the model's configuration (JSON).\n", &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    json_t *resp;
    struct dsr_call_err e;
    if (dsr_model(c->client, &resp, &e) != 0) return cli_fail_call(c, "model", &e);
    if (c->json) cli_print_json(c, resp);
    else {
        char *s = json_dumps(resp, JSON_INDENT(2));
        if (s) fprintf(c->out, "%s\n", s);
        free(s);
    }
    json_decref(resp);
    return CLI_EXIT_OK;
}

int cmd_tokenize(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_TEXT, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, "usage: dsr tokenize --text TEXT\n  Prints the token ids (no special tokens).\n", &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (!o.text) return cli_usage_error(c, argv[0], "--text is required");
    json_t *resp;
    struct dsr_call_err e;
    if (dsr_tokenize(c->client, o.text, 0, &resp, &e) != 0) return cli_fail_call(c, "tokenize", &e);
    if (c->json) cli_print_json(c, resp);
    else cli_print_json(c, json_object_get(resp, "tokens"));
    json_decref(resp);
    return CLI_EXIT_OK;
}

/* ---- score ------------------------------------------------------------------ */

static const char SCORE_HELP[] =
    "usage: dsr score --image A.png --response TEXT   (understanding: R_U)\n"
    "       dsr score --prompt TEXT --image B.png     (generation: R_G)\n"
    "  R_U: mean log-prob of the image's VQ codes given the response as a prompt.\n"
    "  R_G: mean log-prob of the prompt's tokens given the image.\n"
    "  --token-logprobs  also return per-token log-probs (with --json)\n";

int cmd_score(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_IMAGE, OPT_RESPONSE, OPT_PROMPT, OPT_TOKEN_LOGPROBS, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, SCORE_HELP, &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (!o.image) return cli_usage_error(c, argv[0], "--image is required");
    if ((o.response != NULL) == (o.prompt != NULL))
        return cli_usage_error(c, argv[0], "give exactly one of --response (R_U) or --prompt (R_G)");
    struct dsr_call_err e;
    json_t *image = dsr_image_png_file(o.image, 0, &e);
    if (!image) return cli_fail_call(c, "score", &e);
    int und = o.response != NULL;
    json_t *item = und ? json_pack("{s:s, s:o, s:{s:s}}", "task", "understanding", "image", image, "response",
                                   "text", o.response)
                       : json_pack("{s:s, s:{s:s}, s:o}", "task", "generation", "prompt", "text", o.prompt, "image",
                                   image);
    if (!item) return cli_usage_error(c, argv[0], "text is not valid UTF-8");
    json_t *req = json_pack("{s:[o], s:b}", "items", item, "token_logprobs", o.token_logprobs);
    json_t *resp;
    rc = dsr_score(c->client, req, &resp, &e);
    json_decref(req);
    if (rc != 0) return cli_fail_call(c, "score", &e);
    const json_t *r0 = json_array_get(json_object_get(resp, "items"), 0);
    if (!json_is_number(json_object_get(r0, "reward"))) {
        json_decref(resp);
        fprintf(c->err, "dsr: score: the response has no items[0].reward\n");
        return CLI_EXIT_FAIL;
    }
    if (c->json) cli_print_json(c, resp);
    else
        fprintf(c->out, "%s %.6f  (sum %.4f over %lld %s, policy_version %ld)\n", und ? "R_U" : "R_G",
                json_number_value(json_object_get(r0, "reward")), json_number_value(json_object_get(r0, "sum")),
                (long long)json_integer_value(json_object_get(r0, "count")), und ? "image codes" : "prompt tokens",
                dsr_policy_version(resp));
    json_decref(resp);
    return CLI_EXIT_OK;
}

/* ---- rollout ---------------------------------------------------------------- */

static const char ROLLOUT_HELP[] =
    "usage: dsr rollout --image A.png [-n 8] [--question Q] [--max-tokens N]   (captions, R_U)\n"
    "       dsr rollout --prompt TEXT [-n 4] [--cfg-scale S] [--out DIR]      (images, R_G)\n"
    "  -n N             group size (default 8 captions / 4 images)\n"
    "  --temperature X  0 = greedy (default: the model's, GET /model)\n"
    "  --top-k N, --top-p X  truncation (default: the model's, GET /model)\n"
    "  --seed N\n"
    "  --out DIR        write rollout-NN.png and contact-sheet.png (rewards in captions)\n";

/* Writes bytes to dir/name. */
static int write_file(struct cli *c, const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(c->err, "dsr: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* Saves each rollout's PNG and a contact sheet of the group into dir. */
static int save_images(struct cli *c, const json_t *rollouts, const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(c->err, "dsr: --out %s: cannot create directory\n", dir);
        return -1;
    }
    size_t n = json_array_size(rollouts);
    if (n > CONTACT_MAX_IMAGES) n = CONTACT_MAX_IMAGES;
    struct sheet_image sheet[CONTACT_MAX_IMAGES];
    char labels[CONTACT_MAX_IMAGES][32];
    int rc = 0;
    size_t decoded = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *r = json_array_get(rollouts, i);
        const char *b64 = json_string_value(json_object_get(r, "png"));
        size_t png_n = 0;
        uint8_t *png = NULL;
        size_t bad_at = 0;
        if (b64 && base64_decode(b64, strlen(b64), &png, &png_n, &bad_at) != 0) png = NULL;
        char path[4200];
        snprintf(path, sizeof path, "%s/rollout-%02zu.png", dir, i);
        struct dsr_err err;
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        if (!png) {
            fprintf(c->err, "dsr: rollout %zu has no decodable \"png\"\n", i);
            rc = -1;
        } else if (write_file(c, path, png, png_n) != 0) {
            rc = -1;
        } else if (png_decode_rgb8(png, png_n, NULL, &rgb, &w, &h, &err) != 0) {
            fprintf(c->err, "dsr: rollout %zu: %s\n", i, err.msg);
            rc = -1;
        } else {
            snprintf(labels[i], sizeof labels[i], "#%zu R=%.3f", i, json_number_value(json_object_get(r, "reward")));
            sheet[i] = (struct sheet_image){rgb, w, h, labels[i]};
            decoded++;
        }
        free(png);
    }
    if (rc == 0 && decoded > 0) {
        uint8_t *img = NULL, *png = NULL;
        size_t png_n = 0;
        int w, h;
        struct dsr_err err;
        char path[4200];
        snprintf(path, sizeof path, "%s/contact-sheet.png", dir);
        if (contact_sheet_build(sheet, (int)decoded, &img, &w, &h, &err) != 0 ||
            png_encode_rgb8(img, w, h, &png, &png_n, &err) != 0) {
            fprintf(c->err, "dsr: contact sheet: %s\n", err.msg);
            rc = -1;
        } else {
            rc = write_file(c, path, png, png_n);
        }
        free(img);
        free(png);
    }
    for (size_t i = 0; i < decoded; i++) free((void *)sheet[i].rgb);
    return rc;
}

/* Adds the sampling fields that were given on the command line. */
static void add_sampling(json_t *req, const struct cmd_opts *o) {
    if (o->max_tokens >= 0) json_object_set_new(req, "max_tokens", json_integer(o->max_tokens));
    if (o->temperature >= 0) json_object_set_new(req, "temperature", json_real(o->temperature));
    if (o->top_k >= 0) json_object_set_new(req, "top_k", json_integer(o->top_k));
    if (o->top_p >= 0) json_object_set_new(req, "top_p", json_real(o->top_p));
    if (o->seed >= 0) json_object_set_new(req, "seed", json_integer(o->seed));
    if (o->cfg_scale >= 0) json_object_set_new(req, "cfg_scale", json_real(o->cfg_scale));
}

int cmd_rollout(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_IMAGE, OPT_PROMPT, OPT_QUESTION, OPT_N, OPT_MAX_TOKENS, OPT_TEMPERATURE,
                                  OPT_TOP_K, OPT_TOP_P, OPT_SEED, OPT_CFG, OPT_OUT, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, ROLLOUT_HELP, &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if ((o.image != NULL) == (o.prompt != NULL))
        return cli_usage_error(c, argv[0], "give exactly one of --image (captions) or --prompt (images)");
    int und = o.image != NULL;
    if (und && (o.out || o.cfg_scale >= 0)) return cli_usage_error(c, argv[0], "--out and --cfg-scale are for --prompt");
    if (!und && (o.question || o.max_tokens >= 0)) return cli_usage_error(c, argv[0], "--question and --max-tokens are for --image");
    struct dsr_call_err e;
    json_t *req;
    if (und) {
        json_t *image = dsr_image_png_file(o.image, 0, &e);
        if (!image) return cli_fail_call(c, "rollout", &e);
        req = json_pack("{s:s, s:o, s:I, s:b}", "task", "understanding", "image", image, "n",
                        (json_int_t)(o.n > 0 ? o.n : 8), "score", 1);
        if (req && o.question) json_object_set_new(req, "question", json_string(o.question));
    } else {
        req = json_pack("{s:s, s:{s:s}, s:I, s:b, s:b}", "task", "generation", "prompt", "text", o.prompt, "n",
                        (json_int_t)(o.n > 0 ? o.n : 4), "score", 1, "return_png", o.out != NULL);
    }
    if (!req) return cli_usage_error(c, argv[0], "text is not valid UTF-8");
    add_sampling(req, &o);
    json_t *resp;
    rc = dsr_rollout(c->client, req, &resp, &e);
    json_decref(req);
    if (rc != 0) return cli_fail_call(c, "rollout", &e);
    const json_t *rollouts = json_object_get(resp, "rollouts");
    if (!json_is_array(rollouts)) {
        json_decref(resp);
        fprintf(c->err, "dsr: rollout: the response has no \"rollouts\"\n");
        return CLI_EXIT_FAIL;
    }
    rc = CLI_EXIT_OK;
    if (o.out && save_images(c, rollouts, o.out) != 0) rc = CLI_EXIT_FAIL;
    if (c->json) cli_print_json(c, resp);
    else {
        for (size_t i = 0; i < json_array_size(rollouts); i++) {
            const json_t *r = json_array_get(rollouts, i);
            fprintf(c->out, "[%zu] %s=%.4f  ", i, und ? "R_U" : "R_G", json_number_value(json_object_get(r, "reward")));
            if (und) {
                cli_print_text(c->out, json_string_value(json_object_get(r, "text")) ?: "");
                fputc('\n', c->out);
            }
            else if (o.out) fprintf(c->out, "%s/rollout-%02zu.png\n", o.out, i);
            else fprintf(c->out, "%zu codes\n", json_array_size(json_object_get(r, "codes")));
        }
        if (o.out && rc == CLI_EXIT_OK) fprintf(c->out, "contact sheet: %s/contact-sheet.png\n", o.out);
    }
    json_decref(resp);
    return rc;
}

/* ---- admin commands ------------------------------------------------------------ */

int cmd_update(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_FILE, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed,
                       "usage: dsr update --file REQ.json   ('-' reads stdin)\n"
                       "  Sends one /update (GRPO or SimPO, proto/API.md) with the admin key.\n",
                       &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (!o.file) return cli_usage_error(c, argv[0], "--file is required");
    json_error_t jerr;
    json_t *req = strcmp(o.file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(o.file, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return cli_usage_error(c, argv[0], "%s: not a JSON object (%s, line %d)", o.file, jerr.text, jerr.line);
    }
    json_t *resp;
    struct dsr_call_err e;
    rc = dsr_update(c->client, req, &resp, &e);
    json_decref(req);
    if (rc != 0) return cli_fail_call(c, "update", &e);
    if (c->json) cli_print_json(c, resp);
    else
        fprintf(c->out, "policy_version %ld  loss %.6g  grad_norm %.6g  clip_fraction %.4g  kl %.6g  tokens %lld\n",
                dsr_policy_version(resp), json_number_value(json_object_get(resp, "loss")),
                json_number_value(json_object_get(resp, "grad_norm")),
                json_number_value(json_object_get(resp, "clip_fraction")),
                json_number_value(json_object_get(resp, "kl")),
                (long long)json_integer_value(json_object_get(resp, "tokens")));
    json_decref(resp);
    return CLI_EXIT_OK;
}

int cmd_checkpoint(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_NAME, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, "usage: dsr checkpoint --name NAME\n  Writes NAME under the server's --checkpoint-dir.\n", &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (!o.name) return cli_usage_error(c, argv[0], "--name is required");
    json_t *resp;
    struct dsr_call_err e;
    if (dsr_checkpoint(c->client, o.name, &resp, &e) != 0) return cli_fail_call(c, "checkpoint", &e);
    if (c->json) cli_print_json(c, resp);
    else
        fprintf(c->out, "%s  policy_version %ld\n", json_string_value(json_object_get(resp, "path")),
                dsr_policy_version(resp));
    json_decref(resp);
    return CLI_EXIT_OK;
}

int cmd_reload(struct cli *c, int argc, char **argv) {
    static const int allowed[] = {OPT_PATH, 0};
    struct cmd_opts o;
    int rc = parse_cmd(c, argc, argv, allowed, "usage: dsr reload --path NAME\n  Loads a checkpoint under the server's --checkpoint-dir.\n", &o);
    if (rc) return rc == 1 ? CLI_EXIT_OK : rc;
    if (!o.path) return cli_usage_error(c, argv[0], "--path is required");
    json_t *resp;
    struct dsr_call_err e;
    if (dsr_reload(c->client, o.path, &resp, &e) != 0) return cli_fail_call(c, "reload", &e);
    if (c->json) cli_print_json(c, resp);
    else fprintf(c->out, "reloaded %s  policy_version %ld\n", o.path, dsr_policy_version(resp));
    json_decref(resp);
    return CLI_EXIT_OK;
}
