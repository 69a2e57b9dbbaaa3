/* A checkpoint's idempotency records as /reload reads them: parsed, checked
 * (idem_check), imported into a small store, exported again; the export of
 * accepted records must itself be accepted. */
#include <string.h>

#include "fuzz_targets.h"
#include "idempotency.h"

int fuzz_idempotency(const uint8_t *data, size_t size) {
    json_error_t je;
    json_t *doc = json_loadb((const char *)data, size, 0, &je);
    if (!doc) return 0;
    struct dsr_err err;
    if (idem_check(doc, &err) == 0) {
        struct idem_store s;
        FUZZ_CHECK(idem_init(&s, 8, &err) == 0);
        idem_import(&s, doc);
        char *text = idem_export(&s);
        FUZZ_CHECK(text != NULL);
        json_t *again = json_loads(text, 0, &je);
        FUZZ_CHECK(again && idem_check(again, &err) == 0);
        json_decref(again);
        free(text);
        idem_destroy(&s);
    }
    json_decref(doc);
    return 0;
}

FUZZ_ENTRY(fuzz_idempotency)
