#include "idempotency.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file_read.h"

int idem_init(struct idem_store *s, int cap, struct dsr_err *err) {
    memset(s, 0, sizeof *s);
    if (!(s->items = calloc((size_t)cap, sizeof *s->items)))
        return dsr_errf(err, "out of memory for %d idempotency records", cap);
    s->cap = cap;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return 0;
}

void idem_destroy(struct idem_store *s) {
    for (int i = 0; s->items && i < s->cap; i++) free(s->items[i].response);
    free(s->items);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof *s);
}

/* Called locked. */
static struct idem_record *find(struct idem_store *s, const char *key) {
    for (int i = 0; i < s->cap; i++)
        if (s->items[i].key[0] && strcmp(s->items[i].key, key) == 0) return &s->items[i];
    return NULL;
}

/* A free slot, else the oldest finished record emptied; NULL when every
 * record is running.  Called locked. */
static struct idem_record *slot_for_new(struct idem_store *s) {
    struct idem_record *oldest = NULL;
    for (int i = 0; i < s->cap; i++) {
        struct idem_record *r = &s->items[i];
        if (!r->key[0]) return r;
        if (r->done && (!oldest || r->seq < oldest->seq)) oldest = r;
    }
    if (oldest) {
        free(oldest->response);
        memset(oldest, 0, sizeof *oldest);
    }
    return oldest;
}

enum idem_claim idem_claim(struct idem_store *s, const char *key, char **response) {
    *response = NULL;
    pthread_mutex_lock(&s->mu);
    struct idem_record *r;
    while ((r = find(s, key)) && !r->done) pthread_cond_wait(&s->cv, &s->mu);
    enum idem_claim out;
    if (r) {
        *response = strdup(r->response);
        out = IDEM_REPLAY;
    } else if ((r = slot_for_new(s))) {
        strncpy(r->key, key, sizeof r->key - 1);
        r->seq = s->next_seq++;
        out = IDEM_RUN;
    } else {
        out = IDEM_FULL;
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

char *idem_update_response(const struct train_stats *stats, const struct proto_stamp *stamp) {
    json_t *o = proto_encode_update(stats, stamp);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

void idem_finish(struct idem_store *s, const char *key, const struct train_stats *stats,
                 const struct proto_stamp *stamp) {
    char *response = idem_update_response(stats, stamp);
    pthread_mutex_lock(&s->mu);
    struct idem_record *r = find(s, key);
    if (r) {
        r->response = response;
        response = NULL;
        r->done = true;
        if (!r->response) memset(r, 0, sizeof *r); /* out of memory: forget rather than replay nothing */
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(response);
}

void idem_abandon(struct idem_store *s, const char *key) {
    pthread_mutex_lock(&s->mu);
    struct idem_record *r = find(s, key);
    if (r) memset(r, 0, sizeof *r);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

char *idem_export(struct idem_store *s) {
    json_t *records = json_array();
    int ok = records != NULL;
    pthread_mutex_lock(&s->mu);
    /* oldest first: repeatedly the smallest seq above the last one */
    unsigned long last = 0;
    for (int emitted = 0; ok; emitted++) {
        struct idem_record *next = NULL;
        for (int i = 0; i < s->cap; i++) {
            struct idem_record *r = &s->items[i];
            if (r->key[0] && r->done && (emitted == 0 || r->seq > last) && (!next || r->seq < next->seq)) next = r;
        }
        if (!next) break;
        last = next->seq;
        ok = json_array_append_new(records, json_pack("{s:s,s:s}", "key", next->key, "response", next->response)) == 0;
    }
    pthread_mutex_unlock(&s->mu);
    json_t *doc = ok ? json_pack("{s:o}", "records", records) : NULL;
    if (!doc) json_decref(records);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

int idem_check(const json_t *doc, struct dsr_err *err) {
    if (!doc) return 0;
    const json_t *records = json_object_get(doc, "records");
    if (!json_is_array(records)) return dsr_errf(err, "idempotency records: no \"records\" array");
    for (size_t i = 0; i < json_array_size(records); i++) {
        const json_t *r = json_array_get(records, i);
        const char *key = json_string_value(json_object_get(r, "key"));
        if (!key || !key[0] || strlen(key) >= PROTO_ID_MAX || !json_is_string(json_object_get(r, "response")))
            return dsr_errf(err, "idempotency records: record %zu is malformed", i);
    }
    return 0;
}

void idem_import(struct idem_store *s, const json_t *doc) {
    const json_t *records = json_object_get(doc, "records");
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->cap; i++) {
        struct idem_record *r = &s->items[i];
        if (r->key[0] && r->done) {
            free(r->response);
            memset(r, 0, sizeof *r);
        }
    }
    size_t n = json_array_size(records);
    int free_slots = 0;
    for (int i = 0; i < s->cap; i++) free_slots += !s->items[i].key[0];
    size_t first = n > (size_t)free_slots ? n - (size_t)free_slots : 0; /* keep the newest */
    for (size_t i = first; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        const char *key = json_string_value(json_object_get(rec, "key"));
        if (find(s, key)) continue; /* a running claim of the same key */
        struct idem_record *r = slot_for_new(s);
        if (!r) break;
        r->response = strdup(json_string_value(json_object_get(rec, "response")));
        if (!r->response) break;
        strncpy(r->key, key, sizeof r->key - 1);
        r->seq = s->next_seq++;
        r->done = true;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int idem_load(const char *dir, json_t **doc, struct dsr_err *err) {
    char path[4200];
    *doc = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, IDEM_CHECKPOINT_FILE);
    if (access(path, F_OK) != 0) return errno == ENOENT ? 0 : dsr_errf(err, "%s: %s", path, strerror(errno));
    char *text;
    size_t len;
    if (file_read_regular(path, IDEM_RECORDS_MAX_BYTES, &text, &len, err)) return -1;
    json_error_t je;
    *doc = json_loadb(text, len, 0, &je);
    free(text);
    if (!*doc) return dsr_errf(err, "%s: %s", path, je.text);
    struct dsr_err why;
    if (idem_check(*doc, &why)) {
        json_decref(*doc);
        *doc = NULL;
        return dsr_errf(err, "%s: %s", path, why.msg);
    }
    return 0;
}
