/*
 * Large buffers kept between requests (bufcache.h). A fresh large malloc is fresh mmap'ed
 * memory: touching it costs a page fault per 4 KiB (about as much as receiving the bytes).
 * Tensor buffers are returned here and handed to the next request of a similar size, already
 * faulted in. Small sizes go straight to malloc. The cache holds at most its configured size
 * (a share of the memory budget), gives its buffers up when the budget needs room, and frees
 * what no request has wanted for a while.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bufcache.h"
#include "clock.h"

#define CACHE_SLOTS 8
#define CACHE_MIN (1u << 20) /* smaller buffers are not cached */

static struct {
    pthread_mutex_t mu;
    void *p[CACHE_SLOTS];
    size_t cap[CACHE_SLOTS];
    uint64_t used_ns[CACHE_SLOTS]; /* when each was put back */
    size_t max;                    /* bytes held at most */
    atomic_size_t total;
} cache = { .mu = PTHREAD_MUTEX_INITIALIZER, .max = (size_t)768 << 20 };

void srv_buf_init(size_t max) { cache.max = max; }

/* Rounds a size up so that similar sizes share buffers: to a multiple of 1/8 of its power of 2. */
static size_t size_class(size_t n)
{
    if (n < CACHE_MIN)
        return n;
    size_t p = 1;
    while (p < n / 8)
        p <<= 1;
    return (n + p - 1) / p * p;
}

size_t srv_buf_size(size_t size)
{
    size_t c = size_class(size);
    return c ? c : 1;
}

/* Frees slot i (cache.mu held). */
static void drop(int i)
{
    free(cache.p[i]);
    cache.total -= cache.cap[i];
    cache.p[i] = NULL;
}

void *srv_buf_get(size_t size, size_t *cap)
{
    size_t want = size_class(size);
    if (want >= CACHE_MIN) {
        pthread_mutex_lock(&cache.mu);
        int best = -1;
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (cache.p[i] && cache.cap[i] >= size && cache.cap[i] <= 2 * want &&
                (best < 0 || cache.cap[i] < cache.cap[best]))
                best = i;
        if (best >= 0) {
            void *p = cache.p[best];
            *cap = cache.cap[best];
            cache.p[best] = NULL;
            cache.total -= *cap;
            pthread_mutex_unlock(&cache.mu);
            return p;
        }
        pthread_mutex_unlock(&cache.mu);
    }
    void *p = malloc(want ? want : 1);
    *cap = p ? want : 0;
    return p;
}

void srv_buf_put(void *p, size_t cap)
{
    if (!p)
        return;
    if (cap >= CACHE_MIN && cap <= cache.max) {
        pthread_mutex_lock(&cache.mu);
        /* Make room: evict the largest buffers until this one fits. */
        while (cache.total + cap > cache.max) {
            int big = -1;
            for (int i = 0; i < CACHE_SLOTS; i++)
                if (cache.p[i] && (big < 0 || cache.cap[i] > cache.cap[big]))
                    big = i;
            if (big < 0)
                break;
            drop(big);
        }
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (!cache.p[i] && cache.total + cap <= cache.max) {
                cache.p[i] = p, cache.cap[i] = cap, cache.used_ns[i] = srv_now_ns();
                cache.total += cap;
                pthread_mutex_unlock(&cache.mu);
                return;
            }
        pthread_mutex_unlock(&cache.mu);
    }
    free(p);
}

size_t srv_buf_cached(void) { return atomic_load(&cache.total); }

size_t srv_buf_evict(size_t bytes)
{
    size_t freed = 0;
    pthread_mutex_lock(&cache.mu);
    while (freed < bytes) {
        int big = -1;
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (cache.p[i] && (big < 0 || cache.cap[i] > cache.cap[big]))
                big = i;
        if (big < 0)
            break;
        freed += cache.cap[big];
        drop(big);
    }
    pthread_mutex_unlock(&cache.mu);
    return freed;
}

size_t srv_buf_idle(uint64_t idle_ns)
{
    size_t freed = 0;
    uint64_t now = srv_now_ns();
    pthread_mutex_lock(&cache.mu);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache.p[i] && now - cache.used_ns[i] >= idle_ns) {
            freed += cache.cap[i];
            drop(i);
        }
    pthread_mutex_unlock(&cache.mu);
    return freed;
}

void srv_buf_trim(void) { srv_buf_evict(SIZE_MAX); }
