/* A loaded Janus model: config, every parameter, and the bound components.
 *
 * janus_model_load_dir() reads config.json and the safetensors weights of an
 * HF checkpoint directory (single file or sharded); janus_model_init_random()
 * builds any config with deterministic random weights (tests, benchmarks,
 * the embedded default model).  The struct owns its parameters and bound
 * components; janus_model_free() releases everything. */
#ifndef DSR_JANUS_MODEL_H
#define DSR_JANUS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "model/gen_path.h"
#include "image/preprocess.h"
#include "model/lm.h"
#include "io/model_config.h"
#include "model/params.h"
#include "model/vision.h"
#include "model/vq.h"

/* How weight matrices are kept in memory (--weights-dtype; params.h):
 * float32, BF16, or AUTO: BF16 when the checkpoint stores the language
 * model's matrices in BF16 (as Janus-Pro ships) and the model would take at
 * least JANUS_AUTO_BF16_MIN_BYTES as float32, else float32 (random weights:
 * float32).  Below that size the weights sit in the caches, where widening
 * costs time and halving the bytes saves none (the 18 MB default model's
 * /rollout of 8 images measured 10-15% slower held as BF16). */
enum janus_weights { JANUS_WEIGHTS_AUTO, JANUS_WEIGHTS_F32, JANUS_WEIGHTS_BF16 };
#define JANUS_AUTO_BF16_MIN_BYTES ((size_t)1 << 30)

struct janus_model {
    struct janus_config cfg;
    struct param_table params;
    bool tied; /* lm_head shares embed_tokens */
    struct lm_model lm;
    struct gen_path gen;
    struct vision_model *vision; /* tower (frozen) + understanding aligner (trainable), owned */
    struct vq_model *vq;         /* image tokenizer, owned */
    struct janus_image_config image_cfg; /* preprocessor_config.json or defaults */
    struct lora_config lora;             /* rank 0: no adapters, everything but the tower and VQ trains */
};

/* Load-time adapters (nn/lora.h): lora NULL or rank 0 = none.  With
 * adapters, every base tensor is frozen, the trainable arena holds only the
 * adapter factors, and they start as PEFT initialises them (B = 0: the
 * model computes exactly what the base does) seeded by JANUS_LORA_SEED. */
#define JANUS_LORA_SEED 20250607u

/* One adapted linear: its HF module path (its weight is path + ".weight",
 * its adapter path + ".lora_A.weight" / ".lora_B.weight") and shape. */
struct lora_site {
    char module[DSR_PARAM_NAME_MAX];
    enum lora_target target;
    int in_dim, out_dim;
};

/* The linears `targets` (bits of enum lora_target) adapts in c: decoder
 * layer by layer, then the generation head's, then each aligner's (fc1,
 * hidden_layers.0, ...), the order adapters are declared and initialised
 * in.  Fills at most cap entries of out (may be NULL with cap 0) and
 * returns how many there are. */
int janus_lora_sites(const struct janus_config *c, unsigned targets, struct lora_site *out, int cap);

/* dir/config.json + dir/model.safetensors (or the sharded index), and
 * dir/preprocessor_config.json when present. */
int janus_model_load_dir(const char *dir, enum janus_weights weights, const struct lora_config *lora, struct janus_model *m, struct dsr_err *err);
/* A config file and one weights file (e.g. a BF16 copy beside the config). */
int janus_model_load_files(const char *config_path, const char *weights_path, enum janus_weights weights,
                           const struct lora_config *lora, struct janus_model *m, struct dsr_err *err);
/* A checkpoint held in memory (e.g. compiled into the binary); the buffers
 * must outlive the model only while loading: weights are copied. */
struct janus_checkpoint_mem {
    const char *name;                   /* for messages */
    const char *config_json;            /* config.json */
    size_t config_len;
    const uint8_t *weights;             /* model.safetensors */
    size_t weights_len;
    const char *preprocessor_json;      /* preprocessor_config.json, or NULL */
    size_t preprocessor_len;
};
int janus_model_load_memory(const struct janus_checkpoint_mem *ck, enum janus_weights weights,
                            const struct lora_config *lora, struct janus_model *m, struct dsr_err *err);
int janus_model_init_random(const struct janus_config *cfg, uint64_t seed, enum janus_weights weights,
                            const struct lora_config *lora, struct janus_model *m, struct dsr_err *err);
/* Binds the components again (after pt_promote_trainable moved tensors). */
int janus_model_rebind(struct janus_model *m, struct dsr_err *err);
void janus_model_free(struct janus_model *m);

/* Understanding path: normalised pixels [n_images, C, S, S] → aligner rows
 * [n_images · num_image_tokens, hidden] that fill a context's placeholders. */
int janus_image_embeds(const struct janus_model *m, const float *pixels, int n_images, float *embeds,
                       struct dsr_err *err);

#endif
