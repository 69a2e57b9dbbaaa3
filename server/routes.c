#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openapi_doc.h"
#include "proto_response.h"

static const struct route ROUTES[] = {
    /* the web page: static files compiled in, no key (the page asks for it) */
    {"GET", "/", AUTH_NONE, route_ui_index, true},
    {"GET", "/ui/{path}", AUTH_NONE, route_ui_asset, true},
    {"GET", "/health", AUTH_NONE, route_health, true},
    {"GET", "/metrics", AUTH_NONE, route_metrics, true},
    {"GET", "/model", AUTH_API, route_model, true},
    {"GET", "/openapi.yaml", AUTH_NONE, route_openapi, true},
    {"GET", "/stats", AUTH_API, route_stats, true},
    {"POST", "/tokenize", AUTH_API, route_tokenize, false},
    {"POST", "/detokenize", AUTH_API, route_detokenize, false},
    {"POST", "/logprobs", AUTH_API, route_logprobs, false},
    {"POST", "/score", AUTH_API, route_score, false},
    {"POST", "/rollout", AUTH_API, route_rollout, false},
    {"POST", "/openrlhf/reward", AUTH_API, route_openrlhf, false},
    {"POST", "/update", AUTH_ADMIN, route_update, false},
    {"POST", "/checkpoint", AUTH_ADMIN, route_checkpoint, false},
    {"POST", "/reload", AUTH_ADMIN, route_reload, false},
    {NULL, NULL, AUTH_NONE, NULL, false},
};

const struct route *routes_table(void) { return ROUTES; }

bool route_matches(const struct route *r, const char *path) {
    static const char REST[] = "{path}";
    size_t n = strlen(r->path), k = sizeof REST - 1;
    if (n >= k && strcmp(r->path + n - k, REST) == 0)
        return strncmp(r->path, path, n - k) == 0 && path[n - k] != 0;
    return strcmp(r->path, path) == 0;
}

/* HEAD is GET without the body (RFC 9110 9.3.2); libmicrohttpd leaves the
 * body out of a HEAD response by itself. */
