/* dsrd's log: one line per request (request id, method, path, status,
 * latency, and for an error its message and param) and start-up/shutdown messages, on stderr, as text or JSON
 * lines (--log-format).  Each line is one stdio call, so lines from
 * concurrent threads never interleave. */
#ifndef DSRD_LOG_H
#define DSRD_LOG_H

#include <stdarg.h>

#include "config.h"

/* The error a request was answered with: its message and param (NULL when
 * no single field is at fault). */
struct log_error {
    const char *message, *param;
};
/* err: NULL for a success. */
void log_request(enum log_format f, const char *id, const char *method, const char *path, int status, double seconds,
                 const struct log_error *err);
void log_info(enum log_format f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning from a va_list: libmicrohttpd's own messages (its external
 * logger), which would otherwise go to stderr as raw text lines. */
void log_warning_v(enum log_format f, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
