#include "io/safetensors_write.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t numel_of(const struct st_out *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static char *build_header(const struct st_out *tensors, size_t n, const char *const *meta, size_t n_meta,
                          size_t *len, struct dsr_err *err) {
    json_t *root = json_object(), *md = json_object();
    int ok = root && md;
    for (size_t i = 0; ok && i < n_meta; i++) ok = json_object_set_new(md, meta[2 * i], json_string(meta[2 * i + 1])) == 0;
    if (ok && n_meta) ok = json_object_set(root, "__metadata__", md) == 0;
    size_t offset = 0;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; shape && d < tensors[i].ndim; d++) json_array_append_new(shape, json_integer(tensors[i].shape[d]));
        bool bf16 = tensors[i].data == NULL;
        size_t bytes = numel_of(&tensors[i]) * (bf16 ? sizeof(uint16_t) : sizeof(float));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", bf16 ? "BF16" : "F32", "shape", shape, "data_offsets",
                                  (json_int_t)offset, (json_int_t)(offset + bytes));
        ok = entry && json_object_set_new(root, tensors[i].name, entry) == 0;
        offset += bytes;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(md);
    json_decref(root);
    if (!text) {
        dsr_errf(err, "out of memory building a safetensors header");
        return NULL;
    }
    size_t raw = strlen(text), padded = (raw + 7) / 8 * 8;
    char *out = malloc(padded + 1);
    if (out) {
        memcpy(out, text, raw);
        memset(out + raw, ' ', padded - raw);
        out[padded] = 0;
        *len = padded;
    } else {
        dsr_errf(err, "out of memory");
    }
    free(text);
    return out;
}

int st_write_f32(const char *path, const struct st_out *tensors, size_t n, const char *const *meta, size_t n_meta,
                 struct dsr_err *err) {
    size_t hlen = 0;
    char *header = build_header(tensors, n, meta, n_meta, &hlen, err);
    if (!header) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(header);
        return dsr_errf(err, "cannot create %s: %s", path, strerror(errno));
    }
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len_le, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = 0; ok && i < n; i++) {
        size_t count = numel_of(&tensors[i]);
        ok = tensors[i].data ? fwrite(tensors[i].data, sizeof(float), count, f) == count
                             : fwrite(tensors[i].bf16, sizeof(uint16_t), count, f) == count;
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    free(header);
    if (!ok) return dsr_errf(err, "writing %s failed: %s", path, strerror(saved ? saved : errno));
    return 0;
}
