#include "train/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/model_config_write.h"
#include "io/safetensors_write.h"
#include "io/safetensors_dir.h"
#include "train/adapter.h"

#define PATH_MAX_LEN 4096

/* Files copied verbatim from the source checkpoint when present. */
static const char *const COPIED[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                     "preprocessor_config.json", "generation_config.json"};
/* Every file checkpoint_write may create (for clean-up on failure). */
static const char *const WRITTEN[] = {"config.json", "model.safetensors", "optimizer.safetensors",
                                      ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, CHECKPOINT_PARTIAL_MARKER};

static int join(char *out, const char *dir, const char *name, struct dsr_err *err) {
    if (snprintf(out, PATH_MAX_LEN, "%s/%s", dir, name) >= PATH_MAX_LEN) return dsr_errf(err, "path too long: %s", dir);
    return 0;
}

static int fsync_path(const char *path, int flags, struct dsr_err *err) {
    int fd = open(path, flags);
    if (fd < 0) return dsr_errf(err, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc) return dsr_errf(err, "fsync %s: %s", path, strerror(saved));
    return 0;
}

static int write_bytes(const char *path, const char *text, size_t len, struct dsr_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return dsr_errf(err, "cannot create %s: %s", path, strerror(errno));
    int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok) return dsr_errf(err, "writing %s failed", path);
    return 0;
}

static int copy_file(const char *from, const char *to, struct dsr_err *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return dsr_errf(err, "cannot open %s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return dsr_errf(err, "cannot create %s: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fileno(out)) == 0;
    fclose(in);
    ok = fclose(out) == 0 && ok;
    if (!ok) return dsr_errf(err, "copying %s to %s failed", from, to);
    return 0;
}

static int write_model(const struct janus_model *m, const char *path, const char *version, struct dsr_err *err) {
    const struct param_table *pt = &m->params;
    struct st_out *t = malloc((pt->n + 1) * sizeof *t);
    if (!t) return dsr_errf(err, "out of memory");
    for (size_t i = 0; i < pt->n; i++)
        t[i] = (struct st_out){pt->items[i].name, pt->items[i].ndim, pt->items[i].shape, pt_data(pt, &pt->items[i]),
                               pt_data_bf16(pt, &pt->items[i])};
    const char *meta[] = {"format", "pt", "policy_version", version};
    int rc = st_write_f32(path, t, pt->n, meta, 2, err);
    free(t);
    return rc;
}

/* The adapters under PEFT's names (F32). */
static int write_adapters(const struct janus_model *m, const char *path, const char *version, struct dsr_err *err) {
    const struct param_table *pt = &m->params;
    struct st_out *t = malloc((pt->n + 1) * sizeof *t);
    char (*names)[DSR_PARAM_NAME_MAX + 32] = malloc((pt->n + 1) * sizeof *names);
    size_t k = 0;
    int rc = t && names ? 0 : dsr_errf(err, "out of memory");
    for (size_t i = 0; i < pt->n && rc == 0; i++) {
        const struct param *p = &pt->items[i];
        if (!p->adapter) continue;
        snprintf(names[k], sizeof names[k], ADAPTER_TENSOR_PREFIX "%s", p->name);
        t[k] = (struct st_out){names[k], p->ndim, p->shape, pt_data(pt, p), NULL};
        k++;
    }
    const char *meta[] = {"format", "pt", "policy_version", version};
    if (rc == 0) rc = st_write_f32(path, t, k, meta, 2, err);
    free(t);
    free(names);
    return rc;
}

