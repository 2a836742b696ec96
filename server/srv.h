/*
 * srv: the HTTP service. libmicrohttpd receives requests on its own threads; the op runs on a
 * libuv worker pool (pool.c); proto/ turns bytes into tensors and back; core/ computes.
 *
 * One srv_req owns everything of one request (body, tensor buffer, plan, response body) and
 * is freed in one place: the completion callback (http.c). Its life:
 *   created when the request line arrives (uri log callback)  -> route resolved, headers read
 *   body chunks                                               -> copied (and reduced) as they come
 *   body complete                                              -> computed inline if small, else
 *                                                                 suspended and sent to the pool
 *   pool done                                                  -> resumed, response queued
 *   connection done with it                                    -> access log line, freed
 */
#ifndef SRV_H
#define SRV_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "kserve.h"
#include "proto.h"
#include "qdq.h"

typedef struct srv srv;
typedef struct srv_req srv_req;
typedef struct srv_pool srv_pool;
typedef struct srv_conn srv_conn;

/* Routes (routes.c). */
typedef enum srv_route_id {
    SRV_ROUTE_NONE = 0, /* unknown path: 404 */
    SRV_ROUTE_QDQ,      /* POST /quantize-dequantize */
    SRV_ROUTE_HEALTHZ,  /* GET /healthz */
    SRV_ROUTE_READYZ,   /* GET /readyz */
    SRV_ROUTE_METRICS,  /* GET /metrics */
    SRV_ROUTE_V2_INFER, /* POST /v2/models/quantize_and_dequantize_v2[/versions/1]/infer */
    SRV_ROUTE_V2_SERVER,       /* GET /v2 */
    SRV_ROUTE_V2_LIVE,         /* GET /v2/health/live */
    SRV_ROUTE_V2_READY,        /* GET /v2/health/ready */
    SRV_ROUTE_V2_MODEL,        /* GET /v2/models/quantize_and_dequantize_v2[/versions/1] */
    SRV_ROUTE_V2_MODEL_READY,  /* GET /v2/models/quantize_and_dequantize_v2[/versions/1]/ready */
    SRV_ROUTE_V2_NO_MODEL,     /* anything else under /v2/models/: 404 naming the model */
    SRV_ROUTES          /* the number of routes */
} srv_route_id;

typedef struct srv_route {
    const char *path;
    srv_route_id id;
    const char *allow; /* the methods it takes, for 405's Allow header */
    const char *name;  /* for logs and metrics */
} srv_route;

/* The route for a path (never NULL: the "not found" entry when nothing matches). */
const srv_route *srv_route_find(const char *path);
/* Whether the route accepts the method. */
bool srv_route_allows(const srv_route *r, const char *method);
/* The route's name in logs and metrics. */
const char *srv_route_name(srv_route_id id);

/* Request body formats of the native route. */
typedef enum srv_fmt { SRV_FMT_NONE = 0, SRV_FMT_JSON, SRV_FMT_RAW, SRV_FMT_NPY, SRV_FMT_V2 } srv_fmt;

/* Status codes (core's and proto's) to HTTP, in one table (respond.c). */
int srv_http_status(int code);

struct srv_req {
    srv *s;
    struct MHD_Connection *conn;
    const srv_route *route;
    char method[16];
    char path[256];
    char request_id[80];
    uint64_t t_start, t_body, t_queued, t_compute0, t_compute1; /* ns, monotonic */
    uint64_t bytes_in, bytes_out;
    uint64_t body_decoded; /* body bytes after Content-Encoding */
    bool started;     /* the first access-handler call has run */
    bool done;        /* a response has been queued */

    /* A failure found while receiving; answered when the body is complete. */
    int fail_code;    /* 0, or a status code (qdq/proto) */
    int fail_http;    /* explicit HTTP status (404, 405, 411, 413...), overrides fail_code */
    char fail_msg[512];

    srv_fmt fmt;
    int metric_format;    /* index into the metrics' format label (metrics.c) */
    bool want_json;   /* Accept: application/json */
    bool have_length;
    uint64_t content_length;

    void *zin;            /* z_stream inflating a gzip/deflate body, or NULL */
    bool zin_end;         /* the compressed stream is complete */
    char encoding[16];    /* the request's Content-Encoding */
    char accept_encoding[128]; /* the request's Accept-Encoding (JSON responses) */

    proto_buf text;   /* JSON or v2 body, or the npy header while it arrives */
    size_t v2_header_len; /* v2: Inference-Header-Content-Length, or SIZE_MAX */
    bool v2_direct;       /* v2: the body goes straight into the tensor buffer (tbase) */
    proto_v2_request *v2; /* v2: the decoded request (owned) */
    proto_request preq;
    bool tensor_ready;    /* plan, tensor buffer and accumulators are set up */
    char *tbase;          /* tensor buffer (bufcache); the tensor starts at tbase + SRV_TENSOR_OFF */
    size_t tcap;          /* bytes at tbase */
    uint64_t tlen;        /* tensor bytes expected */
    uint64_t got;         /* tensor bytes received */
    uint64_t done_elems;  /* elements already reduced (or applied, with range_given) */
    qdq_plan plan;
    void *acc, *params;

    /* The job (pool.c) and its result. */
    int job;              /* srv_job */
    int items, items_left;
    void *work;           /* the pool's per-item records */
    bool suspended;
    bool done_resume_fail; /* submission failed after suspending: answer on resume */
    int status;           /* HTTP status of the prepared response */
    char *body;           /* response body (malloc or bufcache: see body_free) */
    size_t body_len;
    void (*body_free)(void *cls);  /* frees body (NULL: free()) */
    void *body_free_cls;
    const char *ctype;
    proto_buf hdrs;       /* extra response headers, "Name: value\n" lines */
};

