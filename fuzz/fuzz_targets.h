/* libFuzzer targets over every decoder of dsr: request bodies per route,
 * base64, PNG, JPEG, safetensors headers and shard indexes, tokenizer.json load
 * and encode, config.json and preprocessor_config.json, a checkpoint's
 * idempotency records.
 *
 * Each fuzz_<name>.c defines fuzz_<name>(data, size), which must return 0
 * and abort (via FUZZ_CHECK) when an invariant breaks.  Built with clang and
 * -DDSR_LIBFUZZER it is also the binary's LLVMFuzzerTestOneInput (make fuzz);
 * built normally, tests/test_fuzz_corpus replays fuzz/corpus/<name>/ (the
 * seeds) and fuzz/regressions/<name>/ (every crash found once) through it in
 * make test and make test-asan. */
#ifndef DSR_FUZZ_TARGETS_H
#define DSR_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* X(name) for every target: the corpus directories are named alike. */
#define FUZZ_TARGETS(X)                                                                                              \
    X(request) X(base64) X(png) X(jpeg) X(safetensors) X(shard_index) X(tokenizer_load) X(tokenizer_encode)          \
    X(config) X(idempotency)

#define FUZZ_DECLARE(name) int fuzz_##name(const uint8_t *data, size_t size);
FUZZ_TARGETS(FUZZ_DECLARE)
#undef FUZZ_DECLARE

/* An invariant of the decoder: abort (a crash to libFuzzer) when false. */
#define FUZZ_CHECK(cond)                                                                                             \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);                             \
            abort();                                                                                                 \
        }                                                                                                            \
    } while (0)

#ifdef DSR_LIBFUZZER
#define FUZZ_ENTRY(fn)                                                                                               \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                                    \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#else
#define FUZZ_ENTRY(fn)
#endif

#endif
