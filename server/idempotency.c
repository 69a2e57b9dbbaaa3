#include "idempotency.h"

#include <stdlib.h>
#include <string.h>

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

void idem_finish(struct idem_store *s, const char *key, const char *response) {
    pthread_mutex_lock(&s->mu);
    struct idem_record *r = find(s, key);
    if (r) {
        r->response = strdup(response);
        r->done = true;
        if (!r->response) memset(r, 0, sizeof *r); /* out of memory: forget rather than replay nothing */
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void idem_abandon(struct idem_store *s, const char *key) {
    pthread_mutex_lock(&s->mu);
    struct idem_record *r = find(s, key);
    if (r) memset(r, 0, sizeof *r);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}
