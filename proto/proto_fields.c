#include "proto_fields.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void proto_path(char *buf, size_t size, const char *path, const char *key) {
    if (path && path[0]) snprintf(buf, size, "%s.%s", path, key);
    else snprintf(buf, size, "%s", key);
}

void proto_path_index(char *buf, size_t size, const char *path, int i) { snprintf(buf, size, "%s[%d]", path, i); }

int proto_get_bool(const json_t *obj, const char *path, const char *key, bool *out, struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (!json_is_boolean(v)) return proto_fail(e, 400, p, "%s must be a boolean", p);
    *out = json_is_true(v);
    return 1;
}

int proto_get_int(const json_t *obj, const char *path, const char *key, long long lo, long long hi, long long *out,
                  struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (!json_is_integer(v)) return proto_fail(e, 400, p, "%s must be an integer", p);
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return proto_fail(e, 400, p, "%s = %lld is outside [%lld, %lld]", p, x, lo, hi);
    *out = x;
    return 1;
}

int proto_get_number(const json_t *obj, const char *path, const char *key, double lo, double hi, double *out,
                     struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (!json_is_number(v)) return proto_fail(e, 400, p, "%s must be a number", p);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) return proto_fail(e, 400, p, "%s = %g is outside [%g, %g]", p, x, lo, hi);
    *out = x;
    return 1;
}

bool proto_to_float(double d, float *out) {
    float f = (float)d;
    if (!isfinite(d) || !isfinite(f)) return false;
    *out = f;
    return true;
}

int proto_get_float(const json_t *obj, const char *path, const char *key, double lo, double hi, bool lo_open,
                    float *out, struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (!json_is_number(v)) return proto_fail(e, 400, p, "%s must be a number", p);
    double x = json_number_value(v);
    float f;
    bool ok = proto_to_float(x, &f) && (lo_open ? f > lo : f >= lo) && f <= hi; /* -0.0 is not > 0 */
    if (!ok)
        return proto_fail(e, 400, p, "%s = %g is outside %s%g, %g] as a float32 (%g)", p, x, lo_open ? "(" : "[", lo, hi,
                          (double)(float)x);
    *out = f;
    return 1;
}

int proto_get_string(const json_t *obj, const char *path, const char *key, size_t max_bytes, const char **out,
                     size_t *len, struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (!json_is_string(v)) return proto_fail(e, 400, p, "%s must be a string", p);
    size_t n = json_string_length(v);
    if (n > max_bytes) return proto_fail(e, 400, p, "%s is %zu bytes, over the limit of %zu", p, n, max_bytes);
    if (memchr(json_string_value(v), 0, n)) return proto_fail(e, 400, p, "%s contains a NUL character", p);
    *out = json_string_value(v);
    *len = n;
    return 1;
}

int proto_require(const json_t *obj, const char *path, const char *key, const json_t **out, struct proto_error *e) {
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        char p[PROTO_PARAM_MAX];
        proto_path(p, sizeof p, path, key);
        return proto_fail(e, 400, p, "missing required field %s", p);
    }
    *out = v;
    return 1;
}

char *proto_strdup(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}