static int write_optimizer(const struct janus_model *m, const struct trainer *tr, const char *path,
                           const char *version, struct dsr_err *err) {
    const struct param_table *pt = &m->params;
    if (tr->n_params != pt->n_trainable) return dsr_errf(err, "trainer does not match the model");
    struct st_out *t = malloc((2 * pt->n + 1) * sizeof *t);
    char (*names)[DSR_PARAM_NAME_MAX + 16] = malloc((2 * pt->n + 1) * sizeof *names);
    if (!t || !names) {
        free(t);
        free(names);
        return dsr_errf(err, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (!p->trainable) continue;
        snprintf(names[k], sizeof names[k], "%s.exp_avg", p->name);
        t[k] = (struct st_out){names[k], p->ndim, p->shape, tr->adam_m + p->offset, NULL};
        k++;
        snprintf(names[k], sizeof names[k], "%s.exp_avg_sq", p->name);
        t[k] = (struct st_out){names[k], p->ndim, p->shape, tr->adam_v + p->offset, NULL};
        k++;
    }
    char step[32];
    snprintf(step, sizeof step, "%ld", tr->step);
    const char *meta[] = {"format", "pt", "policy_version", version, "step", step};
    int rc = st_write_f32(path, t, k, meta, 3, err);
    free(t);
    free(names);
    return rc;
}

static int write_text(const char *path, const char *text, struct dsr_err *err) {
    return write_bytes(path, text, strlen(text), err);
}

static void remove_temp(const char *tmp, const struct checkpoint_extra *extra, size_t n_extra) {
    char path[PATH_MAX_LEN];
    for (size_t i = 0; i < n_extra; i++)
        if (snprintf(path, sizeof path, "%s/%s", tmp, extra[i].name) < (int)sizeof path) unlink(path);
    for (size_t i = 0; i < sizeof WRITTEN / sizeof WRITTEN[0]; i++)
        if (snprintf(path, sizeof path, "%s/%s", tmp, WRITTEN[i]) < (int)sizeof path) unlink(path);
    for (size_t i = 0; i < sizeof COPIED / sizeof COPIED[0]; i++)
        if (snprintf(path, sizeof path, "%s/%s", tmp, COPIED[i]) < (int)sizeof path) unlink(path);
    rmdir(tmp);
}

/* The last component of path (trailing slashes ignored) into out. */
static void base_of(const char *path, char *out) {
    snprintf(out, PATH_MAX_LEN, "%s", path);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') out[--len] = 0;
    const char *slash = strrchr(out, '/');
    if (slash) memmove(out, slash + 1, strlen(slash + 1) + 1);
}

/* Directory containing path ("." when none). */
static void parent_of(const char *path, char *out) {
    snprintf(out, PATH_MAX_LEN, "%s", path);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') out[--len] = 0;
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, PATH_MAX_LEN, ".");
    else if (slash == out) out[1] = 0;
    else *slash = 0;
}

static int write_all(const struct janus_model *m, const struct trainer *tr, const char *tmp, const char *version,
                     const char *source_dir, const char *base_name, const struct checkpoint_extra *extra,
                     size_t n_extra, struct dsr_err *err) {
    char path[PATH_MAX_LEN], src[PATH_MAX_LEN];
    bool lora = m->lora.rank > 0;
    char *config = lora ? adapter_config_json(&m->lora, base_name, err) : janus_config_to_json(&m->cfg, err);
    if (!config) return -1;
    int rc = join(path, tmp, lora ? ADAPTER_CONFIG_FILE : "config.json", err) || write_text(path, config, err);
    free(config);
    if (rc == 0)
        rc = join(path, tmp, lora ? ADAPTER_WEIGHTS_FILE : "model.safetensors", err) ||
             (lora ? write_adapters(m, path, version, err) : write_model(m, path, version, err));
    if (rc == 0 && tr) rc = join(path, tmp, "optimizer.safetensors", err) || write_optimizer(m, tr, path, version, err);
    for (size_t i = 0; rc == 0 && source_dir && i < sizeof COPIED / sizeof COPIED[0]; i++) {
        if (join(src, source_dir, COPIED[i], err) || join(path, tmp, COPIED[i], err)) return -1;
        if (access(src, R_OK) == 0) rc = copy_file(src, path, err);
    }
    for (size_t i = 0; rc == 0 && i < n_extra; i++)
        rc = join(path, tmp, extra[i].name, err) || write_bytes(path, extra[i].text, extra[i].len, err);
    return rc;
}

