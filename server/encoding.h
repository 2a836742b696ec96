/*
 * Content-Encoding (encoding.c): gzip and deflate request bodies, inflated as they arrive (so
 * limits apply to the inflated bytes and a small bomb cannot grow memory), and gzip or deflate
 * JSON answers when Accept-Encoding asks.
 */
#ifndef SRV_ENCODING_H
#define SRV_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

#include "qdq.h"

typedef struct srv_inflate srv_inflate;

/* An inflater for this Content-Encoding: NULL with *rc -1 for an encoding it does not know,
 * -2 when out of memory. */
srv_inflate *srv_inflate_new(const char *encoding, int *rc);
/* The encoding's name as the request gave it. */
const char *srv_inflate_name(const srv_inflate *z);
/*
 * Inflates n body bytes, handing the output to sink (which returns nonzero to stop: a limit,
 * a bad body). 0, or nonzero when the compressed data is bad (recorded in err: 400) or the sink
 * stopped.
 */
int srv_inflate_feed(srv_inflate *z, const char *data, size_t n,
                     int (*sink)(void *cls, const char *data, size_t n), void *cls,
                     qdq_error *err);
/* Whether the compressed stream was complete. */
bool srv_inflate_complete(const srv_inflate *z);
void srv_inflate_free(srv_inflate *z);

/*
 * Compresses body[0, len) with the encoding Accept-Encoding prefers (gzip or deflate, q > 0),
 * into *out (malloc) of *out_len bytes: returns the encoding's name, or NULL when nothing was
 * compressed (no encoding asked for, a small body, or no memory).
 */
const char *srv_compress(const char *accept_encoding, const char *body, size_t len, char **out,
                         size_t *out_len);

#endif
