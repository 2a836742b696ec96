/*
 * Large buffers kept between requests. A fresh large malloc is fresh mmap'ed memory: touching it
 * costs a page fault per 4 KiB (about as much as receiving the bytes). Tensor buffers are
 * returned here and handed to the next request of a similar size, already faulted in.
 * Small sizes go straight to malloc. The cache holds at most CACHE_MAX bytes.
 */
#include <pthread.h>
#include <stdlib.h>

#include "bufcache.h"

#define CACHE_SLOTS 8
#define CACHE_MIN (1u << 20)           /* smaller buffers are not cached */
#define CACHE_MAX ((size_t)768 << 20)  /* bytes held at most */

static struct {
    pthread_mutex_t mu;
    void *p[CACHE_SLOTS];
    size_t cap[CACHE_SLOTS];
    size_t total;
} cache = { .mu = PTHREAD_MUTEX_INITIALIZER };

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
    if (cap >= CACHE_MIN && cap <= CACHE_MAX) {
        pthread_mutex_lock(&cache.mu);
        /* Make room: evict the largest buffers until this one fits. */
        while (cache.total + cap > CACHE_MAX) {
            int big = -1;
            for (int i = 0; i < CACHE_SLOTS; i++)
                if (cache.p[i] && (big < 0 || cache.cap[i] > cache.cap[big]))
                    big = i;
            if (big < 0)
                break;
            free(cache.p[big]);
            cache.total -= cache.cap[big];
            cache.p[big] = NULL;
        }
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (!cache.p[i] && cache.total + cap <= CACHE_MAX) {
                cache.p[i] = p, cache.cap[i] = cap, cache.total += cap;
                pthread_mutex_unlock(&cache.mu);
                return;
            }
        pthread_mutex_unlock(&cache.mu);
    }
    free(p);
}

void srv_buf_trim(void)
{
    pthread_mutex_lock(&cache.mu);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        free(cache.p[i]);
        cache.p[i] = NULL;
    }
    cache.total = 0;
    pthread_mutex_unlock(&cache.mu);
}
