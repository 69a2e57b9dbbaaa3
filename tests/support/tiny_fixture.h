/* The janus-tiny golden fixture (tests/fixtures/janus-tiny): the model HF
 * transformers made and the cases it computed (cases.safetensors). */
#ifndef DSR_TEST_TINY_FIXTURE_H
#define DSR_TEST_TINY_FIXTURE_H

#include "harness.h"
#include "model/janus_model.h"

#define TINY_FIXTURE_DIR "tests/fixtures/janus-tiny"

struct tiny_fixture {
    struct janus_model model;
    struct st_file *cases; /* the golden tensors, by name (th_tensor_f32/i32) */
};

/* Loads both; a failure is a failed check of t and returns -1 (nothing to free). */
int  tiny_fixture_load(struct th *t, struct tiny_fixture *fx);
void tiny_fixture_free(struct tiny_fixture *fx);

#endif
