#include "proto_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "printable.h"

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
    case 415: return "unsupported_media_type";
    case 503: return "unavailable";
    default: return code >= 500 ? "internal" : "invalid_request";
    }
}

/* The text as a JSON string, or its printable_ascii copy when it is not
 * valid UTF-8 (raw request bytes quoted, or a cut multi-byte character). */
static json_t *string_or_escaped(const char *text) {
    json_t *s = json_string(text);
    if (s) return s;
    char safe[4 * PROTO_MSG_MAX];
    printable_ascii(text, safe, sizeof safe);
    return json_string(safe);
}

json_t *proto_error_json(const struct proto_error *e) {
    json_t *param = e->param[0] ? string_or_escaped(e->param) : json_null();
    return json_pack("{s:{s:i,s:s,s:o,s:o}}", "error", "code", e->code, "type", proto_error_type(e->code), "message",
                     string_or_escaped(e->message), "param", param);
}
