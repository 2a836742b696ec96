/*
 * The gRPC transport (grpc.c): KServe v2's inference.GRPCInferenceService (ServerLive,
 * ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer) and
 * grpc.health.v1.Health/Check, on gRPC's C core, beside the HTTP server. The model and its
 * messages are proto/'s (kserve.h, v2_grpc.h, codec.h's proto_run); the rules, limits, token
 * and TLS files are HTTP's (cfg).
 *
 * Life: srv_grpc_start after the configuration is loaded (and SIGPIPE ignored, signals blocked)
 * and the worker pool started; on SIGTERM, srv_grpc_drain at once (readiness answers
 * UNAVAILABLE, health NOT_SERVING, every call is still served), then srv_grpc_stop once the
 * lame-duck grace is over, and only then the pool's stop.
 *
 * Threads: as many as --http-threads wait on one completion queue and answer the small RPCs and
 * small ModelInfer messages (up to --inline-bytes, as HTTP runs small bodies where they arrive);
 * larger ModelInfer work runs on HTTP's worker pool (pool.h, --workers, --max-queue), so that
 * the completion queue's threads never wait for a big tensor.
 *
 * Every call finished is counted in the metrics (metrics.h, protocol "grpc") and logged.
 */
#ifndef SRV_GRPC_H
#define SRV_GRPC_H

#include <stdint.h>

#include "config.h"
#include "pool.h"

/* The RPCs, for counters and logs. SRV_GRPC_OTHER: a method the server does not have. */
enum {
    SRV_GRPC_SERVER_LIVE,
    SRV_GRPC_SERVER_READY,
    SRV_GRPC_MODEL_READY,
    SRV_GRPC_SERVER_METADATA,
    SRV_GRPC_MODEL_METADATA,
    SRV_GRPC_MODEL_INFER,
    SRV_GRPC_HEALTH_CHECK,
    SRV_GRPC_OTHER,
    SRV_GRPC_RPCS
};
#define SRV_GRPC_CODES 17 /* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED) */

/*
 * Starts listening on c->grpc_host:c->grpc_port (nothing to do when c->grpc_port is -1, for
 * --grpc-listen none) with TLS when c->tls_cert is set, and starts the threads. ModelInfer's
 * larger work goes to pool, which must outlive srv_grpc_stop. 0, or -1 after logging why
 * (nothing left running).
 */
int srv_grpc_start(const cfg *c, srv_pool *pool);
/* The bound port (the kernel's choice for port 0); 0 when gRPC is off. */
int srv_grpc_port(void);
/* Draining: readiness and health say so; calls are still served. */
void srv_grpc_drain(void);
/*
 * Stops: no new calls or connections (clients get GOAWAY), calls in flight are answered until
 * deadline_ns (srv_now_ns's clock), then the rest are cancelled; returns once no call's work is
 * left on the pool, and frees everything.
 */
void srv_grpc_stop(uint64_t deadline_ns);

/* "ModelInfer", ... "Check", "other". */
const char *srv_grpc_rpc_name(int rpc);

#endif
