#include "st_writer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t numel(const struct st_out_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* Compact JSON header with data_offsets in the order of t[]. */
static char *header_json(const struct st_out_tensor *t, size_t n) {
    json_t *root = json_object();
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) json_array_append_new(shape, json_integer(t[i].shape[d]));
        size_t bytes = numel(&t[i]) * 4;
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", t[i].dtype, "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + bytes));
        json_object_set_new(root, t[i].name, e);
        off += bytes;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

int st_write_file(const char *path, const struct st_out_tensor *t, size_t n, struct dsr_err *err) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].dtype, "F32") != 0 && strcmp(t[i].dtype, "I32") != 0)
            return dsr_errf(err, "%s: dtype %s is not F32 or I32", t[i].name, t[i].dtype);
    char *hdr = header_json(t, n);
    if (!hdr) return dsr_errf(err, "out of memory for the safetensors header");
    size_t len = strlen(hdr), padded = (len + 7) / 8 * 8;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(hdr);
        return dsr_errf(err, "cannot create %s", tmp);
    }
    uint8_t le[8];
    for (int b = 0; b < 8; b++) le[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) ok = fwrite(t[i].data, 4, numel(&t[i]), f) == numel(&t[i]);
    free(hdr);
    if (fclose(f) != 0 || !ok) {
        remove(tmp);
        return dsr_errf(err, "writing %s failed", tmp);
    }
    if (rename(tmp, path) != 0) return dsr_errf(err, "cannot rename %s to %s", tmp, path);
    return 0;
}
