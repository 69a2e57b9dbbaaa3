#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"
#include "nn/lora.h"

/* OPT_FLAG: command line only (--help, --routes); OPT_BOOL: a switch on the
 * command line, 1/true/0/false in its environment variable. */
enum opt_kind { OPT_STR, OPT_INT, OPT_SIZE, OPT_FLAG, OPT_BOOL, OPT_LOGFMT, OPT_QUANT, OPT_WEIGHTS, OPT_KV, OPT_FLOAT };

struct opt {
    const char *name; /* flag without "--"; env var DSR_<NAME> */
    enum opt_kind kind;
    const char *help;
};

static const struct opt OPTS[] = {
    {"model", OPT_STR, "HF checkpoint dir (config.json, safetensors, optional tokenizer.json, "
                       "preprocessor_config.json, generation_config.json), or builtin:shapes (the default: the "
                       "trained shapes-world model compiled into dsrd) or builtin:random (random weights)"},
    {"host", OPT_STR, "listen address (default 127.0.0.1)"},
    {"port", OPT_INT, "listen port (default 8080; 0 = any free port, logged)"},
    {"threads", OPT_INT, "compute threads for OpenMP/OpenBLAS (default: all cores)"},
    {"http-threads", OPT_INT, "requests handled at once: decoded, prepared, waiting for the compute worker "
                              "(default 64); more wait their turn.  Connections cost no thread"},
    {"max-connections", OPT_INT, "open HTTP connections, idle keep-alive ones included (default 4096; capped "
                                 "by the open-files limit)"},
    {"max-connections-per-ip", OPT_INT, "open connections from one client address (default 1024; 0 = no limit)"},
    {"header-timeout", OPT_INT, "seconds a connection may take to send a request's headers, counted from its "
                                "start or its previous response, so also how long an idle keep-alive connection "
                                "stays open (default 15)"},
    {"idle-timeout", OPT_INT, "seconds without a byte either way before a connection is closed, e.g. a stalled "
                              "upload (default 60; never while its request is being computed)"},
    {"api-key", OPT_STR, "require 'Authorization: Bearer KEY' on every route but /health, /metrics, /openapi.yaml and the "
                         "web page (/, /ui/...)"},
    {"admin-key", OPT_STR, "key required instead for /update, /checkpoint, /reload"},
    {"checkpoint-dir", OPT_STR, "directory that /checkpoint writes and /reload reads (paths confined to it)"},
    {"image-root", OPT_STR, "directory for {\"path\": ...} images (paths confined to it)"},
    {"max-body", OPT_SIZE, "largest request body in bytes, K/M/G suffixes (default 64M); larger: 413"},
    {"queue-depth", OPT_INT, "jobs waiting for the compute worker before 503 (default 64)"},
    {"log-format", OPT_LOGFMT, "text | json (default text)"},
    {"quantizer", OPT_QUANT, "VQ encode mode: l2 (Janus) | euclidean (HF) (default l2)"},
    {"weights-dtype", OPT_WEIGHTS,
     "how weight matrices are held in memory: bf16 (half the memory, faster decode; a full /update widens the "
     "trainable ones to float32 once, frozen ones stay bf16), f32, or auto: bf16 when the checkpoint's are and "
     "the model takes >= 1 GiB as float32 (default auto; compute is float32 either way)"},
    {"kv-dtype", OPT_KV,
     "element type of the rollouts' KV cache: f32, or bf16 (half its memory and of the bytes each decode step "
     "reads from it; keys and values rounded to BF16, so sampled tokens' logprobs differ from /logprobs' by that "
     "rounding) (default f32; scoring always keeps float32)"},
    {"lora-rank", OPT_INT, "train LoRA adapters of this rank instead of the weights (default 0: full training): "
                           "/update trains only the adapters (AdamW state only for them), the base stays frozen "
                           "(BF16 when held so), /checkpoint writes a PEFT adapter directory"},
    {"lora-alpha", OPT_FLOAT, "LoRA scaling numerator: adapters add (alpha / rank)·x·Aᵀ·Bᵀ (default 8, PEFT's)"},
    {"lora-targets", OPT_STR, "linears to adapt, comma-separated among the language model's q_proj, k_proj, "
                              "v_proj, o_proj, gate_proj, up_proj, down_proj (all = these seven, the default), "
                              "the generation head's generation_head.proj_out, generation_head.vision_head, and "
                              "aligner / generation_aligner (every linear of that MLP)"},
    {"adapter", OPT_STR, "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) loaded on "
                         "top of --model at start; its r, lora_alpha and target_modules set --lora-* (given flags "
                         "must agree)"},
    {"template-user-prefix", OPT_STR, "template: text before the user turn (default \"<|User|>: \")"},
    {"template-assistant-suffix", OPT_STR, "template: text ending the user turn (default \"\\n\\n<|Assistant|>:\")"},
    {"template-question-prefix", OPT_STR, "template: text between [EOI] and the question (default \"\\n\")"},
    {"template-target-prefix", OPT_STR, "template: text before the prompt in the R_G target (default \" \")"},
    {"dual-question", OPT_STR, "question asked for R_G (default \"Describe this image.\")"},
    {"boi-id", OPT_INT, "begin-of-image token id when neither generation_config.json nor the tokenizer gives it"},
    {"eoi-id", OPT_INT, "end-of-image token id, likewise"},
    {"rollout-cache", OPT_INT, "rollouts remembered for /update (default 4096)"},
    {"rollout-cache-bytes", OPT_SIZE, "memory bound of the rollout cache (default 1G)"},
    {"idempotency-records", OPT_INT, "/update responses remembered by idempotency_key (default 1024)"},
    {"max-batch-tokens", OPT_INT, "rows of one batched scoring forward (default 16384)"},
    {"stats-history", OPT_INT, "updates GET /stats (and the web page's training view) remembers (default 1000)"},
    {"reference", OPT_BOOL, "keep the start-up weights as the KL reference: /update with beta > 0 needs no "
                            "ref_logprobs, and every GRPO /update reports kl to the start (one more copy of the "
                            "trainable weights and one more forward per update)"},
    {"update-memory-budget", OPT_SIZE, "activation bytes of one /update micro-batch, K/M/G suffixes (default 4G; "
                                       "0 = unbounded); layer internals are kept for the backward when they fit, "
                                       "else recomputed; the first /update also allocates gradients and AdamW "
                                       "moments, 3x the trainable weights"},
    {"allowed-origins", OPT_STR, "browser origins allowed to call the API (CORS), comma-separated, e.g. "
                                 "\"https://ui.example,http://localhost:3000\", or * for any; default: none"},
    {"routes", OPT_FLAG, "print the route table (METHOD PATH) and exit"},
    {"version", OPT_FLAG, "print the version and source commit and exit"},
    {"help", OPT_FLAG, "show this help and exit"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

/* What --help shows after each flag: the kind of value it takes. */
static const char *metavar(const struct opt *o) {
    static const struct { const char *name, *var; } STR_VARS[] = {
        {"model", " DIR"}, {"adapter", " DIR"}, {"lora-targets", " LIST"}, {"checkpoint-dir", " DIR"}, {"image-root", " DIR"}, {"host", " ADDR"},
        {"api-key", " KEY"}, {"admin-key", " KEY"}, {"allowed-origins", " LIST"},
    };
    switch (o->kind) {
    case OPT_FLAG:
    case OPT_BOOL: return "";
    case OPT_INT: return " N";
    case OPT_SIZE: return " SIZE";
    case OPT_LOGFMT: return " text|json";
    case OPT_QUANT: return " l2|euclidean";
    case OPT_WEIGHTS: return " auto|bf16|f32";
    case OPT_KV: return " f32|bf16";
    case OPT_FLOAT: return " X";
    case OPT_STR: break;
    }
    for (size_t i = 0; i < sizeof STR_VARS / sizeof STR_VARS[0]; i++)
        if (!strcmp(o->name, STR_VARS[i].name)) return STR_VARS[i].var;
    return " TEXT";
}

void dsrd_config_usage(FILE *out) {
    fprintf(out, "usage: dsrd [options]\n\nServes a Janus model over HTTP/JSON (see proto/openapi.yaml).\n"
                 "Every option can also be given as an environment variable DSR_<NAME>\n"
                 "(e.g. --api-key → DSR_API_KEY); the flag wins.\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        fprintf(out, "  --%s%s\n      %s\n", OPTS[i].name, metavar(&OPTS[i]), OPTS[i].help);
    }
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *out) {
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return -1;
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
    if (*end || v == 0 || v > (1ull << 40) / mul) return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static int apply(struct dsrd_config *c, const struct opt *o, const char *v, FILE *err_out) {
    const char *n = o->name;
    long long x = 0;
    if (o->kind == OPT_INT && parse_long(v, -1, 1 << 30, &x)) {
        fprintf(err_out, "dsrd: --%s: '%s' is not an integer in range\n", n, v);
        return -1;
    }
    if (!strcmp(n, "model")) c->model_dir = v;
    else if (!strcmp(n, "host")) c->host = v;
    else if (!strcmp(n, "port")) c->port = (int)x;
    else if (!strcmp(n, "threads")) c->threads = (int)x;
    else if (!strcmp(n, "http-threads")) c->http_threads = (int)x;
    else if (!strcmp(n, "max-connections")) c->max_connections = (int)x;
    else if (!strcmp(n, "max-connections-per-ip")) c->max_connections_per_ip = (int)x;
    else if (!strcmp(n, "header-timeout")) c->header_timeout = (int)x;
    else if (!strcmp(n, "idle-timeout")) c->idle_timeout = (int)x;
    else if (!strcmp(n, "api-key")) c->api_key = v[0] ? v : NULL;
    else if (!strcmp(n, "admin-key")) c->admin_key = v[0] ? v : NULL;
    else if (!strcmp(n, "checkpoint-dir")) c->checkpoint_dir = v;
    else if (!strcmp(n, "image-root")) c->image_root = v;
    else if (!strcmp(n, "allowed-origins")) c->allowed_origins = v[0] ? v : NULL;
    else if (!strcmp(n, "queue-depth")) c->queue_depth = (int)x;
    else if (!strcmp(n, "template-user-prefix")) c->tpl.user_prefix = v;
    else if (!strcmp(n, "template-assistant-suffix")) c->tpl.assistant_suffix = v;
    else if (!strcmp(n, "template-question-prefix")) c->tpl.question_prefix = v;
    else if (!strcmp(n, "template-target-prefix")) c->tpl.target_prefix = v;
    else if (!strcmp(n, "dual-question")) c->tpl.dual_question = v;
    else if (!strcmp(n, "boi-id")) c->boi_id = (int)x;
    else if (!strcmp(n, "eoi-id")) c->eoi_id = (int)x;
    else if (!strcmp(n, "rollout-cache")) c->rollout_cache_count = (int)x;
    else if (!strcmp(n, "idempotency-records")) c->idempotency_records = (int)x;
    else if (!strcmp(n, "max-batch-tokens")) c->max_batch_tokens = (int)x;
    else if (!strcmp(n, "stats-history")) c->stats_history = (int)x;
    else if (!strcmp(n, "lora-rank")) c->lora.rank = (int)x;
    else if (!strcmp(n, "adapter")) c->adapter = v[0] ? v : NULL;
    else if (!strcmp(n, "lora-targets")) {
        struct dsr_err e;
        if (lora_parse_targets(v, &c->lora.targets, &e)) {
            fprintf(err_out, "dsrd: --%s: %s\n", n, e.msg);
            return -1;
        }
        c->lora_targets_given = true;
    } else if (o->kind == OPT_FLOAT) {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d > 0) || d > 1e6) {
            fprintf(err_out, "dsrd: --%s: '%s' must be a number in (0, 1e6]\n", n, v);
            return -1;
        }
        c->lora.alpha = (float)d;
        c->lora_alpha_given = true;
    }
    else if (o->kind == OPT_SIZE) {
        size_t sz;
        if (parse_size(v, &sz)) {
            fprintf(err_out, "dsrd: --%s: '%s' is not a size (e.g. 65536, 64M)\n", n, v);
            return -1;
        }
        if (!strcmp(n, "max-body")) c->max_body = sz;
        else if (!strcmp(n, "update-memory-budget")) c->update_memory_budget = sz;
        else c->rollout_cache_bytes = sz;
    } else if (o->kind == OPT_BOOL) {
        if (!strcmp(v, "1") || !strcmp(v, "true")) c->reference = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false")) c->reference = false;
        else {
            fprintf(err_out, "dsrd: --%s: '%s' must be 1, true, 0 or false\n", n, v);
            return -1;
        }
    } else if (o->kind == OPT_LOGFMT) {
        if (!strcmp(v, "text")) c->log_format = LOG_TEXT;
        else if (!strcmp(v, "json")) c->log_format = LOG_JSON;
        else {
            fprintf(err_out, "dsrd: --log-format must be text or json\n");
            return -1;
        }
    } else if (o->kind == OPT_QUANT) {
        if (!strcmp(v, "l2")) c->quantizer = VQ_QUANT_L2;
        else if (!strcmp(v, "euclidean")) c->quantizer = VQ_QUANT_EUCLIDEAN;
        else {
            fprintf(err_out, "dsrd: --quantizer must be l2 or euclidean\n");
            return -1;
        }
    } else if (o->kind == OPT_WEIGHTS) {
        if (!strcmp(v, "auto")) c->weights = JANUS_WEIGHTS_AUTO;
        else if (!strcmp(v, "bf16")) c->weights = JANUS_WEIGHTS_BF16;
        else if (!strcmp(v, "f32")) c->weights = JANUS_WEIGHTS_F32;
        else {
            fprintf(err_out, "dsrd: --weights-dtype must be auto, bf16 or f32\n");
            return -1;
        }
    } else if (o->kind == OPT_KV) {
        if (!strcmp(v, "f32")) c->kv_dtype = KV_F32;
        else if (!strcmp(v, "bf16")) c->kv_dtype = KV_BF16;
        else {
            fprintf(err_out, "dsrd: --kv-dtype must be f32 or bf16\n");
            return -1;
        }
    }
    return 0;
}

static int check_ranges(const struct dsrd_config *c, FILE *err_out) {
    const char *bad = c->port < 0 || c->port > 65535           ? "--port must be in [0, 65535]"
                      : c->threads < 0                          ? "--threads must be >= 0"
                      : c->http_threads < 1 || c->http_threads > 4096 ? "--http-threads must be in [1, 4096]"
                      : c->max_connections < 1                  ? "--max-connections must be >= 1"
                      : c->max_connections_per_ip < 0           ? "--max-connections-per-ip must be >= 0"
                      : c->header_timeout < 1                   ? "--header-timeout must be >= 1"
                      : c->idle_timeout < 1                     ? "--idle-timeout must be >= 1"
                      : c->queue_depth < 1                      ? "--queue-depth must be >= 1"
                      : c->rollout_cache_count < 1              ? "--rollout-cache must be >= 1"
                      : c->idempotency_records < 1              ? "--idempotency-records must be >= 1"
                      : c->max_batch_tokens < 1                 ? "--max-batch-tokens must be >= 1"
                      : c->stats_history < 1 || c->stats_history > 1000000 ? "--stats-history must be in [1, 1000000]"
                      : c->boi_id < -1 || c->eoi_id < -1        ? "--boi-id/--eoi-id must be >= 0"
                      : c->lora.rank < 0 || c->lora.rank > LORA_MAX_RANK ? "--lora-rank must be in [0, 1024]"
                                                                : NULL;
    if (bad) fprintf(err_out, "dsrd: %s\n", bad);
    return bad ? -1 : 0;
}

int dsrd_config_parse(int argc, char **argv, struct dsrd_config *c, FILE *err_out) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->http_threads = 64;
    c->max_connections = 4096;
    c->max_connections_per_ip = 1024;
    c->header_timeout = 15;
    c->idle_timeout = 60;
    c->max_body = 64u << 20;
    /* bounded by default: kept activations cost ~3.3 MB per token at Janus-Pro-1B */
    c->update_memory_budget = (size_t)4 << 30;
    c->queue_depth = 64;
    c->quantizer = VQ_QUANT_L2;
    c->weights = JANUS_WEIGHTS_AUTO;
    c->kv_dtype = KV_F32;
    c->lora = (struct lora_config){.rank = 0, .alpha = LORA_DEFAULT_ALPHA, .targets = LORA_LM_TARGETS};
    c->boi_id = c->eoi_id = -1;
    c->rollout_cache_count = 4096;
    c->rollout_cache_bytes = (size_t)1 << 30;
    c->idempotency_records = 1024;
    c->max_batch_tokens = 16384;
    c->stats_history = 1000;
    janus_template_defaults(&c->tpl);

    /* environment first, flags after (flags win) */
    for (size_t i = 0; i < N_OPTS; i++) {
        if (OPTS[i].kind == OPT_FLAG) continue;
        char env[64] = "DSR_";
        size_t k = 4;
        for (const char *p = OPTS[i].name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[k] = 0;
        const char *v = getenv(env);
        if (v && apply(c, &OPTS[i], v, err_out)) return -1;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err_out, "dsrd: unexpected argument '%s' (see --help)\n", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t i = 0; i < N_OPTS; i++)
            if (strlen(OPTS[i].name) == nlen && !strncmp(OPTS[i].name, name, nlen)) o = &OPTS[i];
        if (!o) {
            fprintf(err_out, "dsrd: unknown option '%s' (see --help)\n", arg);
            return -1;
        }
        if (o->kind == OPT_BOOL) {
            if (apply(c, o, eq ? eq + 1 : "1", err_out)) return -1;
            continue;
        }
        if (o->kind == OPT_FLAG) {
            if (!strcmp(o->name, "help")) {
                dsrd_config_usage(stdout);
                return 1;
            }
            if (!strcmp(o->name, "version")) {
                printf("dsrd %s (commit %s)\n", dsr_version(), dsr_commit());
                return 1;
            }
            c->list_routes = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!v) {
            fprintf(err_out, "dsrd: --%s needs a value\n", o->name);
            return -1;
        }
        if (apply(c, o, v, err_out)) return -1;
    }
    return check_ranges(c, err_out);
}
