/* A fixed pool of threads running tasks from a FIFO queue: the request
 * handlers of dsrd (decoding, preprocessing, waiting for the compute worker)
 * run here, so libmicrohttpd's few polling threads never block and a
 * connection costs a socket, not a thread. */
#ifndef DSRD_POOL_H
#define DSRD_POOL_H

#include <pthread.h>
#include <stdbool.h>

#include "base/error.h"

/* A task is owned by the submitter; the pool only links it until fn runs. */
struct pool_task {
    void (*fn)(void *arg);
    void *arg;
    struct pool_task *next;
};

struct pool {
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pool_task *head, *tail;
    bool stopping;
};

int  pool_start(struct pool *p, int n_threads, struct dsr_err *err);
void pool_submit(struct pool *p, struct pool_task *t);
/* Runs what is queued, then joins the threads. */
void pool_stop(struct pool *p);

#endif
