#include "model/default_model.h"

#include <string.h>

/* Symbols of the object that `ld -r -b binary` makes from the checkpoint's
 * files (see the Makefile): _binary_<file name>_start / _end. */
extern const uint8_t _binary_config_json_start[], _binary_config_json_end[];
extern const uint8_t _binary_model_safetensors_start[], _binary_model_safetensors_end[];
extern const uint8_t _binary_tokenizer_json_start[], _binary_tokenizer_json_end[];
extern const uint8_t _binary_generation_config_json_start[], _binary_generation_config_json_end[];
extern const uint8_t _binary_preprocessor_config_json_start[], _binary_preprocessor_config_json_end[];
extern const uint8_t _binary_eval_json_start[], _binary_eval_json_end[];

static size_t span(const uint8_t *start, const uint8_t *end) { return (size_t)(end - start); }

void default_model_blob(struct default_model_blob *b) {
    b->checkpoint = (struct janus_checkpoint_mem){
        .name = "the embedded default model",
        .config_json = (const char *)_binary_config_json_start,
        .config_len = span(_binary_config_json_start, _binary_config_json_end),
        .weights = _binary_model_safetensors_start,
        .weights_len = span(_binary_model_safetensors_start, _binary_model_safetensors_end),
        .preprocessor_json = (const char *)_binary_preprocessor_config_json_start,
        .preprocessor_len = span(_binary_preprocessor_config_json_start, _binary_preprocessor_config_json_end),
    };
    b->tokenizer_json = (const char *)_binary_tokenizer_json_start;
    b->tokenizer_len = span(_binary_tokenizer_json_start, _binary_tokenizer_json_end);
    b->generation_json = (const char *)_binary_generation_config_json_start;
    b->generation_len = span(_binary_generation_config_json_start, _binary_generation_config_json_end);
    b->eval_json = (const char *)_binary_eval_json_start;
    b->eval_len = span(_binary_eval_json_start, _binary_eval_json_end);
}
