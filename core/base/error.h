/* Error reporting for libdsr.
 *
 * Functions that can fail take a `struct dsr_err *` (may be NULL) and return
 * 0 on success or -1 on failure with a human-readable message written into it.
 * Messages name the thing that is wrong (the file, the tensor, the field) so a
 * user can act on them without a debugger. */
#ifndef DSR_ERROR_H
#define DSR_ERROR_H

#define DSR_ERR_MSG_MAX 512

struct dsr_err {
    char msg[DSR_ERR_MSG_MAX];
};

/* Formats into err (if non-NULL) and returns -1, so callers can write
 * `return dsr_errf(err, "...", ...);`. */
int dsr_errf(struct dsr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (context as errors propagate). */
int dsr_err_prefix(struct dsr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
