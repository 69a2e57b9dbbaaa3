#include "proto_response.h"

#include "janus/reward.h"

#include <math.h>

json_t *proto_real(double x) { return isfinite(x) ? json_real(x) : json_null(); }

json_t *proto_float_array(const float *x, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, proto_real(x[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *proto_int_array(const int32_t *x, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(x[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *stamp(json_t *obj, const struct proto_stamp *st) {
    if (!obj) return NULL;
    if (json_object_set_new(obj, "policy_version", json_integer(st->policy_version)) ||
        json_object_set_new(obj, "model", json_string(st->model))) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Builds {"items": [...]} calling one encoder per item. */
static json_t *items_object(const struct proto_lp_result *items, int n, bool scores, bool token_logprobs,
                            const struct proto_stamp *st) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        const struct proto_lp_result *r = &items[i];
        struct reward rw = reward_of(r->logprobs, r->count);
        double s = rw.sum, mean = rw.reward;
        json_t *o = scores ? json_pack("{s:o,s:o,s:i}", "reward", proto_real(mean), "sum", proto_real(s), "count",
                                       r->count)
                           : json_pack("{s:o,s:o,s:o,s:i}", "logprobs", proto_float_array(r->logprobs, r->count),
                                       "sum", proto_real(s), "mean", proto_real(mean), "count", r->count);
        if (o && scores && token_logprobs) json_object_set_new(o, "logprobs", proto_float_array(r->logprobs, r->count));
        if (o && !scores && r->codes) json_object_set_new(o, "codes", proto_int_array(r->codes, r->count));
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? stamp(json_pack("{s:o}", "items", arr), st) : NULL;
}

json_t *proto_encode_logprobs(const struct proto_lp_result *items, int n, const struct proto_stamp *st) {
    return items_object(items, n, false, false, st);
}

json_t *proto_encode_score(const struct proto_lp_result *items, int n, bool token_logprobs,
                           const struct proto_stamp *st) {
    return items_object(items, n, true, token_logprobs, st);
}

json_t *proto_encode_rollout(enum proto_task task, const struct proto_rollout_result *r, int n,
                             const struct proto_rollout_contexts *ctx, const struct proto_stamp *st) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        json_t *o = json_pack("{s:s,s:o,s:o}", "id", r[i].id, task == PROTO_TASK_UNDERSTANDING ? "tokens" : "codes",
                              proto_int_array(r[i].ids, r[i].n_ids), "logprobs",
                              proto_float_array(r[i].logprobs, r[i].n_ids));
        if (o && r[i].text) json_object_set_new(o, "text", json_string(r[i].text));
        if (o && r[i].png_b64) json_object_set_new(o, "png", json_string(r[i].png_b64));
        if (o && r[i].has_reward) json_object_set_new(o, "reward", proto_real(r[i].reward));
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    if (!arr) return NULL;
    json_t *o = json_pack("{s:o,s:{s:o}}", "rollouts", arr, "context", "tokens",
                          proto_int_array(ctx->context, ctx->n_context));
    if (o && ctx->n_rg_target > 0) {
        json_object_set_new(o, "rg_context", json_pack("{s:o}", "tokens",
                                                       proto_int_array(ctx->rg_context, ctx->n_rg_context)));
        json_object_set_new(o, "rg_target", json_pack("{s:o}", "tokens",
                                                      proto_int_array(ctx->rg_target, ctx->n_rg_target)));
    }
    return o ? stamp(o, st) : NULL;
}

/* "lora": null, or {rank, alpha, scale, targets: [names], adapter}. */
static json_t *encode_lora(const struct proto_model_info *m) {
    if (m->lora_rank <= 0) return json_null();
    json_t *targets = json_array();
    for (const char *p = m->lora_targets ? m->lora_targets : ""; targets && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(targets, json_stringn(p, len));
        p += len + (end != NULL);
    }
    return json_pack("{s:i,s:f,s:f,s:o,s:s?}", "rank", m->lora_rank, "alpha", m->lora_alpha, "scale",
                     m->lora_alpha / m->lora_rank, "targets", targets ? targets : json_array(), "adapter", m->adapter);
}

json_t *proto_encode_model(const struct proto_model_info *m, const struct proto_stamp *st) {
    json_t *o = json_pack(
        "{s:s,s:b,s:s,s:{s:I,s:I,s:I},s:i,s:{s:i,s:i,s:i,s:i,s:i,s:i},s:i,s:i,s:i,s:i,s:s,s:s,"
        "s:{s:s,s:s,s:s,s:s,s:s},s:{s:i,s:i,s:i,s:i},s:f,s:f,s:f,s:i}",
        "name", m->name, "embedded_random_weights", m->embedded_random_weights, "description", m->description,
        "parameters", "total", (json_int_t)m->params_total, "trainable", (json_int_t)m->params_trainable, "frozen",
        (json_int_t)(m->params_total - m->params_trainable), "vocab_size", m->vocab_size, "special_tokens", "bos",
        m->bos, "eos", m->eos, "pad", m->pad, "boi", m->boi, "eoi", m->eoi, "image", m->image, "image_size",
        m->image_size, "vq_image_size", m->vq_image_size, "num_image_tokens", m->num_image_tokens, "codebook_size",
        m->codebook_size, "quantizer", m->quantizer, "tokenizer", m->tokenizer, "templates", "user_prefix",
        m->user_prefix, "assistant_suffix", m->assistant_suffix, "question_prefix", m->question_prefix,
        "target_prefix", m->target_prefix, "dual_question", m->dual_question, "text_config", "hidden_size",
        m->hidden_size, "num_hidden_layers", m->num_hidden_layers, "num_attention_heads", m->num_attention_heads,
        "max_position_embeddings", m->max_position_embeddings, "default_cfg_scale", m->default_cfg_scale,
        "default_temperature", m->default_temperature, "default_top_p", m->default_top_p, "default_top_k",
        m->default_top_k);
    if (o && m->measured) json_object_set(o, "measured", (json_t *)m->measured);
    if (o)
        json_object_set_new(o, "memory",
                            json_pack("{s:s,s:I,s:I,s:s}", "weights_dtype", m->weights_dtype, "weights_bytes",
                                      (json_int_t)m->weights_bytes, "optimizer_bytes",
                                      (json_int_t)m->optimizer_bytes, "kv_cache_dtype",
                                      m->kv_cache_dtype ? m->kv_cache_dtype : "float32"));
    if (o) json_object_set_new(o, "lora", encode_lora(m));
    return o ? stamp(o, st) : NULL;
}

json_t *proto_encode_tokens(const int32_t *ids, int n) { return json_pack("{s:o}", "tokens", proto_int_array(ids, n)); }

json_t *proto_encode_text(const char *text, size_t len) {
    return json_pack("{s:o}", "text", json_stringn(text, len));
}

json_t *proto_encode_openrlhf(const struct proto_openrlhf_item *items, int n, const struct proto_stamp *st) {
    json_t *rewards = json_array(), *scores = json_array(), *failed = json_array(), *no_prefix = json_array(),
           *stripped = json_array(), *errors = json_array(), *no_prefix_idx = json_array();
    double total = 0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const struct proto_openrlhf_item *it = &items[i];
        json_t *r = it->error ? json_null() : proto_real(it->reward);
        json_array_append(rewards, r);
        json_array_append_new(scores, r);
        json_array_append_new(failed, json_integer(it->error != NULL));
        json_array_append_new(no_prefix, json_integer(it->no_prefix));
        json_array_append_new(stripped, json_integer(it->specials_stripped));
        if (it->no_prefix) json_array_append_new(no_prefix_idx, json_integer(i));
        if (it->error)
            json_array_append_new(errors, json_pack("{s:i,s:i,s:s,s:s}", "index", i, "code", it->error->code, "param",
                                                    it->error->param, "message", it->error->message));
        else if (isfinite(it->reward)) {
            total += it->reward;
            ok++;
        }
    }
    json_t *logs = json_pack("{s:o,s:I,s:o,s:o,s:o}", "mean_reward", proto_real(ok ? total / ok : 0.0),
                             "policy_version", (json_int_t)st->policy_version, "dsr_failed", failed,
                             "dsr_no_prompt_prefix", no_prefix, "dsr_special_tokens_stripped", stripped);
    return stamp(json_pack("{s:o,s:o,s:o,s:o,s:o}", "rewards", rewards, "scores", scores, "extra_logs", logs, "errors",
                           errors, "no_prompt_prefix", no_prefix_idx),
                 st);
}
