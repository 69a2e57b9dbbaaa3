/* A checkpoint's safetensors files as one name space: a single
 * `model.safetensors`, or the shards listed by `model.safetensors.index.json`
 * (its weight_map is checked: every listed tensor must be in the shard the
 * index names).  Owns the opened files; free with st_set_close(). */
#ifndef DSR_ST_SET_H
#define DSR_ST_SET_H

#include "io/safetensors.h"

struct st_set {
    struct st_file **files;
    size_t n_files;
};

/* Opens dir/model.safetensors.index.json if present, else dir/model.safetensors. */
int st_set_open_dir(const char *dir, struct st_set *set, struct dsr_err *err);
/* Opens one file (e.g. a checkpoint written by dsr or a test file). */
int st_set_open_file(const char *path, struct st_set *set, struct dsr_err *err);
/* One in-memory file (st_open_memory: the buffer outlives the set). */
int st_set_open_memory(const char *name, const uint8_t *data, size_t size, struct st_set *set, struct dsr_err *err);
void st_set_close(struct st_set *set);

const struct st_tensor *st_set_find(const struct st_set *set, const char *name);
/* First "__metadata__" value for key across the files, or NULL. */
const char *st_set_meta(const struct st_set *set, const char *key);

#endif
