/*
 * The worker pool: libuv's thread pool, driven from a loop thread of its own.
 *
 * libmicrohttpd threads hand a request over with srv_pool_submit: it goes on a locked list
 * and uv_async_send wakes the loop (the only libuv call allowed from another thread; wake-ups
 * coalesce, so the callback drains the whole list). The loop queues one uv_work_t per item;
 * the items run on the pool; each after-work callback runs on the loop thread, and the last
 * one of a request builds the response and resumes the connection.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "srv.h"

typedef struct item {
    uv_work_t w;
    srv_req *r;
    int index;
} item;

struct srv_pool {
    srv *s;
    uv_loop_t loop;
    uv_async_t wake, quit;
    uv_thread_t thread;
    pthread_mutex_t mu;
    srv_req **list; /* submitted, not yet queued */
    size_t n, cap;
};

static void work_cb(uv_work_t *w)
{
    item *it = w->data;
    if (it->index == 0)
        it->r->t_compute0 = srv_now_ns();
    srv_ops_run(it->r, it->index);
}

static void after_cb(uv_work_t *w, int status)
{
    item *it = w->data;
    srv_req *r = it->r;
    (void)status;
    if (--r->items_left > 0)
        return;
    r->t_compute1 = srv_now_ns();
    srv_ops_finish(r);
    free(r->work);
    r->work = NULL;
    atomic_fetch_sub(&r->s->queued, 1);
    MHD_resume_connection(r->conn);
}

static void wake_cb(uv_async_t *a)
{
    srv_pool *p = a->data;
    pthread_mutex_lock(&p->mu);
    size_t n = p->n;
    srv_req **list = p->list;
    p->list = NULL;
    p->n = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        srv_req *r = list[i];
        item *its = r->work;
        for (int k = 0; k < r->items; k++) {
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

srv_pool *srv_pool_start(srv *s, int workers)
{
    /* libuv reads the pool size once, when the pool first starts. */
    char n[16];
    snprintf(n, sizeof n, "%d", workers);
    setenv("UV_THREADPOOL_SIZE", n, 1);
    srv_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->s = s;
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

int srv_pool_submit(srv_pool *p, srv_req *r)
{
    item *its = calloc((size_t)r->items, sizeof *its);
    if (!its)
        return -1;
    for (int k = 0; k < r->items; k++)
        its[k].r = r, its[k].index = k;
    r->work = its;
    r->items_left = r->items;
    r->t_queued = srv_now_ns();
    pthread_mutex_lock(&p->mu);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        srv_req **l = realloc(p->list, cap * sizeof *l);
        if (!l) {
            pthread_mutex_unlock(&p->mu);
            free(its);
            r->work = NULL;
            return -1;
        }
        p->list = l, p->cap = cap;
    }
    p->list[p->n++] = r;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->wake);
    return 0;
}

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
