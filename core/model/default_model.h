/* The shipped default model: the dsr-shapes checkpoint (models/shapes/dsr-shapes,
 * trained by `make default-model` on the shapes world) compiled into the
 * library, so dsrd serves it with no files at run time.
 *
 * The buffers are read-only data of the binary: never freed, valid for the
 * process's lifetime. */
#ifndef DSR_DEFAULT_MODEL_H
#define DSR_DEFAULT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/janus_model.h"

struct default_model_blob {
    struct janus_checkpoint_mem checkpoint;
    const char *tokenizer_json;      /* tokenizer.json */
    size_t tokenizer_len;
    const char *generation_json;     /* generation_config.json (BOI/EOI ids) */
    size_t generation_len;
    const char *eval_json;           /* eval.json: {"model": name, ...the scores `make eval-default` measured} */
    size_t eval_len;
};

/* Fills blob with pointers into the embedded files. */
void default_model_blob(struct default_model_blob *blob);

#endif
