/* safetensors headers: the file is given to st_open as an anonymous memory
 * file (memfd), so the real open/mmap path runs; every tensor it accepts
 * must lie inside the file and convert. */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_targets.h"
#include "io/safetensors.h"

int fuzz_safetensors(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-safetensors", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        if (k <= 0) break;
        done += (size_t)k;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct st_file *f = NULL;
    struct dsr_err err;
    if (done == size && st_open(path, &f, &err) == 0) {
        for (size_t i = 0; i < f->n_tensors; i++) {
            const struct st_tensor *t = &f->tensors[i];
            FUZZ_CHECK(t->nbytes == t->numel * st_dtype_size(t->dtype));
            FUZZ_CHECK(t->data >= f->map && t->data + t->nbytes <= f->map + f->map_size);
            FUZZ_CHECK(st_find(f, t->name) == t);
            (void)st_finite_f32(t);
            if (t->numel > (1u << 16)) continue;
            float *x = malloc((t->numel + 1) * sizeof *x);
            int64_t *y = malloc((t->numel + 1) * sizeof *y);
            if (x && y && st_to_f32(t, x, &err) != 0) (void)st_to_i64(t, y, &err);
            free(x);
            free(y);
        }
        for (size_t i = 0; i < f->n_meta; i++) FUZZ_CHECK(st_meta_get(f, f->meta[i].key) != NULL);
        st_close(f);
    }
    close(fd);
    return 0;
}

FUZZ_ENTRY(fuzz_safetensors)