int checkpoint_write(const struct janus_model *m, const struct trainer *tr, const char *dir, long policy_version,
                     const char *source_dir, const char *base_name, const struct checkpoint_extra *extra,
                     size_t n_extra, struct dsr_err *err) {
    struct stat st;
    if (stat(dir, &st) == 0) return dsr_errf(err, "checkpoint %s already exists", dir);
    for (size_t i = 0; i < n_extra; i++)
        if (!extra[i].name[0] || strchr(extra[i].name, '/'))
            return dsr_errf(err, "checkpoint extra file name '%s' is not a plain name", extra[i].name);
    char tmp[PATH_MAX_LEN], parent[PATH_MAX_LEN], base[PATH_MAX_LEN], path[PATH_MAX_LEN], version[32];
    parent_of(dir, parent);
    base_of(dir, base);
    if (snprintf(tmp, sizeof tmp, "%s/" CHECKPOINT_PARTIAL_PREFIX "%s.XXXXXX", parent, base) >= (int)sizeof tmp)
        return dsr_errf(err, "path too long");
    if (!mkdtemp(tmp)) return dsr_errf(err, "cannot create a directory beside %s: %s", dir, strerror(errno));
    /* held until the rename: checkpoint_remove_partials skips a locked directory */
    int lock = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = lock < 0 || flock(lock, LOCK_EX) != 0 ? dsr_errf(err, "cannot lock %s: %s", tmp, strerror(errno)) : 0;
    snprintf(version, sizeof version, "%ld", policy_version);
    if (rc == 0) rc = join(path, tmp, CHECKPOINT_PARTIAL_MARKER, err) || write_text(path, "", err);
    if (rc == 0) rc = write_all(m, tr, tmp, version, source_dir, base_name, extra, n_extra, err);
    if (rc == 0 && unlink(path) != 0) rc = dsr_errf(err, "cannot remove %s: %s", path, strerror(errno));
    if (rc == 0) rc = fsync_path(tmp, O_RDONLY | O_DIRECTORY, err);
    if (rc == 0 && rename(tmp, dir) != 0) rc = dsr_errf(err, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
    if (rc) remove_temp(tmp, extra, n_extra);
    if (lock >= 0) close(lock);
    if (rc) return dsr_err_prefix(err, "checkpoint %s", dir);
    return fsync_path(parent, O_RDONLY | O_DIRECTORY, err);
}

/* Whether dir is a partial checkpoint: by its name or by the marker. */
static int is_partial(const char *dir) {
    char base[PATH_MAX_LEN], marker[PATH_MAX_LEN];
    base_of(dir, base);
    if (strncmp(base, CHECKPOINT_PARTIAL_PREFIX, strlen(CHECKPOINT_PARTIAL_PREFIX)) == 0) return 1;
    return snprintf(marker, sizeof marker, "%s/%s", dir, CHECKPOINT_PARTIAL_MARKER) < (int)sizeof marker &&
           access(marker, F_OK) == 0;
}

int checkpoint_remove_partials(const char *parent, int *removed, struct dsr_err *err) {
    *removed = 0;
    DIR *d = opendir(parent);
    if (!d) return dsr_errf(err, "cannot read %s: %s", parent, strerror(errno));
    struct dirent *e;
    char path[PATH_MAX_LEN];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, CHECKPOINT_PARTIAL_PREFIX, strlen(CHECKPOINT_PARTIAL_PREFIX)) != 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", parent, e->d_name) >= (int)sizeof path) continue;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* no live writer */
            DIR *sub = fdopendir(dup(fd));
            struct dirent *f;
            while (sub && (f = readdir(sub)))
                if (strcmp(f->d_name, ".") && strcmp(f->d_name, "..")) unlinkat(fd, f->d_name, 0);
            if (sub) closedir(sub);
            *removed += rmdir(path) == 0;
        }
        close(fd);
    }
    closedir(d);
    return 0;
}

/* Every name must be present in set with the shape of the declared
 * parameter, as a floating-point tensor. */
static int check_tensor(const struct st_set *set, const char *name, const struct param *p, struct dsr_err *err) {
    const struct st_tensor *t = st_set_find(set, name);
    if (!t) return dsr_errf(err, "tensor %s is missing", name);
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (!same) return dsr_errf(err, "tensor %s has a different shape than the model's", name);
    if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F64)
        return dsr_errf(err, "tensor %s is not floating point (%s)", name, st_dtype_name(t->dtype));
    /* a served model must stay finite: such a checkpoint is refused, not loaded */
    if (!st_finite_f32(t)) return dsr_errf(err, "tensor %s holds NaN or infinite values", name);
    return 0;
}