/* The tensor starts this far into its buffer, leaving room for a .npy response header. */
#define SRV_TENSOR_OFF 4096

struct srv {
    const cfg *cfg;
    struct MHD_Daemon *daemon;
    srv_pool *pool;
    proto_limits limits;
    atomic_bool draining;
    atomic_int active;       /* requests between creation and completion */
    atomic_int queued;       /* jobs submitted to the pool and not finished */
    atomic_ullong served;
    int port;                /* the bound port */
    char *tls_cert, *tls_key; /* PEM text, when TLS is on */
    uint64_t started_ns;     /* wall clock, for metrics */
};

/* Monotonic nanoseconds. */
uint64_t srv_now_ns(void);

/* ---- http.c ---- */
int srv_start(srv *s, const cfg *c);
/* Graceful stop: readiness 503; lame duck for --shutdown-grace (still accepting and serving,
 * answers with Connection: close); stop accepting; drain; all within --drain-timeout. */
void srv_stop(srv *s);

/* ---- respond.c ---- */
/* Prepares an error response: JSON {"error": msg, "code": ...} with the status for code. */
void srv_req_fail(srv_req *r, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepares r's response from the computed tensor in the request's format. 0, or an error set. */
int srv_req_respond_tensor(srv_req *r);
/* Makes [start, start + len), inside r's tensor buffer, the response body: the response takes
 * the buffer (back to the cache when sent). 0, or -1 with a 503 prepared. */
int srv_req_body_from_buffer(srv_req *r, char *start, size_t len);
/* Queues the prepared response (status, body, headers) on the connection. */
enum MHD_Result srv_req_queue(srv_req *r);
/* Appends "Name: value" to the prepared response's extra headers. */
void srv_req_header(srv_req *r, const char *name, const char *value, size_t value_len);

/* ---- ops.c: the work itself (runs inline or on the pool) ---- */
typedef enum srv_job {
    SRV_JOB_NONE = 0,
    SRV_JOB_JSON,        /* decode JSON, compute, encode: one item */
    SRV_JOB_APPLY,       /* tensor received and reduced: apply in `items` ranges */
    SRV_JOB_V2,          /* decode a KServe v2 request, compute, encode: one item */
} srv_job;
/* Runs item i of r's job. Thread-safe across items of one request. */
void srv_ops_run(srv_req *r, int item);
/* After every item: builds the response (in r->status/body/ctype/hdrs). */
void srv_ops_finish(srv_req *r);
/* Receiving: sets up the tensor buffer and plan for raw/npy once the layout is known. */
int srv_ops_tensor_setup(srv_req *r);
/* Receiving: consumes body bytes of a raw/npy request. */
int srv_ops_tensor_feed(srv_req *r, const char *data, size_t n);

/* ---- pool.c ---- */
srv_pool *srv_pool_start(srv *s, int workers);
/* Runs r's job (r->items items) on the pool; when all are done, calls srv_ops_finish and
 * resumes the connection. Called from libmicrohttpd threads. 0, or -1 when out of memory. */
int srv_pool_submit(srv_pool *p, srv_req *r);
void srv_pool_stop(srv_pool *p);

/* ---- bufcache.c: large buffers kept warm between requests ---- */
void *srv_buf_get(size_t size, size_t *cap);
void srv_buf_put(void *p, size_t cap);
void srv_buf_trim(void);

/* ---- encoding.c ---- */
/* Starts inflating a body of this Content-Encoding: 0, -1 unknown encoding, -2 no memory. */
int srv_inflate_begin(srv_req *r, const char *encoding);
/* Inflates n body bytes, passing the output to sink; -1 with the failure recorded. */
int srv_inflate_feed(srv_req *r, const char *data, size_t n,
                     void (*sink)(srv_req *r, const char *data, size_t n));
/* Ends inflating: -1 when the compressed stream was incomplete. */
int srv_inflate_end(srv_req *r);
/* Compresses a prepared JSON body when Accept-Encoding asks for gzip or deflate. */
void srv_compress_response(srv_req *r, const char *accept_encoding);

/* ---- healthcheck.c ---- */
/* `--healthcheck` mode with the other arguments and the environment: 0 when the server (the
 * container's, or the one these settings name) answers GET /healthz with 200; 1 when not; 2
 * for settings that do not parse. */
int srv_healthcheck(int argc, char **argv, char **envp);

/* ---- guard.c ---- */
/* libmicrohttpd's connection notification: registers (started) or forgets a connection. */
void srv_guard_conn_event(struct MHD_Connection *conn, void **socket_context, int started);
enum { SRV_GUARD_SUSPEND, SRV_GUARD_RESUME, SRV_GUARD_NEXT };
/* The connection is computing (its deadline paused), back, or done with a request. */
void srv_guard_mark(struct MHD_Connection *conn, int what);
/* Starts and stops the deadline sweep, four times a second (--request-timeout). */
int srv_guard_start(const cfg *c);
void srv_guard_stop(void);
/* Connections cut off at the deadline so far. */
unsigned long long srv_guard_cut(void);
/* Open connections (not computing) with bytes received by the kernel and not yet read. */
int srv_guard_unread(void);
/* Whether an Authorization header carries the bearer token (constant-time comparison). */
bool srv_guard_token_ok(const char *token, const char *authorization);

/* ---- metrics.c ---- */
#define SRV_METRIC_FORMATS 6 /* none json raw npy v2_json v2_binary */
void srv_metrics_init(void);
/* Counts a finished request (its route, format, status, sizes and times). */
void srv_metrics_record(const srv_req *r);
/* The exposition text. */
int srv_metrics_write(const srv *s, proto_buf *b);

/* ---- log.c ---- */
void srv_log_init(const cfg *c);
void srv_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_log_access(const srv_req *r);

#endif
