/* /update responses remembered by idempotency_key (proto/API.md: "A repeated
 * idempotency_key returns the first call's response without a second
 * step").
 *
 * A record is claimed by the first call with its key (state RUNNING) before
 * the update is queued; a second call with the same key arriving meanwhile
 * waits on the store's condition variable for the first one's outcome, so
 * two calls never both step.  A successful first call stores its response
 * text, returned byte for byte to every later call with that key (whatever
 * its body: the key names the update).  A failed first call forgets the
 * key, so a retry runs the update afresh (nothing was applied).
 *
 * Bounded by --idempotency-records: when full, the oldest finished record
 * is evicted; if every record belongs to a running update the claim is
 * refused (the caller answers 503).  Thread-safe; owned by the server.
 *
 * Checkpoints carry the finished records (idem_export, written by the
 * compute worker into the checkpoint as IDEM_CHECKPOINT_FILE) and /reload
 * restores them (idem_import): the records always name the updates the
 * served weights contain, so a retried update that a reloaded checkpoint
 * already holds is answered from its record instead of applied twice, and
 * one that the reload rolled back runs again. */
#ifndef DSRD_IDEMPOTENCY_H
#define DSRD_IDEMPOTENCY_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "base/error.h"
#include "proto_response.h"
#include "proto_update.h"

struct idem_record {
    char key[PROTO_ID_MAX];   /* "" for a free slot */
    bool done;
    char *response;           /* JSON text, when done */
    unsigned long seq;        /* claim order, for eviction */
};

struct idem_store {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct idem_record *items;
    int cap;
    unsigned long next_seq;
};

enum idem_claim { IDEM_RUN, IDEM_REPLAY, IDEM_FULL };

#define IDEM_CHECKPOINT_FILE "idempotency.json"
/* Largest records file /reload reads (a record is a key and a ~200-byte response). */
#define IDEM_RECORDS_MAX_BYTES ((size_t)1 << 30)

int  idem_init(struct idem_store *s, int cap, struct dsr_err *err);
void idem_destroy(struct idem_store *s);

/* IDEM_RUN: the caller owns the key and must call idem_finish or
 * idem_abandon.  IDEM_REPLAY: *response is a malloc'ed copy of the first
 * response (NULL if out of memory).  Blocks while another call runs key. */
enum idem_claim idem_claim(struct idem_store *s, const char *key, char **response);
/* The /update response of an applied step as JSON text: what the first
 * call answers and what its record replays byte for byte.  malloc'ed; NULL
 * when out of memory. */
char *idem_update_response(const struct train_stats *stats, const struct proto_stamp *stamp);
/* Records the claimed key's result (as idem_update_response's text) and
 * wakes the waiters; out of memory forgets the key instead. */
void idem_finish(struct idem_store *s, const char *key, const struct train_stats *stats,
                 const struct proto_stamp *stamp);
/* Forgets the claimed key (its update failed) and wakes the waiters. */
void idem_abandon(struct idem_store *s, const char *key);

/* The finished records, oldest first, as JSON text
 * {"records": [{"key": "...", "response": "<response text>"}, ...]};
 * malloc'ed, NULL when out of memory. */
char *idem_export(struct idem_store *s);
/* 0 when doc (idem_export's format, parsed; NULL: no records) is well formed. */
int idem_check(const json_t *doc, struct dsr_err *err);
/* Reads and checks checkpoint dir's IDEM_CHECKPOINT_FILE into *doc (NULL,
 * and 0, when the checkpoint has none); the caller json_decref()s it. */
int idem_load(const char *dir, json_t **doc, struct dsr_err *err);
/* Replaces every finished record with those of doc (passed by idem_check;
 * NULL: none), the newest ones when they outnumber the free records.
 * Running claims stay. */
void idem_import(struct idem_store *s, const json_t *doc);

#endif
