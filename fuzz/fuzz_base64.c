/* base64: decoding accepts only canonical text, so whatever decodes must
 * encode back to the same text, and any bytes must round-trip. */
#include <string.h>

#include "base64.h"
#include "fuzz_targets.h"

int fuzz_base64(const uint8_t *data, size_t size) {
    uint8_t *out = NULL;
    size_t n = 0, bad = 0;
    if (base64_decode((const char *)data, size, &out, &n, &bad) == 0) {
        char *again = base64_encode(out, n);
        FUZZ_CHECK(again && strlen(again) == size && memcmp(again, data, size) == 0);
        free(again);
        free(out);
    } else {
        FUZZ_CHECK(bad <= size);
    }
    char *text = base64_encode(data, size);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(base64_decode(text, strlen(text), &out, &n, &bad) == 0 && n == size && memcmp(out, data, size) == 0);
    free(out);
    free(text);
    return 0;
}

FUZZ_ENTRY(fuzz_base64)