static bool method_matches(const struct route *r, const char *method) {
    return strcmp(r->method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

const struct route *routes_find(const char *method, const char *path, bool *path_known) {
    *path_known = false;
    for (const struct route *r = ROUTES; r->path; r++) {
        if (!route_matches(r, path)) continue;
        *path_known = true;
        if (method_matches(r, method)) return r;
    }
    return NULL;
}

void routes_allowed(const char *path, char *out, size_t size) {
    size_t n = 0;
    out[0] = 0;
    for (const struct route *r = ROUTES; r->path; r++)
        if (strcmp(r->path, path) == 0 && n < size)
            n += (size_t)snprintf(out + n, size - n, "%s%s%s", n ? ", " : "", r->method,
                                  strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
}

struct janus_runtime *route_runtime(struct server *s, struct reply *out) {
    enum worker_state st = worker_get_state(&s->worker);
    if (st == WORKER_READY) return &s->worker.rt;
    if (st == WORKER_LOADING) reply_errorf(out, 503, NULL, "the model is loading");
    else reply_errorf(out, 503, NULL, "the model failed to load: %s", s->worker.load_error);
    out->retry_after = 5; /* loading takes seconds to minutes */
    return NULL;
}

json_t *route_body(struct server *s, const struct request *rq, struct reply *out) {
    if (!route_runtime(s, out)) return NULL;
    json_error_t je;
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) reply_errorf(out, 400, NULL, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
    return j;
}

static json_t *stamped(struct server *s, json_t *o) {
    if (o) {
        json_object_set_new(o, "model", json_string(s->worker.rt.name));
        json_object_set_new(o, "policy_version", json_integer(atomic_load(&s->worker.policy_version)));
    }
    return o;
}

void route_health(struct server *s, const struct request *rq, struct reply *out) {
    (void)rq;
    if (!route_runtime(s, out)) return;
    if (!atomic_load(&s->worker.model_finite)) {
        reply_errorf(out, 503, NULL, "the model's weights are not finite (%s holds NaN or infinity); /reload a good "
                     "checkpoint", s->worker.nonfinite_tensor);
        out->retry_after = 30; /* until an operator reloads */
        return;
    }
    reply_json(out, 200, stamped(s, json_pack("{s:s}", "status", "ok")));
}

void route_metrics(struct server *s, const struct request *rq, struct reply *out) {
    (void)rq;
    struct metrics_gauges g = {
        .queue_depth = atomic_load(&s->worker.queue_depth),
        .policy_version = atomic_load(&s->worker.policy_version),
        .rollouts_cached = atomic_load(&s->worker.rollouts_cached),
        .ready = worker_get_state(&s->worker) == WORKER_READY,
        .start_time = s->start_time,
        .model_finite = atomic_load(&s->worker.model_finite),
    };
    conn_guard_counts(&s->guard, &g.connections_open, &g.header_timeouts);
    out->status = 200;
    out->text = metrics_render(&s->metrics, &g);
    out->content_type = "text/plain; version=0.0.4";
}

/* The API contract (proto/openapi.yaml, compiled in) for tools and UIs. */
void route_openapi(struct server *s, const struct request *rq, struct reply *out) {
    (void)s;
    (void)rq;
    out->status = 200;
    out->text = strdup(dsr_openapi_yaml);
    out->content_type = "application/yaml";
}

void route_model(struct server *s, const struct request *rq, struct reply *out) {
    (void)rq;
    struct janus_runtime *rt = route_runtime(s, out);
    if (!rt) return;
    const struct janus_config *c = &rt->model.cfg;
    const struct janus_template *t = &rt->tpl;
    char targets[256];
    const struct lora_config *lora = &rt->model.lora;
    lora_format_targets(lora->targets, ",", targets, sizeof targets);
    struct proto_model_info m = {
        .name = rt->name,
        .description = rt->embedded         ? "builtin:random: deterministic random weights, byte tokenizer (tests, "
                                              "benchmarks)"
                       : rt->builtin_shapes ? "builtin:shapes: the default model, trained on the shapes world and "
                                              "compiled into dsrd"
                                            : "loaded from --model",
        .embedded_random_weights = rt->embedded,
        .params_total = (long long)pt_count(&rt->model.params, false),
        .params_trainable = (long long)pt_count(&rt->model.params, true),
        .vocab_size = c->text.vocab_size,
        .bos = rt->ids.bos, .eos = rt->eos, .pad = rt->pad, .boi = rt->ids.boi, .eoi = rt->ids.eoi,
        .image = rt->ids.image,
        .image_size = c->vision.image_size, .vq_image_size = rt->vq_size, .num_image_tokens = rt->ids.n_image_tokens,
        .codebook_size = c->vq.num_embeddings,
        .quantizer = rt->quantizer == VQ_QUANT_L2 ? "l2" : "euclidean",
        .tokenizer = !rt->tok ? "none" : rt->tokenizer_builtin ? "builtin-bytes" : "tokenizer.json",
        .user_prefix = t->user_prefix, .assistant_suffix = t->assistant_suffix,
        .question_prefix = t->question_prefix, .target_prefix = t->target_prefix, .dual_question = t->dual_question,
        .hidden_size = c->text.hidden_size, .num_hidden_layers = c->text.n_layers,
        .num_attention_heads = c->text.n_heads, .max_position_embeddings = c->text.max_position_embeddings,
        .default_cfg_scale = rt->default_cfg_scale > 0 ? rt->default_cfg_scale : 5.0,
        .default_temperature = rt->default_temperature > 0 ? rt->default_temperature : 1.0,
        .default_top_p = rt->default_top_p > 0 ? rt->default_top_p : 1.0,
        .default_top_k = rt->default_top_k,
        .measured = rt->builtin_eval, /* make eval-default's scores */
        .weights_dtype = worker_weights_dtype(atomic_load(&s->worker.weights_dtype)),
        .weights_bytes = atomic_load(&s->worker.weights_bytes),
        .optimizer_bytes = atomic_load(&s->worker.optimizer_bytes),
        .kv_cache_dtype = kv_dtype_name(s->cfg->kv_dtype),
        .lora_rank = lora->rank, .lora_alpha = lora->alpha, .lora_targets = targets, .adapter = s->cfg->adapter,
    };
    struct proto_stamp st = {rt->name, atomic_load(&s->worker.policy_version)};
    reply_json(out, 200, proto_encode_model(&m, &st));
}

void route_tokenize(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct janus_runtime *rt = &s->worker.rt;
    struct proto_tokenize_req r;
    struct proto_error e;
    if (proto_decode_tokenize(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
    } else {
        struct tok_ids ids = {0};
        struct dsr_err err = {{0}};
        if (tokenizer_encode(rt->tok, r.text, r.text_len, r.add_special, &ids, &err))
            reply_errorf(out, 400, "text", "%s", err.msg);
        else
            reply_json(out, 200, proto_encode_tokens(ids.ids, (int)ids.n));
        tok_ids_free(&ids);
        proto_tokenize_free(&r);
    }
    json_decref(body);
}

/* Each id's text decoded alone (null for an id the tokenizer cannot
 * decode), for showing a sampled sequence token by token. */
static json_t *token_pieces(const struct janus_runtime *rt, const struct proto_detokenize_req *r, struct dsr_err *err) {
    json_t *a = json_array();
    for (int i = 0; a && i < r->n_tokens; i++) {
        char *text = NULL;
        size_t len = 0;
        json_t *piece = json_null();
        if (janus_runtime_tokenizer_knows(rt, r->tokens[i])) {
            if (tokenizer_decode(rt->tok, &r->tokens[i], 1, r->skip_special, &text, &len, err)) {
                json_decref(a);
                return NULL;
            }
            json_t *str = json_stringn(text, len); /* invalid UTF-8 is already U+FFFD */
            if (str) piece = str;
            free(text);
        }
        if (json_array_append_new(a, piece)) {
            json_decref(a);
            a = NULL;
        }
    }
    return a ? json_pack("{s:o}", "pieces", a) : NULL;
}

void route_detokenize(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct janus_runtime *rt = &s->worker.rt;
    struct proto_detokenize_req r;
    struct proto_error e;
    if (proto_decode_detokenize(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
    } else if (r.pieces) {
        struct dsr_err err = {{0}};
        json_t *o = token_pieces(rt, &r, &err);
        if (o) reply_json(out, 200, o);
        else if (err.msg[0]) reply_errorf(out, 400, "tokens", "%s", err.msg);
        else reply_errorf(out, 500, NULL, "out of memory");
        proto_detokenize_free(&r);
    } else {
        char *text = NULL;
        size_t len = 0;
        struct dsr_err err = {{0}};
        if (tokenizer_decode(rt->tok, r.tokens, (size_t)r.n_tokens, r.skip_special, &text, &len, &err))
            reply_errorf(out, 400, "tokens", "%s", err.msg);
        else
            reply_json(out, 200, proto_encode_text(text, len));
        free(text);
        proto_detokenize_free(&r);
    }
    json_decref(body);
}
