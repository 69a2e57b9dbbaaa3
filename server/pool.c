#include "pool.h"

#include <stdlib.h>
#include <string.h>

static void *pool_main(void *arg) {
    struct pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
        struct pool_task *t = p->head;
        if (!t) break; /* stopping and drained */
        p->head = t->next;
        if (!p->head) p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        t->fn(t->arg); /* may free t */
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_start(struct pool *p, int n_threads, struct dsr_err *err) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!(p->threads = calloc((size_t)n_threads, sizeof *p->threads))) {
        pool_stop(p);
        return dsr_errf(err, "out of memory for %d handler threads", n_threads);
    }
    for (; p->n_threads < n_threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, pool_main, p)) {
            pool_stop(p);
            return dsr_errf(err, "cannot start handler thread %d of %d", p->n_threads + 1, n_threads);
        }
    return 0;
}

void pool_submit(struct pool *p, struct pool_task *t) {
    t->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail) p->tail->next = t;
    else p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_stop(struct pool *p) {
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    memset(p, 0, sizeof *p);
}
