/* LoRA adapters as PEFT stores them: a directory with
 *   adapter_config.json         {"peft_type": "LORA", "r", "lora_alpha",
 *                               "target_modules", "base_model_name_or_path", ...}
 *   adapter_model.safetensors   "base_model.model.<module>.lora_A.weight" /
 *                               ".lora_B.weight", F32, for every adapted
 *                               module of the HF Janus tree, e.g.
 *                               base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight
 * target_modules is written as a regular expression matching exactly the
 * language model's adapted projections (PEFT full-matches a string against
 * module names; a list of names such as ["q_proj"] would also adapt the
 * vision tower's q_proj).  Reading accepts either form.
 *
 * checkpoint_write/checkpoint_load_weights (train/checkpoint.h) use this for
 * a model with adapters; adapter_merge folds an adapter into a base model
 * (dsr merge). */
#ifndef DSR_ADAPTER_H
#define DSR_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "model/janus_model.h"

#define ADAPTER_CONFIG_FILE "adapter_config.json"
#define ADAPTER_WEIGHTS_FILE "adapter_model.safetensors"
#define ADAPTER_TENSOR_PREFIX "base_model.model." /* PEFT's prefix before the HF module path */

/* Whether dir holds an adapter_config.json. */
bool adapter_dir_exists(const char *dir);

/* adapter_config.json text for these settings (malloc'ed; NULL + err on
 * failure).  base: base_model_name_or_path. */
char *adapter_config_json(const struct lora_config *lora, const char *base, struct dsr_err *err);

/* Reads dir/adapter_config.json: peft_type must be LORA, r and lora_alpha
 * numbers, target_modules a list or string naming only language-model
 * projections; options dsr does not implement (use_dora, use_rslora,
 * bias other than "none", rank_pattern/alpha_pattern entries) are refused by
 * name.  base (may be NULL) receives base_model_name_or_path ("" when
 * absent), truncated to base_cap. */
int adapter_config_read(const char *dir, struct lora_config *lora, char *base, size_t base_cap,
                        struct dsr_err *err);

/* Checks that an adapter's settings are the model's (a replica or a
 * restarted learner reloading an adapter of another rank or targets):
 * errors name the setting. */
int adapter_config_check(const struct lora_config *have, const struct lora_config *want, struct dsr_err *err);

/* Folds the adapter in dir into base (which has no adapters):
 * W += (alpha / r)·B·A for every adapted projection, computed in float32
 * (double accumulation) and stored back in W's own storage (BF16 rounds to
 * nearest even).  All or nothing: the adapter is read and checked against
 * base's shapes before any weight changes. */
int adapter_merge(struct janus_model *base, const char *dir, struct dsr_err *err);

#endif
