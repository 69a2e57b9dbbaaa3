#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dsr_errf(struct dsr_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int dsr_err_prefix(struct dsr_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[DSR_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* build "prefix: old" by explicit copies; truncation is acceptable */
    char old[DSR_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(prefix, sizeof err->msg - 1);
    memcpy(err->msg, prefix, n);
    if (n + 2 < sizeof err->msg) {
        err->msg[n++] = ':';
        err->msg[n++] = ' ';
    }
    size_t rest = strnlen(old, sizeof old);
    if (rest > sizeof err->msg - 1 - n) rest = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, rest);
    err->msg[n + rest] = '\0';
    return -1;
}
