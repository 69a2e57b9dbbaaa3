/* safetensors reader: dtype conversion, metadata, sharded checkpoints, and
 * strict rejection of malformed files (each with an error naming the issue). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "model/params.h"
#include "io/safetensors.h"
#include "io/safetensors_dir.h"

struct tmpdir {
    char path[256];
};

static void tmpdir_make(struct tmpdir *d) {
    snprintf(d->path, sizeof d->path, "/tmp/dsr_st_XXXXXX");
    if (!mkdtemp(d->path)) abort();
}

static void tmpdir_remove(struct tmpdir *d) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d->path);
}

/* Writes u64 header length, the header text (len may differ from strlen to
 * forge lengths when forged_len != 0), then data. */
static void write_st(const char *path, const char *header, uint64_t forged_len, const void *data, size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint64_t n = forged_len ? forged_len : strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

static void test_reads_dtypes_and_metadata(struct th *t) {
    struct tmpdir d;
    tmpdir_make(&d);
    char path[300];
    snprintf(path, sizeof path, "%s/a.safetensors", d.path);
    /* a: F32 [2] = {1.5, -2}; b: BF16 [2] = {1.0, -0.5}; c: F16 [2] = {1.0, 2^-24 (subnormal)}; i: I64 [1] = {-7} */
    unsigned char data[8 + 4 + 4 + 8];
    float a[2] = {1.5f, -2.0f};
    uint16_t b[2] = {0x3f80, 0xbf00}, c[2] = {0x3c00, 0x0001};
    int64_t i64 = -7;
    memcpy(data, a, 8), memcpy(data + 8, b, 4), memcpy(data + 12, c, 4), memcpy(data + 16, &i64, 8);
    write_st(path,
             "{\"__metadata__\":{\"format\":\"pt\",\"policy_version\":\"3\"},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
             "\"c\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[12,16]},"
             "\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[16,24]}}",
             0, data, sizeof data);
    struct st_file *f;
    struct dsr_err err;
    if (TH_CHECK(t, st_open(path, &f, &err) == 0, "open: %s", err.msg)) {
        float out[2];
        int64_t iv;
        TH_CHECK(t, f->n_tensors == 4, "4 tensors, got %zu", f->n_tensors);
        TH_CHECK(t, st_to_f32(st_find(f, "a"), out, &err) == 0 && out[0] == 1.5f && out[1] == -2.0f, "F32");
        TH_CHECK(t, st_to_f32(st_find(f, "b"), out, &err) == 0 && out[0] == 1.0f && out[1] == -0.5f, "BF16");
        TH_CHECK(t, st_to_f32(st_find(f, "c"), out, &err) == 0 && out[0] == 1.0f && out[1] == 0x1p-24f, "F16");
        TH_CHECK(t, st_to_i64(st_find(f, "i"), &iv, &err) == 0 && iv == -7, "I64 scalar");
        TH_CHECK(t, st_to_f32(st_find(f, "i"), out, &err) != 0, "I64 as float must fail");
        TH_CHECK(t, st_find(f, "c")->ndim == 2 && st_find(f, "i")->ndim == 0, "ranks");
        const char *pv = st_meta_get(f, "policy_version");
        TH_CHECK(t, pv && strcmp(pv, "3") == 0, "metadata");
        TH_CHECK(t, st_find(f, "zz") == NULL, "absent name");
        st_close(f);
    }
    TH_CHECK(t, st_f32_to_bf16(1.0f) == 0x3f80 && st_f32_to_bf16(1.00390625f) == 0x3f80 &&
                    st_f32_to_bf16(1.01171875f) == 0x3f82,
             "bf16 round to nearest even");
    tmpdir_remove(&d);
}

struct bad_case {
    const char *what;
    const char *header;
    uint64_t forged_len;
    size_t data_len;
    const char *expect; /* substring of the error message */
};

static void test_rejects_malformed(struct th *t) {
    static const unsigned char zeros[64];
    const struct bad_case cases[] = {
        {"bad JSON", "{\"a\":{\"dtype\":\"F32\",", 0, 0, "JSON"},
        {"not an object", "[1,2,3]", 0, 0, "{"},
        {"oversized header", "{}", 200u * 1000u * 1000u, 0, "limit"},
        {"header past end", "{}", 4096, 0, "past the end"},
        {"offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8, "past the end"},
        {"wrong byte count", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8, "expected 12"},
        {"duplicate names",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         0, 8, "duplicate"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         0, 8, "overlaps"},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, "gap"},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 8, "after the last"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, "dtype"},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, "shape"},
        {"reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4, "offsets"},
        {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4, "data_offsets"},
        {"huge shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 0, 4,
         "overflow"},
    };
    struct tmpdir d;
    tmpdir_make(&d);
    char path[300];
    snprintf(path, sizeof path, "%s/bad.safetensors", d.path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_st(path, cases[i].header, cases[i].forged_len, zeros, cases[i].data_len);
        struct st_file *f = NULL;
        struct dsr_err err = {{0}};
        int rc = st_open(path, &f, &err);
        TH_CHECK(t, rc != 0 && f == NULL, "%s: accepted", cases[i].what);
        TH_CHECK(t, strstr(err.msg, cases[i].expect) != NULL, "%s: message \"%s\" lacks \"%s\"", cases[i].what,
                 err.msg, cases[i].expect);
        if (f) st_close(f);
    }
    tmpdir_remove(&d);
}

