#include "rollout_cache.h"

#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

static uint64_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int rollout_cache_init(struct rollout_cache *c, int max_count, size_t max_bytes, struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    c->n_buckets = 1;
    while (c->n_buckets < (size_t)max_count) c->n_buckets <<= 1;
    c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) return dsr_errf(err, "rollout cache: out of memory");
    c->max_count = max_count;
    c->max_bytes = max_bytes;
    return 0;
}

struct rollout_shared *rollout_shared_new(bool understanding, const int32_t *context, int n_context,
                                          const float *features, int n_feature_rows, int feature_dim) {
    struct rollout_shared *sh = calloc(1, sizeof *sh);
    if (!sh) return NULL;
    size_t nf = features ? (size_t)n_feature_rows * (size_t)feature_dim : 0;
    sh->context = malloc((size_t)n_context * sizeof *sh->context);
    sh->features = nf ? malloc(nf * sizeof *sh->features) : NULL;
    if (!sh->context || (nf && !sh->features)) {
        free(sh->context);
        free(sh->features);
        free(sh);
        return NULL;
    }
    memcpy(sh->context, context, (size_t)n_context * sizeof *context);
    if (nf) memcpy(sh->features, features, nf * sizeof *features);
    sh->refs = 1;
    sh->understanding = understanding;
    sh->n_context = n_context;
    sh->n_feature_rows = nf ? n_feature_rows : 0;
    sh->bytes = sizeof *sh + (size_t)n_context * sizeof(int32_t) + nf * sizeof(float);
    return sh;
}

void rollout_shared_unref(struct rollout_shared *sh) {
    if (!sh || --sh->refs > 0) return;
    free(sh->context);
    free(sh->features);
    free(sh);
}

static void lru_unlink(struct rollout_cache *c, struct rollout_entry *e) {
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct rollout_cache *c, struct rollout_entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

/* The shared block's bytes count once, against the entry that holds the
 * first reference; entries of one group are evicted together in LRU order
 * anyway, so charging it per entry would only overstate. */
static void remove_entry(struct rollout_cache *c, struct rollout_entry *e) {
    struct rollout_entry **pp = &c->buckets[hash_id(e->id) & (c->n_buckets - 1)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    c->bytes -= e->bytes;
    if (e->shared->refs == 1) c->bytes -= e->shared->bytes;
    rollout_shared_unref(e->shared);
    free(e->completion);
    free(e->old_logprobs);
    free(e);
}

void rollout_cache_free(struct rollout_cache *c) {
    while (c->head) remove_entry(c, c->head);
    free(c->buckets);
    memset(c, 0, sizeof *c);
}

int rollout_cache_add(struct rollout_cache *c, struct rollout_shared *sh, const int32_t *completion,
                      const float *logprobs, int n, char id_out[ROLLOUT_ID_LEN], struct dsr_err *err) {
    struct rollout_entry *e = calloc(1, sizeof *e);
    if (!e) return dsr_errf(err, "rollout cache: out of memory");
    e->completion = malloc((size_t)(n ? n : 1) * sizeof *e->completion);
    e->old_logprobs = malloc((size_t)(n ? n : 1) * sizeof *e->old_logprobs);
    if (!e->completion || !e->old_logprobs) {
        free(e->completion);
        free(e->old_logprobs);
        free(e);
        return dsr_errf(err, "rollout cache: out of memory");
    }
    memcpy(e->completion, completion, (size_t)n * sizeof *completion);
    memcpy(e->old_logprobs, logprobs, (size_t)n * sizeof *logprobs);
    e->n = n;
    e->bytes = sizeof *e + (size_t)n * (sizeof(int32_t) + sizeof(float));
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, e->id);
    memcpy(id_out, e->id, ROLLOUT_ID_LEN);
    if (sh->refs == 1) c->bytes += sh->bytes; /* first entry of the group */
    sh->refs++;
    e->shared = sh;
    size_t b = hash_id(e->id) & (c->n_buckets - 1);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    lru_push_front(c, e);
    c->count++;
    c->bytes += e->bytes;
    /* keep at least the newest entry even if it alone exceeds the byte bound */
    while (c->tail != e && (c->count > c->max_count || c->bytes > c->max_bytes)) {
        remove_entry(c, c->tail);
        c->evicted++;
    }
    return 0;
}

const struct rollout_entry *rollout_cache_get(struct rollout_cache *c, const char *id) {
    for (struct rollout_entry *e = c->buckets[hash_id(id) & (c->n_buckets - 1)]; e; e = e->hnext)
        if (strcmp(e->id, id) == 0) {
            lru_unlink(c, e);
            lru_push_front(c, e);
            return e;
        }
    return NULL;
}