/* Checks (load == 0) or loads (load == 1) the AdamW moments from set. */
static int optimizer_pass(const struct janus_model *m, struct trainer *tr, const struct st_set *set, int load,
                          struct dsr_err *err) {
    const struct param_table *pt = &m->params;
    char name[DSR_PARAM_NAME_MAX + 16];
    for (size_t i = 0; i < pt->n; i++) {
        const struct param *p = &pt->items[i];
        if (!p->trainable) continue;
        for (int which = 0; which < 2; which++) {
            snprintf(name, sizeof name, "%s.%s", p->name, which ? "exp_avg_sq" : "exp_avg");
            int rc = load ? st_to_f32(st_set_find(set, name), (which ? tr->adam_v : tr->adam_m) + p->offset, err)
                          : check_tensor(set, name, p, err);
            if (rc) return dsr_err_prefix(err, "optimizer state");
        }
    }
    return 0;
}

/* A non-negative integer from a metadata string. */
static int parse_count(const char *s, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 0) return -1;
    *out = v;
    return 0;
}

int checkpoint_load_weights(struct janus_model *m, const char *dir, long *policy_version, struct trainer *tr,
                            struct dsr_err *err) {
    if (tr && tr->n_params != m->params.n_trainable) return dsr_errf(err, "trainer does not match the model");
    if (is_partial(dir))
        return dsr_errf(err, "checkpoint %s is a partial checkpoint (its write did not complete); it is never loaded",
                        dir);
    bool lora = m->lora.rank > 0, is_adapter = adapter_dir_exists(dir);
    if (lora != is_adapter)
        return dsr_errf(err, lora ? "checkpoint %s: the model trains LoRA adapters and reloads adapter directories "
                                    "(" ADAPTER_CONFIG_FILE "); a full checkpoint needs a server started without "
                                    "--lora-rank"
                                  : "checkpoint %s is a LoRA adapter (" ADAPTER_CONFIG_FILE "); start the server "
                                    "with --adapter, or merge it into a full checkpoint with dsr merge",
                        dir);
    struct st_set set, opt = {0};
    char path[PATH_MAX_LEN];
    if (lora) {
        struct lora_config have;
        if (adapter_config_read(dir, &have, NULL, 0, err) || adapter_config_check(&have, &m->lora, err) ||
            join(path, dir, ADAPTER_WEIGHTS_FILE, err) || st_set_open_file(path, &set, err))
            return dsr_err_prefix(err, "checkpoint %s", dir);
    } else if (st_set_open_dir(dir, &set, err)) {
        return dsr_err_prefix(err, "checkpoint %s", dir);
    }
    int rc = 0;
    char name[DSR_PARAM_NAME_MAX + 32];
    for (size_t i = 0; i < m->params.n && rc == 0; i++) {
        const struct param *p = &m->params.items[i];
        if (lora != p->adapter) continue; /* an adapter directory holds the adapters, a full checkpoint the rest */
        snprintf(name, sizeof name, "%s%s", lora ? ADAPTER_TENSOR_PREFIX : "", p->name);
        rc = check_tensor(&set, name, p, err);
    }
    long version = 0, step = 0;
    const char *v = rc ? NULL : st_set_meta(&set, "policy_version");
    if (v && parse_count(v, &version)) rc = dsr_errf(err, "metadata policy_version \"%s\" is not a count", v);
    /* the optimizer file is opened and checked before any weight changes */
    int have_opt = 0;
    if (rc == 0 && tr) {
        rc = join(path, dir, "optimizer.safetensors", err);
        have_opt = rc == 0 && access(path, R_OK) == 0;
        if (have_opt) rc = st_set_open_file(path, &opt, err);
        if (have_opt && rc == 0) {
            const char *s = st_set_meta(&opt, "step");
            if (!s || parse_count(s, &step)) rc = dsr_errf(err, "optimizer.safetensors: metadata step missing or bad");
            else rc = optimizer_pass(m, tr, &opt, 0, err);
        }
    }
    if (rc == 0) rc = lora ? pt_load_adapters(&m->params, &set, ADAPTER_TENSOR_PREFIX, err) : pt_load(&m->params, &set, err);
    if (rc == 0 && tr) {
        if (have_opt) {
            rc = optimizer_pass(m, tr, &opt, 1, err);
        } else {
            memset(tr->adam_m, 0, tr->n_params * sizeof(float));
            memset(tr->adam_v, 0, tr->n_params * sizeof(float));
        }
        tr->step = step;
    }
    st_set_close(&set);
    st_set_close(&opt);
    if (rc) return dsr_err_prefix(err, "checkpoint %s", dir);
    if (policy_version) *policy_version = version;
    return 0;
}