/* Every prefix of a valid file is rejected (truncated download). */
static void test_rejects_every_truncation(struct th *t) {
    struct tmpdir d;
    tmpdir_make(&d);
    char path[300];
    snprintf(path, sizeof path, "%s/t.safetensors", d.path);
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    float w[4] = {1, 2, 3, 4};
    write_st(path, hdr, 0, w, sizeof w);
    FILE *f = fopen(path, "rb");
    unsigned char full[256];
    size_t n = fread(full, 1, sizeof full, f);
    fclose(f);
    struct st_file *ok;
    struct dsr_err err;
    TH_CHECK(t, st_open(path, &ok, &err) == 0, "full file: %s", err.msg);
    if (ok) st_close(ok);
    int accepted = 0;
    for (size_t cut = 0; cut < n; cut++) {
        FILE *g = fopen(path, "wb");
        fwrite(full, 1, cut, g);
        fclose(g);
        struct st_file *x = NULL;
        if (st_open(path, &x, &err) == 0) {
            accepted++;
            st_close(x);
        }
    }
    TH_CHECK(t, accepted == 0, "%d truncated prefixes accepted", accepted);
    tmpdir_remove(&d);
}

static void test_sharded_checkpoint(struct th *t) {
    struct tmpdir d;
    tmpdir_make(&d);
    char path[300];
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", d.path);
    write_st(path, "{\"x.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, a, sizeof a);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", d.path);
    write_st(path, "{\"x.b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 0, b, sizeof b);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", d.path);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"metadata\":{},\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
               "\"x.b\":\"model-00002-of-00002.safetensors\"}}");
    fclose(f);

    struct st_set set;
    struct dsr_err err;
    if (TH_CHECK(t, st_set_open_dir(d.path, &set, &err) == 0, "open shards: %s", err.msg)) {
        TH_CHECK(t, set.n_files == 2, "2 shards");
        const struct st_tensor *tb = st_set_find(&set, "x.b");
        TH_CHECK(t, tb && tb->numel == 3, "x.b found in shard 2");
        /* the param table loads across shards and reports missing names */
        struct param_table pt;
        pt_init(&pt);
        pt_declare(&pt, true, 1, (int64_t[]){2}, &err, "x.a");
        pt_declare(&pt, false, 1, (int64_t[]){3}, &err, "x.b");
        pt_alloc(&pt, &err);
        TH_CHECK(t, pt_load(&pt, &set, &err) == 0, "pt_load: %s", err.msg);
        TH_CHECK(t, pt_get(&pt, "x.b")[2] == 5.0f && pt_get(&pt, "x.a")[1] == 2.0f, "values across shards");
        pt_free(&pt);

        pt_init(&pt);
        pt_declare(&pt, true, 1, (int64_t[]){2}, &err, "x.a");
        pt_declare(&pt, true, 1, (int64_t[]){4}, &err, "x.missing");
        pt_alloc(&pt, &err);
        TH_CHECK(t, pt_load(&pt, &set, &err) != 0 && strstr(err.msg, "x.missing"), "missing name reported: %s",
                 err.msg);
        pt_free(&pt);

        pt_init(&pt);
        pt_declare(&pt, true, 2, (int64_t[]){1, 2}, &err, "x.a");
        pt_alloc(&pt, &err);
        TH_CHECK(t, pt_load(&pt, &set, &err) != 0 && strstr(err.msg, "shape"), "shape mismatch reported: %s",
                 err.msg);
        pt_free(&pt);
        st_set_close(&set);
    }
    /* an index naming a tensor its shard lacks, or a path outside the directory */
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\"}}");
    fclose(f);
    TH_CHECK(t, st_set_open_dir(d.path, &set, &err) != 0 && strstr(err.msg, "x.a"), "wrong shard: %s", err.msg);
    f = fopen(path, "w");
    fprintf(f, "{\"weight_map\":{\"x.a\":\"../model-00001-of-00002.safetensors\"}}");
    fclose(f);
    TH_CHECK(t, st_set_open_dir(d.path, &set, &err) != 0, "path escape accepted");
    tmpdir_remove(&d);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "reads_dtypes_and_metadata", test_reads_dtypes_and_metadata);
    th_run(&t, "rejects_malformed", test_rejects_malformed);
    th_run(&t, "rejects_every_truncation", test_rejects_every_truncation);
    th_run(&t, "sharded_checkpoint", test_sharded_checkpoint);
    return th_finish(&t, "test_safetensors");
}
