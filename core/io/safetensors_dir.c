#include "io/safetensors_dir.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file_read.h"

/* A shard index lists tensor names (~100 KB for a 7B model). */
#define ST_MAX_INDEX_BYTES (64u << 20)

static int add_file(struct st_set *set, const char *path, struct dsr_err *err) {
    struct st_file **grown = realloc(set->files, (set->n_files + 1) * sizeof *grown);
    if (!grown) return dsr_errf(err, "out of memory");
    set->files = grown;
    if (st_open(path, &set->files[set->n_files], err) != 0) return -1;
    set->n_files++;
    return 0;
}

int st_set_open_file(const char *path, struct st_set *set, struct dsr_err *err) {
    set->files = NULL;
    set->n_files = 0;
    if (add_file(set, path, err) != 0) {
        st_set_close(set);
        return -1;
    }
    return 0;
}

int st_set_open_memory(const char *name, const uint8_t *data, size_t size, struct st_set *set, struct dsr_err *err) {
    set->n_files = 0;
    set->files = malloc(sizeof *set->files);
    if (!set->files) return dsr_errf(err, "out of memory");
    if (st_open_memory(name, data, size, &set->files[0], err) != 0) {
        st_set_close(set);
        return -1;
    }
    set->n_files = 1;
    return 0;
}

/* Shard file names must be plain names inside the checkpoint directory. */
static int safe_shard_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int open_index(const char *dir, const char *index_path, struct st_set *set, struct dsr_err *err) {
    json_error_t jerr;
    char *text;
    size_t len;
    if (file_read_regular(index_path, ST_MAX_INDEX_BYTES, &text, &len, err)) return -1;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return dsr_errf(err, "%s: %s (line %d)", index_path, jerr.text, jerr.line);
    int rc = -1;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        dsr_errf(err, "%s: missing \"weight_map\" object", index_path);
        goto out;
    }
    if (json_object_size(map) == 0) { /* a checkpoint of no tensors: nothing could load from it */
        dsr_errf(err, "%s: \"weight_map\" names no tensors", index_path);
        goto out;
    }
    /* open each distinct shard once, in order of first mention */
    const char *tensor;
    json_t *file;
    char **names = calloc(json_object_size(map) + 1, sizeof *names);
    size_t n_names = 0;
    if (!names) {
        dsr_errf(err, "out of memory");
        goto out;
    }
    json_object_foreach(map, tensor, file) {
        if (!json_is_string(file) || !safe_shard_name(json_string_value(file))) {
            dsr_errf(err, "%s: weight_map[\"%s\"] is not a shard file name", index_path, tensor);
            goto out_names;
        }
        size_t j = 0;
        while (j < n_names && strcmp(names[j], json_string_value(file)) != 0) j++;
        if (j == n_names) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, json_string_value(file));
            if (add_file(set, path, err) != 0) goto out_names;
            names[n_names++] = (char *)json_string_value(file);
        }
        const struct st_tensor *t = st_find(set->files[j], tensor);
        if (!t) {
            dsr_errf(err, "%s: tensor \"%s\" listed in the index is missing from %s", index_path, tensor, names[j]);
            goto out_names;
        }
    }
    rc = 0;
out_names:
    free(names);
out:
    json_decref(root);
    return rc;
}

int st_set_open_dir(const char *dir, struct st_set *set, struct dsr_err *err) {
    set->files = NULL;
    set->n_files = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int rc;
    if (access(path, F_OK) == 0) {
        rc = open_index(dir, path, set, err);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = add_file(set, path, err);
    }
    if (rc != 0) st_set_close(set);
    return rc;
}

void st_set_close(struct st_set *set) {
    for (size_t i = 0; i < set->n_files; i++) st_close(set->files[i]);
    free(set->files);
    set->files = NULL;
    set->n_files = 0;
}

const struct st_tensor *st_set_find(const struct st_set *set, const char *name) {
    for (size_t i = 0; i < set->n_files; i++) {
        const struct st_tensor *t = st_find(set->files[i], name);
        if (t) return t;
    }
    return NULL;
}

const char *st_set_meta(const struct st_set *set, const char *key) {
    for (size_t i = 0; i < set->n_files; i++) {
        const char *v = st_meta_get(set->files[i], key);
        if (v) return v;
    }
    return NULL;
}
