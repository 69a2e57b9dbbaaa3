/* Request bodies of the state-changing routes (proto/API.md "POST /update",
 * "POST /checkpoint", "POST /reload") decoded and validated like the other
 * requests (proto_request.h): field paths in errors, nothing left allocated
 * on failure, every decoded struct released by its *_free.
 *
 * The hyper-parameters decode straight into core's training structs
 * (train.h) with proto/API.md's defaults filled in, so the server passes them on
 * unchanged. */
#ifndef DSR_PROTO_UPDATE_H
#define DSR_PROTO_UPDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "proto_request.h"
#include "train/train.h"

#define PROTO_ID_MAX 128   /* rollout ids, idempotency keys, checkpoint names */

/* One training sample: either cited ({"rollout_id", "advantage"}: the
 * rollout cache supplies the rest) or explicit. */
struct proto_train_sample {
    bool cited;
    char rollout_id[PROTO_ID_MAX];
    enum proto_task task;         /* explicit */
    struct proto_span context;    /* explicit; ends with BOI for generation */
    struct proto_image image;     /* explicit understanding: fills the placeholders; may be NONE */
    int32_t *completion;          /* explicit: caption token ids or VQ codes */
    int n_completion;
    float advantage;              /* GRPO */
    float *old_logprobs;          /* [n_completion] or NULL (explicit only) */
    float *ref_logprobs;          /* [n] or NULL; on a cited sample checked against the rollout's length later */
    int n_ref;
};

struct proto_update_req {
    bool simpo;
    bool has_key;
    char idempotency_key[PROTO_ID_MAX];
    /* GRPO: n_samples samples.  SimPO: 2·n_pairs samples, chosen then
     * rejected for each pair. */
    struct proto_train_sample *samples;
    int n_samples, n_pairs;
    struct grpo_hyper grpo;
    struct simpo_hyper simpo_h;
    struct adamw_hyper adam;
};

int  proto_decode_update(const json_t *body, const struct proto_limits *lim, struct proto_update_req *out,
                         struct proto_error *e);
void proto_update_free(struct proto_update_req *r);

/* POST /checkpoint: name is one safe path component ([A-Za-z0-9._-], not
 * starting with '.', at most PROTO_ID_MAX-1 bytes). */
struct proto_checkpoint_req {
    char name[PROTO_ID_MAX];
};
int proto_decode_checkpoint(const json_t *body, struct proto_checkpoint_req *out, struct proto_error *e);

/* POST /reload: path relative to the checkpoint directory. */
struct proto_reload_req {
    char path[1024];
};
int proto_decode_reload(const json_t *body, struct proto_reload_req *out, struct proto_error *e);

/* JSON of an /update result: {"loss", "grad_norm", "clip_fraction", "kl",
 * "tokens"} plus the stamp. */
struct proto_stamp;
json_t *proto_encode_update(const struct train_stats *st, const struct proto_stamp *stamp);

#endif
