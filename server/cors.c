#include "cors.h"

#include <stdio.h>
#include <string.h>

#include "routes.h"

const char *cors_allowed_origin(const char *allowed, const char *origin) {
    if (!allowed || !origin || !origin[0]) return NULL;
    size_t n = strlen(origin);
    for (const char *p = allowed; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        size_t len = (size_t)(end - p);
        while (len && p[len - 1] == ' ') len--;
        if ((len == 1 && *p == '*') || (len == n && strncmp(p, origin, n) == 0)) return origin;
        p = end;
    }
    return NULL;
}

bool cors_methods(const char *path, char *out, size_t size) {
    size_t used = 0;
    out[0] = 0;
    for (const struct route *r = routes_table(); r->path; r++) {
        if (!route_matches(r, path)) continue;
        int k = snprintf(out + used, size - used, "%s, ", r->method);
        if (k < 0 || (size_t)k >= size - used) return false;
        used += (size_t)k;
    }
    if (!used) return false;
    snprintf(out + used, size - used, "OPTIONS");
    return true;
}
