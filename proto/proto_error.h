/* The error envelope of every non-2xx response (proto/API.md "Errors"):
 *   {"error": {"code": 400, "type": "invalid_request", "message": "...",
 *              "param": "items[1].image.png"}}
 * param names the offending request field as a path (null when the error is
 * not about one field). */
#ifndef DSR_PROTO_ERROR_H
#define DSR_PROTO_ERROR_H

#include <jansson.h>

#define PROTO_MSG_MAX 512
#define PROTO_PARAM_MAX 160

struct proto_error {
    int code;                     /* HTTP status: 400, 401, 404, 405, 413, 415, 500, 503 */
    char message[PROTO_MSG_MAX];
    char param[PROTO_PARAM_MAX];  /* "" when no single field is at fault */
};

/* Fills e and returns -1 (so decoders can `return proto_fail(...)`).
 * param may be NULL. */
int proto_fail(struct proto_error *e, int code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "invalid_request", "unauthorized", "not_found", "payload_too_large",
 * "unsupported_media_type", "unavailable" or "internal" for a status code. */
const char *proto_error_type(int code);

/* New reference to the envelope object. */
json_t *proto_error_json(const struct proto_error *e);

#endif
