/*
 * The worker pool (pool.h): libuv's thread pool, driven from a loop thread of its own.
 *
 * srv_pool_submit puts a task on a locked list and uv_async_send wakes the loop (the only libuv
 * call allowed from another thread; wake-ups coalesce, so the callback drains the whole list).
 * The loop queues one uv_work_t per item; the items run on the pool; each after-work callback
 * runs on the loop thread, and the last one of a task calls its done.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "clock.h"
#include "pool.h"

typedef struct item {
    uv_work_t w;
    srv_task *t;
    int index;
} item;

struct srv_pool {
    uv_loop_t loop;            /* first: after_cb finds the pool from its request's loop */
    uv_async_t wake, quit;
    uv_thread_t thread;
    pthread_mutex_t mu;
    srv_task **list; /* submitted, not yet queued */
    size_t n, cap;
    atomic_int pending; /* submitted, done not yet returned */
};

static void work_cb(uv_work_t *w)
{
    item *it = w->data;
    if (it->index == 0)
        it->t->t_started = srv_now_ns();
    it->t->run(it->t, it->index);
}

static void after_cb(uv_work_t *w, int status)
{
    item *it = w->data;
    srv_task *t = it->t;
    srv_pool *p = (srv_pool *)w->loop;
    (void)status;
    if (--t->left > 0)
        return;
    free(t->work);
    t->work = NULL;
    t->done(t); /* may free t */
    atomic_fetch_sub(&p->pending, 1);
}

static void wake_cb(uv_async_t *a)
{
    srv_pool *p = a->data;
    pthread_mutex_lock(&p->mu);
    size_t n = p->n;
    srv_task **list = p->list;
    p->list = NULL;
    p->n = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        srv_task *t = list[i];
        item *its = t->work;
        for (int k = 0; k < t->items; k++) {
            its[k].w.data = &its[k];
            uv_queue_work(&p->loop, &its[k].w, work_cb, after_cb);
        }
    }
    free(list);
}

static void quit_cb(uv_async_t *a)
{
    srv_pool *p = a->data;
    uv_close((uv_handle_t *)&p->wake, NULL);
    uv_close((uv_handle_t *)&p->quit, NULL);
}

static void loop_main(void *arg)
{
    srv_pool *p = arg;
    uv_run(&p->loop, UV_RUN_DEFAULT);
}

srv_pool *srv_pool_start(int workers)
{
    /* libuv reads the pool size once, when the pool first starts. */
    char n[16];
    snprintf(n, sizeof n, "%d", workers);
    setenv("UV_THREADPOOL_SIZE", n, 1);
    srv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    if (uv_loop_init(&p->loop) || uv_async_init(&p->loop, &p->wake, wake_cb) ||
        uv_async_init(&p->loop, &p->quit, quit_cb)) {
        free(p);
        return NULL;
    }
    p->wake.data = p->quit.data = p;
    if (uv_thread_create(&p->thread, loop_main, p)) {
        free(p);
        return NULL;
    }
    return p;
}

int srv_pool_submit(srv_pool *p, srv_task *t)
{
    item *its = calloc((size_t)t->items, sizeof *its);
    if (!its)
        return -1;
    for (int k = 0; k < t->items; k++)
        its[k].t = t, its[k].index = k;
    t->work = its;
    t->left = t->items;
    t->t_queued = srv_now_ns();
    t->t_started = 0;
    pthread_mutex_lock(&p->mu);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        srv_task **l = realloc(p->list, cap * sizeof *l);
        if (!l) {
            pthread_mutex_unlock(&p->mu);
            free(its);
            t->work = NULL;
            return -1;
        }
        p->list = l, p->cap = cap;
    }
    p->list[p->n++] = t;
    atomic_fetch_add(&p->pending, 1);
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->wake);
    return 0;
}

int srv_pool_pending(srv_pool *p) { return atomic_load(&p->pending); }

void srv_pool_stop(srv_pool *p)
{
    if (!p)
        return;
    uv_async_send(&p->quit);
    uv_thread_join(&p->thread);
    uv_loop_close(&p->loop);
    pthread_mutex_destroy(&p->mu);
    free(p->list);
    free(p);
}
