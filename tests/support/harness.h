/* Minimal test harness.
 *
 * A test binary registers test functions with th_run(); each check inside a
 * test records a failure with its location but lets the test continue, so one
 * run reports every broken number.  th_finish() prints the closing line
 * "N passed, N failed" (N = test functions) and returns the exit status.
 *
 * Fixture helpers load tensors from tests/fixtures/ via core's safetensors
 * reader and compare with a tolerance relative to the expected tensor's
 * largest magnitude, as the fixtures' README prescribes. */
#ifndef DSR_TEST_HARNESS_H
#define DSR_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

struct th {
    const char *current; /* name of the running test function */
    int current_failed;   /* checks failed in the running test */
    int passed, failed;   /* test functions */
};

typedef void (*th_fn)(struct th *t);

void th_run(struct th *t, const char *name, th_fn fn);
int  th_finish(struct th *t, const char *suite); /* prints totals; returns exit code */

/* Records a failed check (printf-style message) when cond is false: against
 * the running test function, or, outside one, as a failure of its own. */
int th_check_at(struct th *t, const char *file, int line, int cond, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define TH_CHECK(t, cond, ...) th_check_at((t), __FILE__, __LINE__, (cond) ? 1 : 0, __VA_ARGS__)

/* max|got-want| / max(max|want|, tiny) <= rel_tol; prints the worst index. */
int th_close_at(struct th *t, const char *file, int line, const char *what,
                const float *got, const float *want, size_t n, double rel_tol);
#define TH_CLOSE(t, what, got, want, n, tol) th_close_at((t), __FILE__, __LINE__, (what), (got), (want), (n), (tol))

/* Absolute tolerance variant (image-processing cases). */
int th_close_abs_at(struct th *t, const char *file, int line, const char *what,
                    const float *got, const float *want, size_t n, double abs_tol);
#define TH_CLOSE_ABS(t, what, got, want, n, tol) th_close_abs_at((t), __FILE__, __LINE__, (what), (got), (want), (n), (tol))

/* Path of a fixture file: tests run from the repository root. */
const char *th_fixture_dir(void);

/* Open a fixture safetensors file (aborts the test binary if missing: the
 * fixtures are part of the repository). Caller closes with st_close(). */
struct st_file *th_open_fixture(const char *relpath);

/* The whole file as a NUL-terminated malloc'ed string (length in *n when n
 * is not NULL), or NULL when it cannot be read. */
char *th_read_file(const char *path, size_t *n);

/* The build's program NAME ("dsrd", "dsr", "dsr-train") as an absolute
 * path: <build>/NAME, where <build> ("build", "build/asan") holds this test
 * binary's tests/ (or, for tools such as the soak, tools/) folder (read from
 * /proc/self/exe).  -1 if it does not fit. */
int th_build_program(const char *name, char *out, size_t cap);

/* Tensor from an open fixture file as a newly allocated float/int64 array
 * (caller frees); *n receives the element count. Aborts if absent. */
float   *th_tensor_f32(struct st_file *f, const char *name, size_t *n);
int64_t *th_tensor_i64(struct st_file *f, const char *name, size_t *n);
int32_t *th_tensor_i32(struct st_file *f, const char *name, size_t *n);

#endif
