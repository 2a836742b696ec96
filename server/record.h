/*
 * What is known of a request when it is done, for the access log (log.c) and the metrics
 * (metrics.c): filled by the transport (http.c, grpc.c), read by both, owned by neither.
 */
#ifndef SRV_RECORD_H
#define SRV_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "qdq.h"

/* The transports, as the metrics' `protocol` label names them. */
enum { SRV_PROTO_HTTP = 0, SRV_PROTO_GRPC };

typedef struct srv_record {
    int protocol;           /* SRV_PROTO_*: what route and status below are */
    const char *method, *path, *request_id;
    int route;              /* HTTP: the route's index (routes.h: srv_route_id); gRPC: the RPC
                             * (grpc.h: SRV_GRPC_*) */
    const char *route_name;
    int format;             /* proto_format (HTTP only) */
    int status;             /* HTTP: the status sent (499: the client went away first); gRPC:
                             * the status code (0..16) the call ended with */
    uint64_t bytes_in, bytes_out;
    uint64_t t_start, t_queued, t_compute0, t_compute1, t_end; /* ns, srv_now_ns; 0: none */
    uint64_t elements;      /* computed, with their dtype */
    qdq_dtype dtype;
    bool checkpoint;        /* a whole checkpoint: its tensors and data bytes done */
    uint64_t tensors, tensor_bytes;
} srv_record;

#endif
