/*
 * The HTTP server (http.c): libmicrohttpd receives requests on its own threads, a codec
 * (proto/codec.h) takes each body as it arrives, and the work runs inline or on the worker pool
 * (pool.h). The request's state is private to http.c.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "pool.h"

typedef struct srv {
    const cfg *cfg;
    struct MHD_Daemon *daemon;
    srv_pool *pool;
    proto_host host;         /* what the codecs use: limits, buffers */
    atomic_bool draining;
    atomic_int active;       /* requests between creation and completion */
    atomic_int queued;       /* tasks submitted to the pool and not finished */
    atomic_int streams;      /* checkpoints in flight */
    atomic_ullong served;
    int port;                /* the bound port */
    char *tls_cert, *tls_key; /* PEM text, when TLS is on */
} srv;

/* Starts listening and serving. 0, or -1 after logging why. */
int srv_start(srv *s, const cfg *c);
/* Graceful stop: readiness 503; lame duck for --shutdown-grace (still accepting and serving,
 * answers with Connection: close); stop accepting; drain; all within --drain-timeout. The worker
 * pool is left running for the other transport (gRPC): srv_pool_stop(s->pool) after it. */
void srv_stop(srv *s);

#endif
