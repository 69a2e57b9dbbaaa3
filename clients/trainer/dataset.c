#include "dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

static int push_item(struct dataset *d, size_t *cap, const char *s, size_t len, struct dsr_err *err) {
    if (d->n >= DATASET_MAX_ITEMS) return dsr_errf(err, "more than %d items", DATASET_MAX_ITEMS);
    if (d->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **p = realloc(d->items, nc * sizeof *p);
        if (!p) return dsr_errf(err, "out of memory");
        d->items = p;
        *cap = nc;
    }
    char *copy = malloc(len + 1);
    if (!copy) return dsr_errf(err, "out of memory");
    memcpy(copy, s, len);
    copy[len] = '\0';
    d->items[d->n++] = copy;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *name, const char *ext) {
    size_t n = strlen(name), k = strlen(ext);
    if (n <= k) return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)name[n - k + i]) != ext[i]) return 0;
    return 1;
}

/* The image files the server decodes: PNG and JPEG. */
static int is_image_file(const char *name) {
    return has_ext(name, ".png") || has_ext(name, ".jpg") || has_ext(name, ".jpeg");
}

static int alloc_perm(struct dataset *d, struct dsr_err *err) {
    d->perm = malloc(d->n * sizeof *d->perm);
    if (!d->perm) {
        dataset_free(d);
        return dsr_errf(err, "out of memory");
    }
    return 0;
}

static void dataset_init(struct dataset *d, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->seed = seed;
    d->epoch = UINT64_MAX;
}

int dataset_load_images(struct dataset *d, const char *dir, uint64_t seed, struct dsr_err *err) {
    dataset_init(d, seed ^ 0x696d616765730000ull); /* "images" stream */
    DIR *dh = opendir(dir);
    if (!dh) return dsr_errf(err, "--images %s: cannot open directory", dir);
    size_t cap = 0;
    struct dirent *ent;
    while ((ent = readdir(dh)) != NULL) {
        if (!is_image_file(ent->d_name)) continue;
        char path[4096];
        int len = snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        if (len < 0 || (size_t)len >= sizeof path || push_item(d, &cap, path, (size_t)len, err) != 0) {
            closedir(dh);
            dataset_free(d);
            return dsr_errf(err, "--images %s: cannot list '%s'", dir, ent->d_name);
        }
    }
    closedir(dh);
    if (d->n == 0) return dsr_errf(err, "--images %s: no .png, .jpg or .jpeg files", dir);
    qsort(d->items, d->n, sizeof *d->items, cmp_str);
    return alloc_perm(d, err);
}

int dataset_load_prompts(struct dataset *d, const char *file, uint64_t seed, struct dsr_err *err) {
    dataset_init(d, seed ^ 0x70726f6d70747300ull); /* "prompts" stream */
    FILE *f = fopen(file, "r");
    if (!f) return dsr_errf(err, "--prompts %s: cannot open", file);
    size_t cap = 0;
    char line[DATASET_MAX_PROMPT_BYTES + 2];
    long lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fclose(f);
            dataset_free(d);
            return dsr_errf(err, "--prompts %s:%ld: longer than %d bytes", file, lineno, DATASET_MAX_PROMPT_BYTES);
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        size_t blank = 0;
        while (blank < len && isspace((unsigned char)line[blank])) blank++;
        if (blank == len) continue; /* empty or whitespace-only line */
        if (push_item(d, &cap, line, len, err) != 0) {
            fclose(f);
            dataset_free(d);
            return dsr_err_prefix(err, "--prompts %s", file);
        }
    }
    fclose(f);
    if (d->n == 0) return dsr_errf(err, "--prompts %s: no prompts", file);
    return alloc_perm(d, err);
}

const char *dataset_at(struct dataset *d, uint64_t cursor) {
    uint64_t epoch = cursor / d->n;
    if (epoch != d->epoch) {
        struct dsr_rng r;
        rng_seed(&r, d->seed ^ (epoch * 0x9e3779b97f4a7c15ull));
        for (size_t i = 0; i < d->n; i++) d->perm[i] = i;
        for (size_t i = d->n - 1; i > 0; i--) {
            size_t j = (size_t)(rng_next_u64(&r) % (i + 1));
            size_t t = d->perm[i];
            d->perm[i] = d->perm[j];
            d->perm[j] = t;
        }
        d->epoch = epoch;
    }
    return d->items[d->perm[cursor % d->n]];
}

void dataset_free(struct dataset *d) {
    for (size_t i = 0; i < d->n; i++) free(d->items[i]);
    free(d->items);
    free(d->perm);
    memset(d, 0, sizeof *d);
}
