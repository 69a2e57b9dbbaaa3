/* config.json (janus_config_parse, then the validation a load runs) and
 * preprocessor_config.json (janus_image_config_parse) on the same input. */
#include "fuzz_targets.h"
#include "image/preprocess.h"
#include "io/model_config.h"

int fuzz_config(const uint8_t *data, size_t size) {
    struct janus_config c;
    struct dsr_err err;
    if (janus_config_parse((const char *)data, size, &c, &err) == 0) (void)janus_config_validate(&c, &err);
    struct janus_image_config ic;
    if (janus_image_config_parse((const char *)data, size, 0, &ic, &err) == 0)
        FUZZ_CHECK(ic.image_size > 0);
    return 0;
}

FUZZ_ENTRY(fuzz_config)
