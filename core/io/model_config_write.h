/* Serialises a struct janus_config to an HF-compatible config.json
 * (JanusForConditionalGeneration) that janus_config_parse() reads back to an
 * identical struct.  Returns a malloc'ed NUL-terminated string, or NULL with
 * err set. */
#ifndef DSR_MODEL_CONFIG_WRITE_H
#define DSR_MODEL_CONFIG_WRITE_H

#include "base/error.h"
#include "io/model_config.h"

char *janus_config_to_json(const struct janus_config *c, struct dsr_err *err);

#endif
