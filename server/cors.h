/* CORS for browser clients (--allowed-origins): which Origin a response may
 * name, and the headers of a preflight.  Without the flag dsrd sends no CORS
 * headers, so browsers keep refusing cross-origin calls. */
#ifndef DSRD_CORS_H
#define DSRD_CORS_H

#include <stdbool.h>
#include <stddef.h>

/* The request's Origin when `allowed` (comma-separated origins, or "*")
 * lists it, else NULL.  With "*" any origin is echoed (credentials such as
 * Authorization then still work, which a literal "*" would not allow). */
const char *cors_allowed_origin(const char *allowed, const char *origin);

/* "GET, OPTIONS" style list of the methods the route table has for path
 * into out; false when no route has that path. */
bool cors_methods(const char *path, char *out, size_t size);

#endif
