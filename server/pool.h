/*
 * The worker pool (pool.c): libuv's thread pool, driven from a loop thread of its own. Any
 * thread submits a task of n items; the items run on the workers, at once where there are
 * workers for them; after the last, the task's done runs on the loop thread.
 */
#ifndef SRV_POOL_H
#define SRV_POOL_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct srv_pool srv_pool;

/* A task: the caller owns it (embedded in its request, say) until done is called. */
typedef struct srv_task {
    int items;
    void (*run)(struct srv_task *t, int item); /* on a worker; items of a task may overlap */
    void (*done)(struct srv_task *t);          /* on the loop thread, after every item */
    uint64_t t_queued, t_started;              /* set by the pool: srv_now_ns at submit, and
                                                * when the first item started */
    int left;                                  /* the pool's */
    void *work;                                /* the pool's */
} srv_task;

srv_pool *srv_pool_start(int workers);
/* Queues t (t->items >= 1). 0, or -1 when out of memory (t is not queued). */
int srv_pool_submit(srv_pool *p, srv_task *t);
/* Tasks submitted whose done has not returned yet, from every submitter (HTTP's and gRPC's
 * work share the pool, its --max-queue and its gauge). */
int srv_pool_pending(srv_pool *p);
/* Stops the loop thread; every submitted task must be done. */
void srv_pool_stop(srv_pool *p);

#endif
