#include "tiny_fixture.h"

int tiny_fixture_load(struct th *t, struct tiny_fixture *fx) {
    struct dsr_err err;
    if (!TH_CHECK(t, janus_model_load_dir(TINY_FIXTURE_DIR, JANUS_WEIGHTS_F32, NULL, &fx->model, &err) == 0, "load %s: %s", TINY_FIXTURE_DIR,
                  err.msg))
        return -1;
    fx->cases = th_open_fixture("janus-tiny/cases.safetensors");
    return 0;
}

void tiny_fixture_free(struct tiny_fixture *fx) {
    janus_model_free(&fx->model);
    st_close(fx->cases);
}
