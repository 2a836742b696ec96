/*
 * What is known of a request when it is done, for the access log (log.c) and the metrics
 * (metrics.c): filled by http.c, read by both, owned by neither.
 */
#ifndef SRV_RECORD_H
#define SRV_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "qdq.h"

typedef struct srv_record {
    const char *method, *path, *request_id;
    int route;              /* the route's index (routes.h: srv_route_id) */
    const char *route_name;
    int format;             /* proto_format */
    int status;             /* HTTP status sent (499: the client went away first) */
    uint64_t bytes_in, bytes_out;
    uint64_t t_start, t_queued, t_compute0, t_compute1, t_end; /* ns, srv_now_ns; 0: none */
    uint64_t elements;      /* computed, with their dtype */
    qdq_dtype dtype;
    bool checkpoint;        /* a whole checkpoint: its tensors and data bytes done */
    uint64_t tensors, tensor_bytes;
} srv_record;

#endif
