/*
 * Prometheus metrics: counters and histograms kept in fixed arrays of atomics (no locks on the
 * request path), written out in the text exposition format by GET /metrics.
 *
 * The request families carry a `protocol` label: "http" series are by route (routes.h), body
 * format and HTTP status; "grpc" series by RPC (the method's name: "ModelInfer", "Check", or
 * "other" for a method the server does not have), format "protobuf", and the gRPC status code's
 * name ("OK", "INVALID_ARGUMENT", ...: the names gRPC's own tools print, and unambiguous beside
 * HTTP's numbers in the same label).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "metrics.h"
#include "status.h"

/* Every HTTP status the status table can give (status.h), and "other". */
static int status_codes[PROTO_NSTATUS];
static int nstatus;
#define NSTATUS_MAX (PROTO_NSTATUS + 1)
#define MAX_ROUTES 32
#define MAX_RPCS 16
#define GRPC_CODES 17 /* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED) */
static const double buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10 };
#define NBUCKETS (int)(sizeof buckets / sizeof buckets[0])

typedef struct histogram {
    atomic_ullong count[NBUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    atomic_ullong sum_ns;
} histogram;

static struct {
    atomic_ullong requests[MAX_ROUTES][PROTO_NFORMATS][NSTATUS_MAX];
    histogram request[MAX_ROUTES], queue, compute;
    atomic_ullong bytes_in[MAX_ROUTES], bytes_out[MAX_ROUTES];
    atomic_ullong elements[4];
    atomic_ullong checkpoints[2], ckpt_tensors, ckpt_bytes; /* checkpoints: failed, answered */
    /* gRPC calls, by RPC (grpc.h: SRV_GRPC_*) and status code. */
    atomic_ullong grpc_calls[MAX_RPCS][GRPC_CODES];
    histogram grpc_call[MAX_RPCS];
    atomic_ullong grpc_bytes_in[MAX_RPCS], grpc_bytes_out[MAX_RPCS];
    const char *const *rpc_names;
    int nrpcs;                    /* 0: gRPC is off */
    const atomic_int *grpc_inflight;
    double start_time;
    const char *const *route_names;
    int nroutes;
} M;

void srv_metrics_init(const char *const *route_names, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    M.start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    M.route_names = route_names;
    M.nroutes = n < MAX_ROUTES ? n : MAX_ROUTES;
    nstatus = 0;
    for (int code = 0; code < PROTO_NSTATUS; code++) {
        int h = proto_status_http(code), k = 0;
        while (k < nstatus && status_codes[k] != h)
            k++;
        if (k == nstatus)
            status_codes[nstatus++] = h;
    }
}

void srv_metrics_init_grpc(const char *const *rpc_names, int n, const atomic_int *inflight)
{
    M.rpc_names = rpc_names;
    M.grpc_inflight = inflight;
    M.nrpcs = n < MAX_RPCS ? n : MAX_RPCS;
}

/* A gRPC status code's name, as gRPC's own tools print it. */
static const char *grpc_code_name(int code)
{
    static const char *const names[GRPC_CODES] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    return code >= 0 && code < GRPC_CODES ? names[code] : "UNKNOWN";
}

/* The status's index; nstatus for "other". */
static int status_index(int status)
{
    for (int i = 0; i < nstatus; i++)
        if (status_codes[i] == status)
            return i;
    return nstatus;
}

static void observe(histogram *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < NBUCKETS && s > buckets[b])
        b++;
    atomic_fetch_add_explicit(&h->count[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

/* A finished gRPC call: its RPC's counters. */
static void record_grpc(const srv_record *r)
{
    if (M.nrpcs == 0)
        return;
    int rpc = r->route >= 0 && r->route < M.nrpcs ? r->route : M.nrpcs - 1; /* the last: other */
    int code = r->status >= 0 && r->status < GRPC_CODES ? r->status : 2; /* UNKNOWN */
    atomic_fetch_add_explicit(&M.grpc_calls[rpc][code], 1, memory_order_relaxed);
    observe(&M.grpc_call[rpc], r->t_end - r->t_start);
    atomic_fetch_add_explicit(&M.grpc_bytes_in[rpc], r->bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&M.grpc_bytes_out[rpc], r->bytes_out, memory_order_relaxed);
}

void srv_metrics_record(const srv_record *r)
{
    bool grpc = r->protocol == SRV_PROTO_GRPC;
    int route = r->route >= 0 && r->route < M.nroutes ? r->route : 0;
    int f = (unsigned)r->format < PROTO_NFORMATS ? r->format : 0;
    if (grpc)
        record_grpc(r);
    else {
        atomic_fetch_add_explicit(&M.requests[route][f][status_index(r->status)], 1,
                                  memory_order_relaxed);
        observe(&M.request[route], r->t_end - r->t_start);
        atomic_fetch_add_explicit(&M.bytes_in[route], r->bytes_in, memory_order_relaxed);
        atomic_fetch_add_explicit(&M.bytes_out[route], r->bytes_out, memory_order_relaxed);
    }
    if (r->t_queued && r->t_compute0 >= r->t_queued)
        observe(&M.queue, r->t_compute0 - r->t_queued);
    if (r->t_compute0 && r->t_compute1 >= r->t_compute0)
        observe(&M.compute, r->t_compute1 - r->t_compute0);
    if (r->checkpoint) {
        atomic_fetch_add_explicit(&M.checkpoints[r->status == 200], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&M.ckpt_tensors, r->tensors, memory_order_relaxed);
        atomic_fetch_add_explicit(&M.ckpt_bytes, r->tensor_bytes, memory_order_relaxed);
    }
    if (r->status == (grpc ? 0 : 200) && r->elements && (unsigned)r->dtype < 4)
        atomic_fetch_add_explicit(&M.elements[r->dtype], r->elements, memory_order_relaxed);
}

static void put_histogram(proto_buf *b, const char *name, const char *labels, histogram *h)
{
    char line[256];
    unsigned long long cum = 0;
    for (int i = 0; i <= NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->count[i], memory_order_relaxed);
        int n;
        if (i < NBUCKETS)
            n = snprintf(line, sizeof line, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
                         *labels ? "," : "", buckets[i], cum);
        else
            n = snprintf(line, sizeof line, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
                         *labels ? "," : "", cum);
        proto_buf_append(b, line, (size_t)n);
    }
    int n = snprintf(line, sizeof line, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name,
                     *labels ? "{" : "", labels, *labels ? "}" : "",
                     (double)atomic_load(&h->sum_ns) / 1e9, name, *labels ? "{" : "", labels,
                     *labels ? "}" : "", cum);
    proto_buf_append(b, line, (size_t)n);
}

static void put(proto_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(proto_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        proto_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/* The request-duration histogram for each of n routes (HTTP routes or gRPC RPCs) that has seen a request. */
static void put_durations(proto_buf *b, const char *protocol, const char *const *names,
                          histogram *h, int n)
{
    for (int r = 0; r < n; r++) {
        if (!atomic_load(&h[r].sum_ns) && !atomic_load(&h[r].count[0]))
            continue;
        char labels[96];
        snprintf(labels, sizeof labels, "protocol=\"%s\",route=\"%s\"", protocol, names[r]);
        put_histogram(b, "qdq_request_duration_seconds", labels, &h[r]);
    }
}

/* A counter of family for each of n routes (HTTP routes or gRPC RPCs). */
static void put_counters(proto_buf *b, const char *family, const char *protocol,
                         const char *const *names, atomic_ullong *v, int n)
{
    for (int r = 0; r < n; r++)
        put(b, "%s{protocol=\"%s\",route=\"%s\"} %llu\n", family, protocol, names[r],
            (unsigned long long)atomic_load(&v[r]));
}

int srv_metrics_write(const srv_gauges *g, proto_buf *b)
{
    put(b, "# HELP qdq_requests_total Requests answered, by protocol, route (the RPC for gRPC), "
           "body format and status (gRPC's status name for gRPC).\n"
           "# TYPE qdq_requests_total counter\n");
    for (int r = 0; r < M.nroutes; r++)
        for (int f = 0; f < PROTO_NFORMATS; f++)
            for (int k = 0; k <= nstatus; k++) {
                unsigned long long v = atomic_load(&M.requests[r][f][k]);
                if (!v)
                    continue;
                char st[16];
                if (k < nstatus)
                    snprintf(st, sizeof st, "%d", status_codes[k]);
                else
                    snprintf(st, sizeof st, "other");
                put(b, "qdq_requests_total{protocol=\"http\",route=\"%s\",format=\"%s\","
                    "status=\"%s\"} %llu\n", M.route_names[r],
                    proto_format_name((proto_format)f), st, v);
            }
    for (int r = 0; r < M.nrpcs; r++)
        for (int k = 0; k < GRPC_CODES; k++) {
            unsigned long long v = atomic_load(&M.grpc_calls[r][k]);
            if (v)
                put(b, "qdq_requests_total{protocol=\"grpc\",route=\"%s\",format=\"protobuf\","
                    "status=\"%s\"} %llu\n", M.rpc_names[r], grpc_code_name(k), v);
        }
    put(b, "# HELP qdq_request_duration_seconds Time from the request line (gRPC: the whole "
           "request message) to the answer sent.\n"
           "# TYPE qdq_request_duration_seconds histogram\n");
    put_durations(b, "http", M.route_names, M.request, M.nroutes);
    put_durations(b, "grpc", M.rpc_names, M.grpc_call, M.nrpcs);
    put(b, "# HELP qdq_queue_duration_seconds Time a request waited for a worker.\n"
           "# TYPE qdq_queue_duration_seconds histogram\n");
    put_histogram(b, "qdq_queue_duration_seconds", "", &M.queue);
    put(b, "# HELP qdq_compute_duration_seconds Time computing the op (and encoding JSON).\n"
           "# TYPE qdq_compute_duration_seconds histogram\n");
    put_histogram(b, "qdq_compute_duration_seconds", "", &M.compute);
    put(b, "# HELP qdq_request_bytes_total Request body bytes received (gRPC: request message "
           "bytes), by protocol and route.\n"
           "# TYPE qdq_request_bytes_total counter\n");
    put_counters(b, "qdq_request_bytes_total", "http", M.route_names, M.bytes_in, M.nroutes);
    put_counters(b, "qdq_request_bytes_total", "grpc", M.rpc_names, M.grpc_bytes_in, M.nrpcs);
    put(b, "# HELP qdq_response_bytes_total Response body bytes sent (gRPC: response message "
           "bytes), by protocol and route.\n"
           "# TYPE qdq_response_bytes_total counter\n");
    put_counters(b, "qdq_response_bytes_total", "http", M.route_names, M.bytes_out, M.nroutes);
    put_counters(b, "qdq_response_bytes_total", "grpc", M.rpc_names, M.grpc_bytes_out, M.nrpcs);
    put(b, "# HELP qdq_elements_total Tensor elements quantized, by dtype.\n"
           "# TYPE qdq_elements_total counter\n");
    for (int d = 0; d < 4; d++)
        put(b, "qdq_elements_total{dtype=\"%s\"} %llu\n", qdq_dtype_name((qdq_dtype)d),
            (unsigned long long)atomic_load(&M.elements[d]));
    put(b, "# HELP qdq_inflight_requests Requests received and not yet finished, by protocol.\n"
           "# TYPE qdq_inflight_requests gauge\nqdq_inflight_requests{protocol=\"http\"} %d\n",
        g->inflight);
    if (M.grpc_inflight)
        put(b, "qdq_inflight_requests{protocol=\"grpc\"} %d\n", atomic_load(M.grpc_inflight));
    put(b, "# HELP qdq_queued_requests Requests waiting for or running on the worker pool (both "
           "protocols).\n"
           "# TYPE qdq_queued_requests gauge\nqdq_queued_requests %d\n", g->queued);
    put(b, "# HELP qdq_access_log_dropped_lines_total Access-log lines lost because the log's "
           "sink did not keep up.\n# TYPE qdq_access_log_dropped_lines_total counter\n"
           "qdq_access_log_dropped_lines_total %llu\n", g->log_dropped);
    put(b, "# HELP qdq_checkpoints_total Whole checkpoints, by outcome.\n"
           "# TYPE qdq_checkpoints_total counter\n"
           "qdq_checkpoints_total{outcome=\"answered\"} %llu\n"
           "qdq_checkpoints_total{outcome=\"failed\"} %llu\n",
        (unsigned long long)atomic_load(&M.checkpoints[1]),
        (unsigned long long)atomic_load(&M.checkpoints[0]));
    put(b, "# HELP qdq_checkpoint_tensors_total Tensors of checkpoints processed.\n"
           "# TYPE qdq_checkpoint_tensors_total counter\nqdq_checkpoint_tensors_total %llu\n",
        (unsigned long long)atomic_load(&M.ckpt_tensors));
    put(b, "# HELP qdq_checkpoint_bytes_total Tensor bytes of checkpoints processed.\n"
           "# TYPE qdq_checkpoint_bytes_total counter\nqdq_checkpoint_bytes_total %llu\n",
        (unsigned long long)atomic_load(&M.ckpt_bytes));
    put(b, "# HELP qdq_checkpoints_inflight Checkpoints being received or answered.\n"
           "# TYPE qdq_checkpoints_inflight gauge\nqdq_checkpoints_inflight %d\n",
        g->checkpoints);
    put(b, "# HELP qdq_spool_bytes Bytes in checkpoints' spool files.\n"
           "# TYPE qdq_spool_bytes gauge\nqdq_spool_bytes %lld\n", g->spool_bytes);
    put(b, "# HELP qdq_memory_budget_bytes The memory budget (--max-memory).\n"
           "# TYPE qdq_memory_budget_bytes gauge\nqdq_memory_budget_bytes %llu\n",
        (unsigned long long)g->memory_budget);
    put(b, "# HELP qdq_memory_held_bytes Memory held by requests and the buffer cache.\n"
           "# TYPE qdq_memory_held_bytes gauge\nqdq_memory_held_bytes %llu\n",
        (unsigned long long)g->memory_held);
    put(b, "# HELP qdq_memory_waiting_requests Requests waiting for room in the memory budget.\n"
           "# TYPE qdq_memory_waiting_requests gauge\nqdq_memory_waiting_requests %d\n",
        g->memory_waiting);
    put(b, "# HELP qdq_build_info Build information.\n# TYPE qdq_build_info gauge\n"
           "qdq_build_info{version=\"%s\",isa=\"%s\"} 1\n", QDQ_SERVER_VERSION,
        qdq_isa_best() == QDQ_ISA_AVX2 ? "avx2" : "portable");
    put(b, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
           "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
        M.start_time);
    put(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n",
        resident_bytes());
    return b->data ? 0 : PROTO_ENOMEM;
}
