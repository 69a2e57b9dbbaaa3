#include "proto_error.h"

#include <stdarg.h>
#include <stdio.h>

int proto_fail(struct proto_error *e, int code, const char *param, const char *fmt, ...) {
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *proto_error_type(int code) {
    switch (code) {
    case 400: return "invalid_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "invalid_request";
    case 413: return "payload_too_large";
    case 503: return "unavailable";
    default: return code >= 500 ? "internal" : "invalid_request";
    }
}

json_t *proto_error_json(const struct proto_error *e) {
    json_t *param = e->param[0] ? json_string(e->param) : json_null();
    return json_pack("{s:{s:i,s:s,s:s,s:o}}", "error", "code", e->code, "type", proto_error_type(e->code), "message",
                     e->message, "param", param);
}
