#include "train_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void train_state_init(struct train_state *s, uint64_t seed, long policy_version) {
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->policy_version = policy_version;
    rng_seed(&s->rng, seed);
    s->last_checkpoint_version = -1;
}

/* 64-bit values travel as hex strings: JSON integers are signed and jansson's
 * are json_int_t (long long), which cannot hold every uint64_t. */
static json_t *u64_json(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%016" PRIx64, v);
    return json_string(buf);
}

static int u64_from_json(const json_t *j, uint64_t *v) {
    const char *s = json_string_value(j);
    if (!s || strlen(s) != 16) return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 16);
    if (errno || *end) return -1;
    *v = (uint64_t)x;
    return 0;
}

static int fsync_dir_of(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = '\0';
        else *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int train_state_save(const struct train_state *s, const char *path, struct dsr_err *err) {
    json_t *rng = json_array();
    for (int i = 0; i < 4; i++) json_array_append_new(rng, u64_json(s->rng.s[i]));
    json_t *root = json_pack("{s:i, s:I, s:I, s:o, s:o, s:o, s:o, s:s, s:s, s:I}", "format", 1, "step",
                             (json_int_t)s->step, "policy_version", (json_int_t)s->policy_version, "seed",
                             u64_json(s->seed), "image_cursor", u64_json(s->image_cursor), "prompt_cursor",
                             u64_json(s->prompt_cursor), "rng", rng, "pending_key", s->pending_key,
                             "last_checkpoint", s->last_checkpoint, "last_checkpoint_version",
                             (json_int_t)s->last_checkpoint_version);
    if (!root) return dsr_errf(err, "state: cannot encode (non-UTF-8 checkpoint name?)");
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text) return dsr_errf(err, "state: out of memory");

    int rc = atomic_write_file(path, text, strlen(text), err);
    free(text);
    return rc < 0 ? dsr_err_prefix(err, "state") : 0;
}

int atomic_write_file(const char *path, const char *data, size_t len, struct dsr_err *err) {
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) return dsr_errf(err, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return dsr_errf(err, "cannot create %s: %s", tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dsr_errf(err, "cannot write %s: %s", path, strerror(e));
    }
    if (fsync_dir_of(path) != 0) return dsr_errf(err, "cannot sync the directory of %s", path);
    return 0;
}

static int copy_str(const json_t *root, const char *key, char *dst, size_t size) {
    const char *v = json_string_value(json_object_get(root, key));
    if (!v || strlen(v) >= size) return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int train_state_load(struct train_state *s, const char *path, struct dsr_err *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return dsr_errf(err, "state %s: %s (line %d)", path, jerr.text, jerr.line);
    memset(s, 0, sizeof *s);
    const json_t *rng = json_object_get(root, "rng");
    json_int_t step = -1, version = -1, ckpt_version = -2;
    int format = 0;
    int bad = json_unpack(root, "{s:i, s:I, s:I, s:I}", "format", &format, "step", &step, "policy_version",
                          &version, "last_checkpoint_version", &ckpt_version) != 0 ||
              format != 1 || step < 0 || version < 0 || ckpt_version < -1 ||
              u64_from_json(json_object_get(root, "seed"), &s->seed) ||
              u64_from_json(json_object_get(root, "image_cursor"), &s->image_cursor) ||
              u64_from_json(json_object_get(root, "prompt_cursor"), &s->prompt_cursor) ||
              json_array_size(rng) != 4 || copy_str(root, "pending_key", s->pending_key, sizeof s->pending_key) ||
              copy_str(root, "last_checkpoint", s->last_checkpoint, sizeof s->last_checkpoint);
    for (int i = 0; !bad && i < 4; i++) bad = u64_from_json(json_array_get(rng, (size_t)i), &s->rng.s[i]) != 0;
    json_decref(root);
    if (bad) return dsr_errf(err, "state %s: missing or malformed fields (not a dsr-train state file?)", path);
    s->step = (long)step;
    s->policy_version = (long)version;
    s->last_checkpoint_version = (long)ckpt_version;
    return 0;
}

int train_new_key(char out[TRAIN_KEY_MAX], struct dsr_err *err) {
    uint8_t b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    if (n != sizeof b) return dsr_errf(err, "cannot read /dev/urandom for an idempotency key");
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, TRAIN_KEY_MAX, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}
