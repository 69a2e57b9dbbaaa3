/* A sharded checkpoint's model.safetensors.index.json: the input is the
 * index, written beside two small valid shards (shard-a.safetensors holds
 * "a.weight" and "b.weight", shard-b.safetensors "c.bias") in a directory
 * made once per process and removed at exit (the harness's only state).
 * An accepted index must name shards whose tensors are all found. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_targets.h"
#include "io/safetensors_write.h"
#include "io/safetensors_dir.h"

static char g_dir[64];

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char path[192];
    while (d && (e = readdir(d)))
        if (snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name) < (int)sizeof path) unlink(path);
    if (d) closedir(d);
    rmdir(g_dir);
}

static int make_dir(void) {
    if (g_dir[0]) return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/dsr-fuzz-shards-XXXXXX");
    if (!mkdtemp(g_dir)) return g_dir[0] = 0, -1;
    atexit(remove_dir);
    static const int64_t s2[2] = {2, 3}, s1[1] = {4};
    static const float v[6] = {1, 2, 3, 4, 5, 6};
    struct st_out a[2] = {{"a.weight", 2, s2, v, NULL}, {"b.weight", 1, s1, v, NULL}}, b[1] = {{"c.bias", 1, s1, v, NULL}};
    char path[192];
    struct dsr_err err;
    snprintf(path, sizeof path, "%s/shard-a.safetensors", g_dir);
    if (st_write_f32(path, a, 2, NULL, 0, &err)) return -1;
    snprintf(path, sizeof path, "%s/shard-b.safetensors", g_dir);
    return st_write_f32(path, b, 1, NULL, 0, &err);
}

int fuzz_shard_index(const uint8_t *data, size_t size) {
    if (make_dir()) return 0;
    char path[192];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", g_dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || wrote != size) return 0;
    struct st_set set;
    struct dsr_err err;
    if (st_set_open_dir(g_dir, &set, &err) == 0) {
        FUZZ_CHECK(set.n_files >= 1 && set.n_files <= 2);
        st_set_close(&set);
    } else {
        FUZZ_CHECK(set.n_files == 0 && err.msg[0]);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_shard_index)
