#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void timestamp(char *buf, size_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* JSON lines are built with jansson so every field is escaped. */
static void emit_json(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(o);
}

void log_request(enum log_format f, const char *id, const char *method, const char *path, int status,
                 double seconds) {
    char ts[40];
    timestamp(ts, sizeof ts);
    if (f == LOG_JSON)
        emit_json(json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:f}", "ts", ts, "level", "info", "request_id", id, "method",
                            method, "path", path, "status", status, "latency_ms", seconds * 1e3));
    else
        fprintf(stderr, "%s request id=%s %s %s status=%d latency_ms=%.2f\n", ts, id, method, path, status,
                seconds * 1e3);
}

void log_info(enum log_format f, const char *fmt, ...) {
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    if (f == LOG_JSON) emit_json(json_pack("{s:s,s:s,s:s}", "ts", ts, "level", "info", "msg", msg));
    else fprintf(stderr, "%s %s\n", ts, msg);
}
