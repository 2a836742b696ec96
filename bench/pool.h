/*
 * The benchmarks' thread pool: the caller is thread 0; helpers spin briefly after a job, then
 * sleep on a condvar (what a server's pool does between requests, without its queue).
 * pool_run(p, fn, arg, nt) runs fn(arg, t) for t in [0, nt) and returns when all are done.
 */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 2

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef void (*task_fn)(void *arg, int t);

typedef struct pool {
    int n; /* threads, counting the caller as thread 0 */
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;    /* bumped (under mu) to start a job */
    atomic_int pending; /* helpers still in the current job */
    task_fn fn;
    void *arg;
    int nt; /* threads taking part in the current job */
    bool stop;
} pool;

typedef struct helper {
    pool *p;
    int t;
} helper;

static helper helpers[MAX_THREADS];

/* Spin time before a helper sleeps: long enough to cover the caller's merge between the two
 * passes and the timer calls between samples, short enough that idle helpers leave the core to
 * single-threaded runs. */
#define SPIN_SECONDS 0.002

static void *helper_main(void *arg)
{
    helper *h = arg;
    pool *p = h->p;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen) {
            double until = now() + SPIN_SECONDS;
            for (int i = 0; g == seen; i++) {
                cpu_relax();
                g = atomic_load_explicit(&p->gen, memory_order_acquire);
                if ((i & 1023) == 1023 && now() > until)
                    break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stop)
            return NULL;
        if (h->t < p->nt)
            p->fn(p->arg, h->t);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

static inline void pool_init(pool *p, int n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int t = 1; t < n; t++) {
        helpers[t] = (helper){ p, t };
        if (pthread_create(&p->tid[t], NULL, helper_main, &helpers[t]) != 0) {
            fprintf(stderr, "bench: pthread_create failed\n");
            exit(1);
        }
    }
}

/* Runs fn(arg, t) for t in [0, nt) (t = 0 on the caller) and returns when all are done. */
static inline void pool_run(pool *p, task_fn fn, void *arg, int nt)
{
    if (nt <= 1) {
        fn(arg, 0);
        return;
    }
    p->fn = fn, p->arg = arg, p->nt = nt;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        cpu_relax();
}

static inline void pool_release(pool *p)
{
    p->nt = 0;
    p->stop = true;
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++)
        pthread_join(p->tid[t], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}


#endif
