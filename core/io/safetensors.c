#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/bf16.h"

static const struct {
    const char *name;
    enum st_dtype dtype;
    size_t size;
} DTYPES[] = {
    {"F64", ST_F64, 8}, {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2},
    {"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"I16", ST_I16, 2}, {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

size_t st_dtype_size(enum st_dtype dt) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].dtype == dt) return DTYPES[i].size;
    return 0;
}

const char *st_dtype_name(enum st_dtype dt) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (DTYPES[i].dtype == dt) return DTYPES[i].name;
    return "?";
}

static int dtype_from_name(const char *s, enum st_dtype *out) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(DTYPES[i].name, s) == 0) {
            *out = DTYPES[i].dtype;
            return 0;
        }
    return -1;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const struct st_tensor *)a)->name, ((const struct st_tensor *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const struct st_tensor *x = *(const struct st_tensor *const *)a;
    const struct st_tensor *y = *(const struct st_tensor *const *)b;
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : (x->nbytes > y->nbytes);
}

static int parse_metadata(struct st_file *f, json_t *meta, struct dsr_err *err) {
    if (!json_is_object(meta)) return dsr_errf(err, "__metadata__ is not an object");
    f->meta = calloc(json_object_size(meta) + 1, sizeof *f->meta);
    if (!f->meta) return dsr_errf(err, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val) {
        if (!json_is_string(val)) return dsr_errf(err, "__metadata__[\"%s\"] is not a string", key);
        struct st_meta *m = &f->meta[f->n_meta++];
        m->key = strdup(key);
        m->value = strdup(json_string_value(val));
        if (!m->key || !m->value) return dsr_errf(err, "out of memory");
    }
    return 0;
}

/* Fills t from one header entry; data_size is the byte length of the data buffer. */
static int parse_entry(struct st_tensor *t, const char *name, json_t *desc, const uint8_t *data,
                       size_t data_size, struct dsr_err *err) {
    if (!json_is_object(desc)) return dsr_errf(err, "tensor \"%s\": entry is not an object", name);
    json_t *jdt = json_object_get(desc, "dtype");
    json_t *jshape = json_object_get(desc, "shape");
    json_t *joff = json_object_get(desc, "data_offsets");
    if (!json_is_string(jdt)) return dsr_errf(err, "tensor \"%s\": missing or non-string dtype", name);
    if (dtype_from_name(json_string_value(jdt), &t->dtype) != 0)
        return dsr_errf(err, "tensor \"%s\": unsupported dtype %s", name, json_string_value(jdt));
    if (!json_is_array(jshape)) return dsr_errf(err, "tensor \"%s\": missing or non-array shape", name);
    if (json_array_size(jshape) > ST_MAX_DIMS)
        return dsr_errf(err, "tensor \"%s\": %zu dimensions (max %d)", name, json_array_size(jshape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(jshape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *jd = json_array_get(jshape, (size_t)d);
        if (!json_is_integer(jd) || json_integer_value(jd) < 0)
            return dsr_errf(err, "tensor \"%s\": shape[%d] is not a non-negative integer", name, d);
        uint64_t dim = (uint64_t)json_integer_value(jd);
        t->shape[d] = (int64_t)dim;
        if (dim != 0 && numel > UINT64_MAX / dim) return dsr_errf(err, "tensor \"%s\": shape overflows", name);
        numel *= dim;
    }
    if (!json_is_array(joff) || json_array_size(joff) != 2 || !json_is_integer(json_array_get(joff, 0)) ||
        !json_is_integer(json_array_get(joff, 1)))
        return dsr_errf(err, "tensor \"%s\": data_offsets must be [begin, end]", name);
    json_int_t begin = json_integer_value(json_array_get(joff, 0));
    json_int_t end = json_integer_value(json_array_get(joff, 1));
    if (begin < 0 || end < begin)
        return dsr_errf(err, "tensor \"%s\": invalid data_offsets [%lld, %lld]", name, (long long)begin, (long long)end);
    if ((uint64_t)end > data_size)
        return dsr_errf(err, "tensor \"%s\": data_offsets end %lld is past the end of the data (%zu bytes)", name,
                        (long long)end, data_size);
    size_t esize = st_dtype_size(t->dtype);
    if (numel > UINT64_MAX / esize) return dsr_errf(err, "tensor \"%s\": byte size overflows", name);
    if ((uint64_t)(end - begin) != numel * esize)
        return dsr_errf(err, "tensor \"%s\": %lld bytes for shape of %llu %s elements (expected %llu)", name,
                        (long long)(end - begin), (unsigned long long)numel, st_dtype_name(t->dtype),
                        (unsigned long long)(numel * esize));
    t->name = strdup(name);
    if (!t->name) return dsr_errf(err, "out of memory");
    t->numel = (size_t)numel;
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

/* Offsets must tile the data buffer exactly: sorted by begin, each tensor
 * starts where the previous ended, and the last ends at the end of the file. */
static int check_layout(struct st_file *f, const uint8_t *data, size_t data_size, struct dsr_err *err) {
    if (f->n_tensors == 0) {
        if (data_size != 0) return dsr_errf(err, "%zu trailing bytes after an empty header", data_size);
        return 0;
    }
    const struct st_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return dsr_errf(err, "out of memory");
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_tensor_offset);
    const uint8_t *expect = data;
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
        if (order[i]->data < expect)
            rc = dsr_errf(err, "tensor \"%s\" overlaps the previous tensor", order[i]->name);
        else if (order[i]->data > expect)
            rc = dsr_errf(err, "gap of %zu bytes before tensor \"%s\"", (size_t)(order[i]->data - expect),
                          order[i]->name);
        expect = order[i]->data + order[i]->nbytes;
    }
    if (rc == 0 && expect != data + data_size)
        rc = dsr_errf(err, "%zu bytes after the last tensor are not described by the header",
                      (size_t)(data + data_size - expect));
    free(order);
    return rc;
}

static int parse_header(struct st_file *f, struct dsr_err *err) {
    if (f->map_size < 8) return dsr_errf(err, "file is %zu bytes, too short for a header length", f->map_size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
    if (hlen > ST_MAX_HEADER_BYTES)
        return dsr_errf(err, "header length %llu exceeds the %u-byte limit", (unsigned long long)hlen,
                        ST_MAX_HEADER_BYTES);
    if (hlen > f->map_size - 8)
        return dsr_errf(err, "header length %llu is past the end of the file (%zu bytes): truncated?",
                        (unsigned long long)hlen, f->map_size);
    const char *hdr = (const char *)f->map + 8;
    if (hlen == 0 || hdr[0] != '{') return dsr_errf(err, "header does not start with '{'");
    json_error_t jerr;
    json_t *root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return dsr_errf(err, "header JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = dsr_errf(err, "header JSON is not an object");
        goto out;
    }
    const uint8_t *data = f->map + 8 + hlen;
    size_t data_size = f->map_size - 8 - (size_t)hlen;
    f->tensors = calloc(json_object_size(root) + 1, sizeof *f->tensors);
    if (!f->tensors) {
        rc = dsr_errf(err, "out of memory");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_metadata(f, val, err);
        } else {
            rc = parse_entry(&f->tensors[f->n_tensors], key, val, data, data_size, err);
            if (rc == 0) f->n_tensors++;
        }
        if (rc != 0) goto out;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    rc = check_layout(f, data, data_size, err);
out:
    json_decref(root);
    return rc;
}

int st_open(const char *path, struct st_file **out, struct dsr_err *err) {
    *out = NULL;
    struct st_file *f = calloc(1, sizeof *f);
    if (!f) return dsr_errf(err, "out of memory");
    f->path = strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block: refused below */
    if (fd < 0) {
        dsr_errf(err, "%s: %s", path, strerror(errno));
        st_close(f);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        dsr_errf(err, "%s: not a regular file", path);
        close(fd);
        st_close(f);
        return -1;
    }
    f->map_size = (size_t)sb.st_size;
    if (f->map_size > 0) {
        void *m = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            dsr_errf(err, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            st_close(f);
            return -1;
        }
        f->map = m;
    }
    close(fd);
    if (parse_header(f, err) != 0) {
        dsr_err_prefix(err, "%s", path);
        st_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

int st_open_memory(const char *name, const uint8_t *data, size_t size, struct st_file **out, struct dsr_err *err) {
    *out = NULL;
    struct st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(name))) {
        free(f);
        return dsr_errf(err, "out of memory");
    }
    f->map = (uint8_t *)data; /* read only: borrowed, never written or unmapped */
    f->map_size = size;
    f->borrowed = true;
    if (parse_header(f, err) != 0) {
        dsr_err_prefix(err, "%s", name);
        st_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void st_close(struct st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    if (f->map && !f->borrowed) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

const struct st_tensor *st_find(const struct st_file *f, const char *name) {
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *st_meta_get(const struct st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

float st_bf16_to_f32(uint16_t h) { return bf16_to_f32(h); }

uint16_t st_f32_to_bf16(float f) { return f32_to_bf16(f); }

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Data in the file may be unaligned; read element by element with memcpy. */
int st_to_f32(const struct st_tensor *t, float *dst, struct dsr_err *err) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, t->numel * sizeof(float));
        return 0;
    case ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            /* beyond float's range the cast is undefined: make it the infinity
             * it rounds to, which the finiteness checks then name */
            dst[i] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v;
        }
        return 0;
    case ST_BF16:
    case ST_F16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == ST_BF16 ? st_bf16_to_f32(h) : st_f16_to_f32(h);
        }
        return 0;
    default:
        return dsr_errf(err, "tensor \"%s\": dtype %s is not floating point", t->name, st_dtype_name(t->dtype));
    }
}

int st_to_bf16(const struct st_tensor *t, uint16_t *dst, struct dsr_err *err) {
    if (t->dtype == ST_BF16) {
        memcpy(dst, t->data, t->numel * sizeof *dst);
        return 0;
    }
    /* other float types: through float32 in chunks, rounded to nearest even */
    enum { CHUNK = 4096 };
    float buf[CHUNK];
    for (size_t i = 0; i < t->numel; i += CHUNK) {
        size_t n = t->numel - i < CHUNK ? t->numel - i : CHUNK;
        struct st_tensor part = *t;
        part.numel = n;
        part.data = t->data + i * st_dtype_size(t->dtype);
        if (st_to_f32(&part, buf, err)) return -1;
        for (size_t j = 0; j < n; j++) dst[i + j] = st_f32_to_bf16(buf[j]);
    }
    return 0;
}

int st_finite_f32(const struct st_tensor *t) {
    const uint8_t *p = t->data;
    size_t bad = 0;
    switch (t->dtype) {
    case ST_F32:
        for (size_t i = 0; i < t->numel; i++) {
            float v;
            memcpy(&v, p + 4 * i, 4);
            bad += !isfinite(v);
        }
        break;
    case ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            bad += !isfinite((float)v);
        }
        break;
    case ST_BF16:
    case ST_F16: { /* all exponent bits set: infinity or NaN */
        uint16_t mask = t->dtype == ST_BF16 ? 0x7F80u : 0x7C00u;
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            bad += (h & mask) == mask;
        }
        break;
    }
    default: break;
    }
    return bad == 0;
}

int st_to_i64(const struct st_tensor *t, int64_t *dst, struct dsr_err *err) {
    const uint8_t *p = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case ST_I64: memcpy(&dst[i], p + 8 * i, 8); break;
        case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = v; break; }
        case ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); dst[i] = v; break; }
        case ST_I8: dst[i] = (int8_t)p[i]; break;
        case ST_U8:
        case ST_BOOL: dst[i] = p[i]; break;
        default:
            return dsr_errf(err, "tensor \"%s\": dtype %s is not an integer type", t->name, st_dtype_name(t->dtype));
        }
    }
    return 0;
}
