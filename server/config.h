/* dsrd's configuration: command-line flags, each also readable from an
 * environment variable DSR_<NAME> (upper case, '-' → '_'); a flag wins over
 * its variable.  Strings point into argv or the environment (never freed). */
#ifndef DSRD_CONFIG_H
#define DSRD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "janus/template.h"
#include "model/janus_model.h"
#include "model/vq.h"
#include "nn/kv_cache.h"

enum log_format { LOG_TEXT, LOG_JSON };

struct dsrd_config {
    const char *model_dir;       /* NULL: the embedded random-weight default model */
    const char *host;            /* listen address, "127.0.0.1" */
    int port;                    /* 8080; 0 picks a free port (printed in the log) */
    int threads;                 /* compute threads (OpenMP/OpenBLAS); 0: library default */
    int http_threads;            /* request handler threads */
    int max_connections;         /* open connections, idle ones included */
    int max_connections_per_ip;  /* 0: no limit */
    int header_timeout;          /* seconds to send a request's headers (and keep-alive idle time) */
    int idle_timeout;            /* seconds of silence before a connection is closed */
    const char *api_key;         /* NULL: no auth */
    const char *admin_key;       /* NULL: admin routes take the api key */
    const char *checkpoint_dir;  /* NULL: /checkpoint and /reload refused */
    const char *image_root;      /* NULL: image paths refused */
    const char *allowed_origins; /* CORS: comma-separated origins or "*"; NULL: no CORS headers */
    size_t max_body;             /* bytes; larger bodies → 413 */
    int queue_depth;             /* jobs waiting for the worker; more → 503 */
    enum log_format log_format;
    enum vq_quantizer quantizer;
    enum janus_weights weights; /* --weights-dtype */
    enum kv_dtype kv_dtype;     /* --kv-dtype: the rollouts' KV cache */
    struct lora_config lora;     /* --lora-rank/--lora-alpha/--lora-targets (rank 0: full training) */
    bool lora_alpha_given, lora_targets_given; /* set explicitly (an --adapter's must then agree) */
    const char *adapter;         /* --adapter: a PEFT LoRA directory loaded at start, or NULL */
    struct janus_template tpl;   /* defaults overridden by --template-* / --dual-question */
    int boi_id, eoi_id;          /* -1: from generation_config.json or the tokenizer */
    int rollout_cache_count;     /* rollouts remembered for /update */
    size_t rollout_cache_bytes;
    int idempotency_records;
    int max_batch_tokens;        /* rows of one batched scoring forward */
    int stats_history;           /* updates GET /stats remembers */
    bool reference;              /* keep the start-up weights as the KL reference */
    size_t update_memory_budget; /* activation bytes per /update micro-batch (default 4 GiB); 0 = one pass */
    bool list_routes;            /* --routes: print the route table and exit */
};

/* 0: run; 1: --help/--routes printed, exit 0; -1: bad option (message on err_out). */
int dsrd_config_parse(int argc, char **argv, struct dsrd_config *c, FILE *err_out);
void dsrd_config_usage(FILE *out);

#endif
