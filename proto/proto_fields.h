/* Typed, range-checked access to JSON object members for the decoders.
 * Each getter leaves *out untouched when the member is absent (so callers
 * set defaults first), fails with a proto_error naming path.key when it has
 * the wrong type or range, and returns 1 if present, 0 if absent, -1 on error. */
#ifndef DSR_PROTO_FIELDS_H
#define DSR_PROTO_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_error.h"

/* Writes "path.key" (or "key" when path is empty) into buf. */
void proto_path(char *buf, size_t size, const char *path, const char *key);
/* Writes "path[i]". */
void proto_path_index(char *buf, size_t size, const char *path, int i);

int proto_get_bool(const json_t *obj, const char *path, const char *key, bool *out, struct proto_error *e);
int proto_get_int(const json_t *obj, const char *path, const char *key, long long lo, long long hi, long long *out,
                  struct proto_error *e);
int proto_get_number(const json_t *obj, const char *path, const char *key, double lo, double hi, double *out,
                     struct proto_error *e);
/* A number stored as float32, range-checked in that precision: the float
 * must be finite and in [lo, hi] (in (lo, hi] when lo_open), so a value that
 * rounds to 0, to 1 or to infinity on conversion is refused here rather than
 * corrupting arithmetic later. */
int proto_get_float(const json_t *obj, const char *path, const char *key, double lo, double hi, bool lo_open,
                    float *out, struct proto_error *e);
/* d as a finite float32 into *out; false when it overflows float32. */
bool proto_to_float(double d, float *out);
/* A string of at most max_bytes; *out borrows jansson's storage. */
int proto_get_string(const json_t *obj, const char *path, const char *key, size_t max_bytes, const char **out,
                     size_t *len, struct proto_error *e);
/* A present member required: fails "missing field" when absent. */
int proto_require(const json_t *obj, const char *path, const char *key, const json_t **out, struct proto_error *e);
/* malloc'ed NUL-terminated copy, or NULL when out of memory. */
char *proto_strdup(const char *s, size_t len);

#endif
