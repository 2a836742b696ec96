/*
 * Prometheus metrics (metrics.c): counters and histograms in fixed arrays of atomics (no locks
 * on the request path), written in the text exposition format for GET /metrics.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdatomic.h>

#include "proto.h"
#include "record.h"

/* The gauges of the moment, read by whoever serves GET /metrics. */
typedef struct srv_gauges {
    int inflight; /* requests received and not yet answered */
    int queued;   /* requests waiting for or running on the worker pool (both protocols) */
    unsigned long long log_dropped; /* access-log lines lost (a counter) */
    uint64_t memory_budget;         /* --max-memory */
    uint64_t memory_held;           /* by requests and the buffer cache */
    int memory_waiting;             /* requests waiting for room in the budget */
    int checkpoints;                /* checkpoints in flight */
    long long spool_bytes;          /* in checkpoints' spool files */
} srv_gauges;

/* Starts counting; route_names[i] is the name of route index i (n of them). */
void srv_metrics_init(const char *const *route_names, int n);
/* gRPC is on: rpc_names[i] names the RPC of index i (n of them: a gRPC record's route), and
 * *inflight counts its calls in flight (both must outlive the metrics). Without this call no
 * gRPC series are written. */
void srv_metrics_init_grpc(const char *const *rpc_names, int n, const atomic_int *inflight);
/* Counts a finished request. */
void srv_metrics_record(const srv_record *r);
/* The exposition text. 0, or PROTO_ENOMEM. */
int srv_metrics_write(const srv_gauges *g, proto_buf *b);

#endif
