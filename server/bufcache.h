/*
 * Large buffers kept warm between requests (bufcache.c). A fresh large malloc is fresh mmap'ed
 * memory: touching it costs a page fault per 4 KiB (about as much as receiving the bytes).
 */
#ifndef SRV_BUFCACHE_H
#define SRV_BUFCACHE_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes the cache keeps (default 768 MiB). */
void srv_buf_init(size_t max);
/* A buffer of at least size bytes (*cap gets its size), from the cache when one fits; NULL when
 * out of memory. */
void *srv_buf_get(size_t size, size_t *cap);
/* The size srv_buf_get allocates for a request of size bytes (its size class). */
size_t srv_buf_size(size_t size);
/* Gives a buffer back to the cache (or frees it when the cache has no room for it). */
void srv_buf_put(void *p, size_t cap);
/* Bytes the cache holds now. */
size_t srv_buf_cached(void);
/* Frees cached buffers, largest first, until at least bytes are freed or none is left; returns
 * the bytes freed. */
size_t srv_buf_evict(size_t bytes);
/* Frees the cached buffers nobody has wanted for idle_ns; returns the bytes freed. */
size_t srv_buf_idle(uint64_t idle_ns);
/* Frees every cached buffer. */
void srv_buf_trim(void);

#endif
