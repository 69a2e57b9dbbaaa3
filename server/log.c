#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "printable.h"

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

void log_request(enum log_format f, const char *id, const char *method, const char *path, int status, double seconds,
                 const struct log_error *err) {
    char ts[40], safe_path[1024], safe_method[64], msg[1024] = "", param[512] = "";
    timestamp(ts, sizeof ts);
    /* the path is the client's, percent-decoded by MHD; messages and params quote request bytes */
    printable_ascii(path, safe_path, sizeof safe_path);
    printable_ascii(method, safe_method, sizeof safe_method);
    if (err) {
        printable_ascii(err->message ? err->message : "", msg, sizeof msg);
        if (err->param) printable_ascii(err->param, param, sizeof param);
    }
    if (f == LOG_JSON) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:f}", "ts", ts, "level", "info",
                              "request_id", id, "method", safe_method, "path", safe_path, "status", status,
                              "latency_ms", seconds * 1e3);
        if (o && err) {
            json_object_set_new(o, "error", json_string(msg));
            json_object_set_new(o, "param", err->param ? json_string(param) : json_null());
        }
        emit_json(o);
    } else if (err) {
        /* the message last: the rest of the line, spaces and quotes included */
        fprintf(stderr, "%s request id=%s %s %s status=%d latency_ms=%.2f param=%s error=%s\n", ts, id,
                safe_method, safe_path, status, seconds * 1e3, err->param ? param : "-", msg);
    } else {
        fprintf(stderr, "%s request id=%s %s %s status=%d latency_ms=%.2f\n", ts, id, safe_method, safe_path, status,
                seconds * 1e3);
    }
}

static void log_line(enum log_format f, const char *level, const char *fmt, va_list ap) {
    char raw[1024], msg[1024], ts[40];
    vsnprintf(raw, sizeof raw, fmt, ap);
    size_t n = strlen(raw);
    while (n > 0 && raw[n - 1] == '\n') raw[--n] = '\0'; /* libmicrohttpd ends its messages with one */
    printable_ascii(raw, msg, sizeof msg); /* messages quote file names and flag values */
    timestamp(ts, sizeof ts);
    if (f == LOG_JSON) emit_json(json_pack("{s:s,s:s,s:s}", "ts", ts, "level", level, "msg", msg));
    else fprintf(stderr, "%s %s%s\n", ts, strcmp(level, "info") == 0 ? "" : "warning: ", msg);
}

void log_info(enum log_format f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_line(f, "info", fmt, ap);
    va_end(ap);
}

void log_warning_v(enum log_format f, const char *fmt, va_list ap) { log_line(f, "warning", fmt, ap); }
