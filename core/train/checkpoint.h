/* Checkpoints of the hosted model in HF layout, written atomically.
 *
 * checkpoint_write() creates dir containing
 *   config.json          janus_config_to_json(model config)
 *   model.safetensors    every declared parameter (trainable and frozen), F32,
 *                        HF names; __metadata__ {"format": "pt",
 *                        "policy_version": "<v>"}
 *   optimizer.safetensors (when a trainer is given) "<name>.exp_avg" and
 *                        "<name>.exp_avg_sq" for every trainable parameter;
 *                        __metadata__ adds "step"
 *   tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 *   preprocessor_config.json, generation_config.json — copied from source_dir
 *                        when present there.
 *   extra[i].name        extra[i].text, for each file the caller adds (dsrd:
 *                        the applied updates' idempotency records, so that a
 *                        server restarted from the checkpoint still knows
 *                        which updates the weights contain; and for the
 *                        embedded default model, its tokenizer and
 *                        preprocessor files, which have no source_dir).
 * Atomicity: everything is written into a fresh temporary directory beside
 * dir, "<parent>/" CHECKPOINT_PARTIAL_PREFIX "<name>.XXXXXX" (a hidden name no
 * /checkpoint request can give), holding CHECKPOINT_PARTIAL_MARKER until every
 * other file is written and fsync'ed; then the marker is removed, the
 * directory renamed to dir and the parent fsync'ed.  The writer holds an
 * flock on the temporary directory throughout, so a clean-up by another
 * process (checkpoint_remove_partials) leaves a live write alone.  dir must
 * not exist yet (a checkpoint is never overwritten in place).  On any
 * failure the temporary directory is removed and dir is untouched; after a
 * crash it remains, unloadable, until checkpoint_remove_partials.
 *
 * A model with LoRA adapters (m->lora.rank > 0) writes a PEFT adapter
 * directory instead (train/adapter.h): adapter_config.json and
 * adapter_model.safetensors (the adapters only: megabytes, where the frozen
 * base would be gigabytes), plus optimizer.safetensors (the adapters'
 * moments), the copied and extra files, atomically as above; and loads only
 * such a directory, whose rank, alpha and targets must be the model's.
 *
 * checkpoint_load_weights() loads a checkpoint of the same architecture into
 * an existing model: every declared tensor must be present with the declared
 * shape and only finite values, as must the optimizer moments (else an error
 * naming the tensor, and the model is unchanged).  Extra
 * tensors (e.g. an HF checkpoint's VQ-VAE) are ignored.  A partial directory
 * (named CHECKPOINT_PARTIAL_PREFIX..., or holding the marker) is refused.  With a trainer,
 * optimizer.safetensors restores the AdamW moments and step; when that file is
 * absent the optimizer restarts (zero moments, step 0). */
#ifndef DSR_CHECKPOINT_H
#define DSR_CHECKPOINT_H

#include "base/error.h"
#include "model/janus_model.h"
#include "train/train.h"

/* A file added to the checkpoint and written atomically with it; name is a
 * plain file name other than config.json and the safetensors files. */
struct checkpoint_extra {
    const char *name;
    const char *text; /* len bytes (need not be NUL-terminated) */
    size_t len;
};

#define CHECKPOINT_PARTIAL_PREFIX ".dsr-partial-"
#define CHECKPOINT_PARTIAL_MARKER "DSR_PARTIAL_CHECKPOINT"

/* base_name (may be NULL): what the model was loaded from, recorded as an
 * adapter's base_model_name_or_path. */
int checkpoint_write(const struct janus_model *m, const struct trainer *tr, const char *dir, long policy_version,
                     const char *source_dir, const char *base_name, const struct checkpoint_extra *extra,
                     size_t n_extra, struct dsr_err *err);

/* policy_version receives the checkpoint's metadata value (0 when absent). */
int checkpoint_load_weights(struct janus_model *m, const char *dir, long *policy_version, struct trainer *tr,
                            struct dsr_err *err);

/* Deletes the partial checkpoints directly under parent (left by a crash
 * during checkpoint_write), except those a live writer holds; *removed
 * counts them.  Only the files a checkpoint holds are deleted: a partial
 * directory holding anything else (a subdirectory) is left, not an error. */
int checkpoint_remove_partials(const char *parent, int *removed, struct dsr_err *err);

#endif
