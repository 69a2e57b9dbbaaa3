/* Opening and reading files whose names come from requests (image paths
 * under --image-root, checkpoints under --checkpoint-dir) without blocking:
 * a FIFO, socket or device there would block open() or read() forever and,
 * with it, the request and the daemon's shutdown.  Files are opened with
 * O_NONBLOCK, must be regular (fstat) and at most max_bytes long. */
#ifndef DSR_FILE_READ_H
#define DSR_FILE_READ_H

#include <stddef.h>

#include "base/error.h"

/* An O_RDONLY descriptor of the regular file at path (O_CLOEXEC; O_NONBLOCK,
 * which regular files ignore) and its size, or -1 with an error naming the
 * path: missing, not a regular file, or over max_bytes (0: no limit). */
int file_open_regular(const char *path, size_t max_bytes, size_t *size, struct dsr_err *err);

/* The whole regular file at path, at most max_bytes (0: no limit), into a
 * malloc'ed NUL-terminated buffer *data of *len bytes (the caller frees). */
int file_read_regular(const char *path, size_t max_bytes, char **data, size_t *len, struct dsr_err *err);

#endif
