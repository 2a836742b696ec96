/*
 * Large buffers kept warm between requests (bufcache.c). A fresh large malloc is fresh mmap'ed
 * memory: touching it costs a page fault per 4 KiB (about as much as receiving the bytes).
 */
#ifndef SRV_BUFCACHE_H
#define SRV_BUFCACHE_H

#include <stddef.h>

/* A buffer of at least size bytes (*cap gets its size), from the cache when one fits; NULL when
 * out of memory. */
void *srv_buf_get(size_t size, size_t *cap);
/* Gives a buffer back to the cache (or frees it when the cache has no room for it). */
void srv_buf_put(void *p, size_t cap);
/* Frees every cached buffer. */
void srv_buf_trim(void);

#endif
