/*
 * libmicrohttpd glue: the daemon, the per-request life (srv.h), receiving bodies, and the
 * graceful stop.
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers
 * (we set up and answer nothing yet: answering in that first call would close keep-alive
 * connections), once per body chunk, once when the body is complete, and once more after a
 * resume. A failure found while receiving is recorded and answered when the body is complete,
 * so the connection stays usable; only a body over the size limit is answered at once (and the
 * connection closed) rather than read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A request id: 16 hex digits from a process-random seed and a counter (splitmix64). */
static void new_request_id(char *out, size_t n)
{
    static atomic_ullong counter;
    static uint64_t seed;
    if (!seed) {
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(&seed, sizeof seed, 1, f) != 1)
            seed = srv_now_ns() ^ (uint64_t)getpid() << 32;
        if (f)
            fclose(f);
        seed |= 1;
    }
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    snprintf(out, n, "%016llx", (unsigned long long)z);
}

/* A client's X-Request-Id is echoed when it is 1..64 printable characters without spaces. */
static bool usable_request_id(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] > '~' || v[i] == '"' || v[i] == '\\')
            return false;
    return true;
}

/*
 * A request's state, created at the first access-handler call: libmicrohttpd promises the
 * completion callback (which frees it) only for requests the handler has seen.
 */
static srv_req *req_new(srv *s, struct MHD_Connection *conn, const char *url)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = s;
    r->conn = conn;
    r->t_start = srv_now_ns();
    proto_request_init(&r->preq);
    snprintf(r->path, sizeof r->path, "%s", url);
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void req_free(srv_req *r)
{
    if (r->v2) {
        proto_v2_request_clear(r->v2);
        free(r->v2);
    }
    proto_buf_free(&r->text);
    proto_buf_free(&r->hdrs);
    proto_request_clear(&r->preq);
    free(r->acc);
    free(r->params);
    if (r->status == 200)
        srv_buf_put(r->tbase, r->tcap);
    else
        free(r->tbase); /* only answered requests keep buffers warm: a refused one gives back */
    if (r->body) {
        if (r->body_free)
            r->body_free(r->body_free_cls);
        else
            free(r->body);
    }
    free(r->work);
    srv_inflate_end(r);
    free(r);
}

static void conn_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    srv_guard_conn_event(conn, socket_context, code == MHD_CONNECTION_NOTIFY_STARTED);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv *s = cls;
    srv_req *r = *con_cls;
    srv_guard_mark(conn, SRV_GUARD_NEXT);
    if (!r)
        return;
    if (!r->done)
        r->status = 499; /* the client went away (or the connection failed) before an answer */
    else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        r->status = r->status ? r->status : 499;
    srv_log_access(r);
    srv_metrics_record(r);
    atomic_fetch_add(&s->served, 1);
    req_free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* Records a failure to answer once the body is complete. */
static void fail_later(srv_req *r, int http, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_later(srv_req *r, int http, int code, const char *fmt, ...)
{
    if (r->fail_http || r->fail_code)
        return; /* the first failure is the one reported */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail_msg, sizeof r->fail_msg, fmt, ap);
    va_end(ap);
    r->fail_http = http;
    r->fail_code = code;
}

/* The media type of a Content-Type or Accept value, without parameters, lower-cased. */
static void media_type(const char *v, char *out, size_t n)
{
    size_t k = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v && *v != ';' && *v != ',' && *v != ' ' && k + 1 < n; v++)
        out[k++] = (char)((*v >= 'A' && *v <= 'Z') ? *v + 32 : *v);
    out[k] = '\0';
}

/* Whether an Accept header asks for JSON first ("application/json" before any other type). */
static bool accepts_json(const char *v)
{
    char mt[64];
    media_type(v, mt, sizeof mt);
    return strcmp(mt, "application/json") == 0;
}

typedef struct qarg_ctx {
    srv_req *r;
} qarg_ctx;

static enum MHD_Result query_arg_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    srv_req *r = cls;
    (void)kind;
    if (r->fail_code || r->fail_http)
        return MHD_NO;
    qdq_error err = { 0 };
    int rc = proto_query_arg(&r->preq, key, value ? value : "", &r->s->limits, &err);
    if (rc) {
        fail_later(r, 0, rc, "%s", err.msg);
        return MHD_NO;
    }
    return MHD_YES;
}

/* Counts Content-Length (and, below, Transfer-Encoding) headers, however spelled. */
static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind, (void)value;
    if (strcasecmp(key, "Content-Length") == 0)
        ++*(int *)cls;
    else if (strpbrk(key, " \t") || strncasecmp(key, "content-length", 14) == 0 ||
             (strncasecmp(key, "transfer-encoding", 17) == 0 &&
              strcasecmp(key, "Transfer-Encoding") != 0))
        *(int *)cls += 100; /* a name with white space, or a near miss: refused as ambiguous */
    return MHD_YES;
}

static enum MHD_Result count_te(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind, (void)value;
    if (strcasecmp(key, "Transfer-Encoding") == 0)
        ++*(int *)cls;
    return MHD_YES;
}

/* Parses a Content-Length value strictly (digits only). */
static bool parse_length(const char *v, uint64_t *out)
{
    uint64_t n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return true;
}

/* The first call: route, method, headers. Returns false when the request was answered. */
static bool begin(srv_req *r, const char *method)
{
    srv *s = r->s;
    struct MHD_Connection *c = r->conn;
    snprintf(r->method, sizeof r->method, "%s", method);
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && usable_request_id(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        new_request_id(r->request_id, sizeof r->request_id);
    r->route = srv_route_find(r->path);
    srv_route_id id = r->route->id;
    bool open_route = id == SRV_ROUTE_HEALTHZ || id == SRV_ROUTE_READYZ ||
                      id == SRV_ROUTE_V2_LIVE || id == SRV_ROUTE_V2_READY;
    bool takes_body = id == SRV_ROUTE_QDQ || id == SRV_ROUTE_V2_INFER;
    if (s->cfg->auth_token[0] && !open_route &&
        !srv_guard_token_ok(s->cfg->auth_token,
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
        /* Answered at once: an unauthenticated body is not read (the connection closes). */
        srv_req_fail(r, 401, "missing or wrong bearer token (Authorization: Bearer <token>)");
        srv_req_header(r, "WWW-Authenticate", "Bearer realm=\"qdq-server\"", 26);
        srv_req_queue(r);
        return false;
    }
    if (atomic_load(&s->active) > s->cfg->max_inflight && !open_route) {
        srv_req_fail(r, 503, "the server is overloaded: more than %d requests in flight "
                     "(--max-inflight)", s->cfg->max_inflight);
        srv_req_queue(r);
        return false;
    }
    if (id == SRV_ROUTE_NONE) {
        fail_later(r, 404, 0, "no route for %s %s", r->method, r->path);
        return true;
    }
    if (id == SRV_ROUTE_V2_NO_MODEL) {
        const char *name = r->path + strlen("/v2/models/");
        fail_later(r, 404, 0, "unknown model or version: '%.*s' (this server serves %s, "
                   "version %s)", (int)strcspn(name, "/"), name, PROTO_V2_MODEL_NAME,
                   PROTO_V2_MODEL_VERSION);
        return true;
    }
    if (!srv_route_allows(r->route, method)) {
        fail_later(r, 405, 0, "method %s is not allowed on %s (allowed: %s)", r->method,
                   r->path, r->route->allow);
        return true;
    }
    /* While draining (srv_stop), requests are still served: whatever a client sent before the
     * signal, or during the grace, is answered; respond.c adds Connection: close. */
    if (!takes_body)
        return true;

    /*
     * Framing that two parsers could read differently (request smuggling): Content-Length with
     * Transfer-Encoding, two Content-Lengths, a Transfer-Encoding other than chunked. Refused at
     * once, which also closes the connection, so nothing hidden in the body is read as a
     * request.
     */
    int n_cl = 0, n_te = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &n_cl);
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_te, &n_te);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    if (n_cl > 1 || n_te > 1 || (n_cl && n_te) || (te && strcasecmp(te, "chunked") != 0)) {
        srv_req_fail(r, 400, "ambiguous message framing: %s", n_cl >= 100 ? "a header name "
                     "with white space or a near miss of Content-Length/Transfer-Encoding"
                     : n_cl > 1 ? "several Content-Length headers" : n_te > 1 ? "several Transfer-Encoding headers"
                     : n_cl && n_te ? "both Content-Length and Transfer-Encoding"
                                    : "Transfer-Encoding other than chunked");
        srv_req_queue(r);
        return false;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        if (!parse_length(cl, &r->content_length)) {
            fail_later(r, 400, 0, "Content-Length is not a number: '%.40s'", cl);
            return true;
        }
        r->have_length = true;
        if (r->content_length > s->limits.max_body) {
            srv_req_fail(r, 413, "body of %llu bytes is over the limit of %llu bytes "
                         "(--max-body-bytes)", (unsigned long long)r->content_length,
                         (unsigned long long)s->limits.max_body);
            srv_req_queue(r);
            return false;
        }
    }
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0) {
        int rc = srv_inflate_begin(r, ce);
        if (rc == -1) {
            fail_later(r, 415, 0, "Content-Encoding '%.40s' is not supported: use gzip or "
                       "deflate", ce);
            return true;
        }
        if (rc == -2) {
            fail_later(r, 503, 0, "out of memory starting to inflate the body");
            return true;
        }
        r->have_length = false; /* Content-Length counts compressed bytes */
    }
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    if (ae)
        snprintf(r->accept_encoding, sizeof r->accept_encoding, "%s", ae);
    if (id == SRV_ROUTE_V2_INFER) { /* no Content-Type needed: Triton's client sends none */
        r->fmt = SRV_FMT_V2;
        r->v2_header_len = SIZE_MAX;
        r->metric_format = 4;
        const char *hl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Inference-Header-Content-Length");
        uint64_t v;
        if (hl && !parse_length(hl, &v))
            fail_later(r, 400, 0, "Inference-Header-Content-Length is not a number: '%.40s'",
                       hl);
        else if (hl)
            r->v2_header_len = (size_t)v, r->metric_format = 5;
        else if (r->have_length && proto_buf_reserve(&r->text, r->content_length + 1))
            fail_later(r, 503, 0, "out of memory for a %llu-byte body",
                       (unsigned long long)r->content_length);
        if (hl && r->have_length && !r->fail_http) {
            /* Binary tensors: received into a warm buffer with room around, so the op runs in
             * place and the answer is built around the output (ops.c run_v2). */
            r->tbase = srv_buf_get(2 * SRV_TENSOR_OFF + r->content_length, &r->tcap);
            if (!r->tbase)
                fail_later(r, 503, 0, "out of memory for a %llu-byte body",
                           (unsigned long long)r->content_length);
            r->v2_direct = r->tbase != NULL;
        }
        return true;
    }
    const char *ac = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    r->want_json = ac && accepts_json(ac);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    char mt[64];
    media_type(ct ? ct : "", mt, sizeof mt);
    if (strcmp(mt, "application/json") == 0) {
        r->fmt = SRV_FMT_JSON;
        r->metric_format = 1;
        if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
            fail_later(r, 400, 0, "JSON requests take their attributes in the body, "
                       "not in the query string");
        else if (r->have_length && proto_buf_reserve(&r->text, r->content_length + 1))
            fail_later(r, 503, 0, "out of memory for a %llu-byte body",
                       (unsigned long long)r->content_length);
        return true;
    }
    if (strcmp(mt, "application/octet-stream") == 0)
        r->fmt = SRV_FMT_RAW, r->metric_format = 2;
    else if (strcmp(mt, "application/x-npy") == 0)
        r->fmt = SRV_FMT_NPY, r->metric_format = 3;
    else {
        fail_later(r, 415, 0, "Content-Type '%.60s' is not supported: use application/json, "
                   "application/octet-stream or application/x-npy", ct ? ct : "(none)");
        return true;
    }
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg_cb, r);
    if (r->fail_code || r->fail_http)
        return true;
    if (r->fmt == SRV_FMT_RAW && r->have_length) {
        qdq_error err = { 0 };
        int rc = proto_raw_finish(&r->preq, r->content_length, &s->limits, &err);
        if (rc)
            fail_later(r, 0, rc, "%s", err.msg);
        else
            srv_ops_tensor_setup(r);
    }
    return true;
}

/* Body bytes after any Content-Encoding: counted against the limit, then stored. */
static void consume(srv_req *r, const char *data, size_t n)
{
    srv *s = r->s;
    r->body_decoded += n;
    if (r->body_decoded > s->limits.max_body) {
        fail_later(r, 413, 0, "body is over the limit of %llu bytes (--max-body-bytes)%s",
                   (unsigned long long)s->limits.max_body, r->zin ? " after inflating" : "");
        return;
    }
    if (r->tensor_ready) {
        srv_ops_tensor_feed(r, data, n);
        return;
    }
    if (r->v2_direct) {
        if (n > r->content_length - r->got) { /* libmicrohttpd enforces Content-Length */
            fail_later(r, 400, 0, "body is longer than its Content-Length");
            return;
        }
        memcpy(r->tbase + SRV_TENSOR_OFF + r->got, data, n);
        r->got += n;
        return;
    }
    if (proto_buf_append(&r->text, data, n)) {
        fail_later(r, 503, 0, "out of memory receiving the body");
        return;
    }
    if (r->fmt != SRV_FMT_NPY)
        return;
    size_t off = 0;
    qdq_error err = { 0 };
    int rc = proto_npy_header_parse((const uint8_t *)r->text.data, r->text.len,
                                    r->have_length ? r->content_length : UINT64_MAX,
                                    &s->limits, &r->preq, &off, &err);
    if (rc == PROTO_EAGAIN)
        return;
    if (rc) {
        fail_later(r, 0, rc, "%s", err.msg);
        return;
    }
    if (srv_ops_tensor_setup(r) == 0)
        srv_ops_tensor_feed(r, r->text.data + off, r->text.len - off);
    proto_buf_free(&r->text);
}

/* A body chunk as it came over the wire. */
static void receive(srv_req *r, const char *data, size_t n)
{
    r->bytes_in += n;
    if (r->fail_code || r->fail_http ||
        (r->route->id != SRV_ROUTE_QDQ && r->route->id != SRV_ROUTE_V2_INFER))
        return; /* a failed request's body is read and dropped, keeping the connection */
    if (r->zin)
        srv_inflate_feed(r, data, n, consume);
    else
        consume(r, data, n);
}

/* How many pool items a tensor of this size is split into. */
static int split_items(const srv *s, uint64_t bytes)
{
    uint64_t k = bytes / (256u << 10) + 1;
    return k < (uint64_t)s->cfg->workers ? (int)k : s->cfg->workers;
}

/* The model's metadata (KServe v2): any shape; FP64, FP16 and BF16 are taken too. */
#define V2_MODEL_METADATA                                                                       \
    "{\"name\":\"" PROTO_V2_MODEL_NAME "\",\"versions\":[\"" PROTO_V2_MODEL_VERSION "\"],"       \
    "\"platform\":\"qdq-server\","                                                              \
    "\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[-1]},"                     \
    "{\"name\":\"input_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"                            \
    "{\"name\":\"input_max\",\"datatype\":\"FP32\",\"shape\":[-1]}],"                           \
    "\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":[-1]},"                  \
    "{\"name\":\"input_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"                            \
    "{\"name\":\"input_max\",\"datatype\":\"FP32\",\"shape\":[-1]},"                            \
    "{\"name\":\"output_min\",\"datatype\":\"FP32\",\"shape\":[-1]},"                           \
    "{\"name\":\"output_max\",\"datatype\":\"FP32\",\"shape\":[-1]},"                           \
    "{\"name\":\"scale\",\"datatype\":\"FP32\",\"shape\":[-1]},"                                \
    "{\"name\":\"inverse_scale\",\"datatype\":\"FP32\",\"shape\":[-1]}],"                       \
    "\"parameters\":{\"datatypes\":[\"FP32\",\"FP64\",\"FP16\",\"BF16\"]}}"

/* Prepares a 200 JSON answer with a constant body. */
static void json_answer(srv_req *r, const char *text)
{
    r->status = 200;
    r->ctype = "application/json";
    r->body = strdup(text);
    r->body_len = r->body ? strlen(r->body) : 0;
}

/* The body is complete: compute (inline or on the pool) or answer a recorded failure. */
static enum MHD_Result finish(srv_req *r)
{
    srv *s = r->s;
    r->t_body = srv_now_ns();
    if (r->zin && srv_inflate_end(r) && !r->fail_code && !r->fail_http)
        fail_later(r, 400, 0, "Content-Encoding %s: the compressed body is truncated",
                   r->encoding);
    if (r->fail_code || r->fail_http) {
        srv_req_fail(r, r->fail_http ? r->fail_http : srv_http_status(r->fail_code), "%s",
                     r->fail_msg);
        return srv_req_queue(r);
    }
    switch (r->route->id) {
    case SRV_ROUTE_HEALTHZ:
        r->status = 200;
        r->ctype = "application/json";
        r->body = strdup("{\"status\":\"ok\"}");
        r->body_len = r->body ? strlen(r->body) : 0;
        return srv_req_queue(r);
    case SRV_ROUTE_METRICS: {
        proto_buf b = { 0 };
        if (srv_metrics_write(s, &b)) {
            proto_buf_free(&b);
            srv_req_fail(r, 503, "out of memory writing metrics");
        } else {
            r->status = 200;
            r->ctype = "text/plain; version=0.0.4; charset=utf-8";
            r->body = proto_buf_detach(&b, &r->body_len);
        }
        return srv_req_queue(r);
    }
    case SRV_ROUTE_V2_SERVER:
        json_answer(r, "{\"name\":\"qdq-server\",\"version\":\"" QDQ_SERVER_VERSION "\","
                       "\"extensions\":[\"binary_tensor_data\",\"parameters\"]}");
        return srv_req_queue(r);
    case SRV_ROUTE_V2_LIVE:
        json_answer(r, "{\"live\":true}");
        return srv_req_queue(r);
    case SRV_ROUTE_V2_READY:
        if (atomic_load(&s->draining))
            srv_req_fail(r, 503, "the server is shutting down");
        else
            json_answer(r, "{\"ready\":true}");
        return srv_req_queue(r);
    case SRV_ROUTE_V2_MODEL_READY:
        if (atomic_load(&s->draining))
            srv_req_fail(r, 503, "the server is shutting down");
        else
            json_answer(r, "{\"name\":\"" PROTO_V2_MODEL_NAME "\",\"ready\":true}");
        return srv_req_queue(r);
    case SRV_ROUTE_V2_MODEL:
        json_answer(r, V2_MODEL_METADATA);
        return srv_req_queue(r);
    case SRV_ROUTE_READYZ:
        if (atomic_load(&s->draining)) {
            srv_req_fail(r, 503, "the server is shutting down");
        } else {
            r->status = 200;
            r->ctype = "application/json";
            r->body = strdup("{\"status\":\"ready\"}");
            r->body_len = r->body ? strlen(r->body) : 0;
        }
        return srv_req_queue(r);
    default:
        break;
    }

    bool inline_run;
    if (r->fmt == SRV_FMT_JSON || r->fmt == SRV_FMT_V2) {
        r->job = r->fmt == SRV_FMT_JSON ? SRV_JOB_JSON : SRV_JOB_V2;
        r->items = 1;
        inline_run = (r->v2_direct ? r->got : r->text.len) <= (size_t)s->cfg->small_request_bytes;
    } else {
        if (r->fmt == SRV_FMT_RAW && !r->tensor_ready) { /* no Content-Length: body is in text */
            qdq_error err = { 0 };
            int rc = proto_raw_finish(&r->preq, r->text.len, &s->limits, &err);
            if (rc)
                fail_later(r, 0, rc, "%s", err.msg);
            else if (srv_ops_tensor_setup(r) == 0)
                srv_ops_tensor_feed(r, r->text.data, r->text.len);
            proto_buf_free(&r->text);
        } else if (r->fmt == SRV_FMT_NPY && !r->tensor_ready && !r->fail_code && !r->fail_http) {
            fail_later(r, 400, 0, "the body ends inside the .npy header (%zu bytes received)",
                       r->text.len);
        }
        if (!r->fail_code && !r->fail_http && r->got != r->tlen)
            fail_later(r, 400, 0, "body is shorter than the tensor: %llu bytes of data, the "
                       "shape needs %llu", (unsigned long long)r->got,
                       (unsigned long long)r->tlen);
        if (r->fail_code || r->fail_http)
            return finish(r);
        char *t = r->tbase + SRV_TENSOR_OFF;
        if (!r->preq.attrs.range_given)
            qdq_params_from_acc(&r->plan, r->acc, t, r->params);
        r->job = SRV_JOB_APPLY;
        if (r->preq.attrs.range_given) { /* already applied while receiving */
            r->items = 0;
            inline_run = true;
        } else {
            inline_run = r->tlen <= (uint64_t)s->cfg->small_request_bytes;
            r->items = (inline_run || r->want_json) ? 1 : split_items(s, r->tlen);
        }
    }
    if (inline_run) {
        r->t_compute0 = srv_now_ns();
        for (int i = 0; i < r->items; i++)
            srv_ops_run(r, i);
        r->t_compute1 = srv_now_ns();
        srv_ops_finish(r);
        return srv_req_queue(r);
    }
    /* Up to one job per worker runs; --max-queue more may wait. */
    if (atomic_fetch_add(&s->queued, 1) >= s->cfg->workers + s->cfg->max_queue) {
        atomic_fetch_sub(&s->queued, 1);
        srv_req_fail(r, 503, "the server is overloaded: %d requests are waiting for a worker "
                     "(--max-queue)", s->cfg->max_queue);
        return srv_req_queue(r);
    }
    r->suspended = true;
    srv_guard_mark(r->conn, SRV_GUARD_SUSPEND);
    MHD_suspend_connection(r->conn);
    if (srv_pool_submit(s->pool, r)) {
        atomic_fetch_sub(&s->queued, 1);
        srv_req_fail(r, 503, "out of memory queueing the request");
        r->suspended = false;
        MHD_resume_connection(r->conn);
        r->done_resume_fail = true;
    }
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    srv_req *r = *con_cls;
    (void)version;
    if (!r) {
        r = *con_cls = req_new(cls, conn, url);
        if (!r)
            return MHD_NO; /* out of memory: drop the connection */
        r->started = true;
        begin(r, method);
        return MHD_YES;
    }
    if (r->done) { /* answered early (413): drop the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        receive(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->suspended || r->done_resume_fail) { /* resumed: the pool has prepared the answer */
        srv_guard_mark(conn, SRV_GUARD_RESUME);
        r->suspended = false;
        r->done_resume_fail = false;
        return srv_req_queue(r);
    }
    return finish(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    srv_log("debug", "libmicrohttpd: %s", msg);
}

/* A PEM file's text (malloc), or NULL after logging why. */
static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        srv_log("error", "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    proto_buf b = { 0 };
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        proto_buf_append(&b, chunk, k);
    fclose(f);
    proto_buf_append(&b, "", 1);
    return b.data;
}

int srv_start(srv *s, const cfg *c)
{
    memset(s, 0, sizeof *s);
    s->cfg = c;
    s->limits.max_elements = c->max_elements;
    s->limits.max_rank = c->max_rank;
    s->limits.max_depth = c->max_json_depth;
    s->limits.max_body = c->max_body_bytes;
    s->pool = srv_pool_start(s, c->workers);
    if (!s->pool) {
        srv_log("error", "cannot start the worker pool");
        return -1;
    }
    struct addrinfo hints = { .ai_flags = AI_NUMERICSERV | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM }, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->listen_port);
    int gai = getaddrinfo(c->listen_host, port, &hints, &ai);
    if (gai) {
        srv_log("error", "cannot resolve listen address %s: %s", c->listen_host,
                gai_strerror(gai));
        return -1;
    }
    /* poll, not epoll: with epoll, libmicrohttpd 0.9.75 can miss a client's FIN during an
     * upload and keep the request open until the idle timeout. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) /* dual stack: [::] takes IPv4 clients too */
        flags |= MHD_USE_DUAL_STACK;
    struct MHD_OptionItem opts[24];
    int n = 0;
#define OPT(o, v, p) (opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) })
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s);
    OPT(MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr);
    if (c->http_threads > 1)
        OPT(MHD_OPTION_THREAD_POOL_SIZE, c->http_threads, NULL);
    OPT(MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL);
    OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_connections_per_ip, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout_s, NULL);
    /* Per connection: request headers, the read buffer and the response headers. */
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header_bytes, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, s);
    OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)conn_cb, s);
    OPT(MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL);
    if (c->tls_cert[0]) {
        s->tls_cert = read_pem(c->tls_cert);
        s->tls_key = read_pem(c->tls_key);
        if (!s->tls_cert || !s->tls_key) {
            freeaddrinfo(ai);
            return -1;
        }
        flags |= MHD_USE_TLS;
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    s->daemon = MHD_start_daemon(flags, (uint16_t)c->listen_port, NULL, NULL, handler, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        srv_log("error", "cannot listen on %s:%d", c->listen_host, c->listen_port);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : c->listen_port;
    if (srv_guard_start(c)) {
        srv_log("error", "cannot start the deadline sweeper");
        return -1;
    }
    return 0;
}

/*
 * Connections that completed the handshake but that no thread had accepted when the listener
 * was quiesced: accepted here and handed to libmicrohttpd, so that closing the listener resets
 * none of them (their requests are served like any other while draining).
 */
static int adopt_backlog(srv *s, MHD_socket fd)
{
    int n = 0, fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return 0;
    for (int i = 0; i < 65536; i++) {
        struct sockaddr_storage a;
        socklen_t al = sizeof a;
        int c = accept4(fd, (struct sockaddr *)&a, &al, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* EAGAIN: the backlog is empty */
        }
        /* On failure libmicrohttpd closes the socket itself. */
        if (MHD_add_connection(s->daemon, c, (struct sockaddr *)&a, al) == MHD_YES)
            n++;
    }
    return n;
}

/* Sleeps until the monotonic time t (ns) or for at most step_ns, whichever is first. */
static void sleep_until(uint64_t t, uint64_t step_ns)
{
    uint64_t now = srv_now_ns();
    if (now >= t)
        return;
    uint64_t d = t - now < step_ns ? t - now : step_ns;
    struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
    nanosleep(&ts, NULL);
}

/* Whether nothing is left to serve: no request open, and no request bytes waiting unread. */
static bool drained(const srv *s)
{
    return atomic_load(&s->active) == 0 && atomic_load(&s->queued) == 0 &&
           srv_guard_unread() == 0;
}

/*
 * Graceful stop, in three phases, all within --drain-timeout of the signal:
 *   1. lame duck (--shutdown-grace): readiness is 503 at once, but the listener still accepts
 *      and every request is served (answers carry Connection: close, so clients move to
 *      another replica), as load balancers take the time to notice;
 *   2. the listener stops: libmicrohttpd stops accepting, the connections still in the
 *      kernel's backlog are adopted, then the socket is shut down (new connections are
 *      refused);
 *   3. drain: requests in flight, and requests that arrive on connections already open, are
 *      served, until none is open and no connection has request bytes waiting; idle
 *      keep-alive connections are then closed.
 */
void srv_stop(srv *s)
{
    uint64_t t0 = srv_now_ns();
    uint64_t deadline = t0 + (uint64_t)s->cfg->drain_timeout_s * 1000000000u;
    int grace_s = s->cfg->shutdown_grace_s < s->cfg->drain_timeout_s ? s->cfg->shutdown_grace_s
                                                                      : s->cfg->drain_timeout_s;
    atomic_store(&s->draining, true);
    uint64_t grace_end = t0 + (uint64_t)grace_s * 1000000000u;
    while (srv_now_ns() < grace_end)
        sleep_until(grace_end, 100000000u);

    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    int adopted = 0;
    if (fd != MHD_INVALID_SOCKET) {
        adopted = adopt_backlog(s, fd);
        /* Refuses new connections now; closed only after MHD_stop_daemon, as libmicrohttpd
         * asks (a thread may still hold it). */
        shutdown(fd, SHUT_RDWR);
    }
    srv_log("info", "listener closed %.1f s after the signal (%d connections taken from the "
            "backlog); draining %d requests", (double)(srv_now_ns() - t0) / 1e9, adopted,
            atomic_load(&s->active));

    /* Done when drained() holds twice, 50 ms apart (a request read just then is waited for). */
    while (srv_now_ns() < deadline) {
        if (drained(s)) {
            sleep_until(deadline, 50000000u);
            if (drained(s))
                break;
        }
        sleep_until(deadline, 10000000u);
    }
    if (atomic_load(&s->active) > 0)
        srv_log("warn", "drain timeout: %d requests still open", atomic_load(&s->active));
    /* Work on the pool cannot be abandoned (its connections are suspended): let it finish. */
    while (atomic_load(&s->queued) > 0)
        usleep(1000);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    srv_guard_stop();
    srv_pool_stop(s->pool);
    srv_buf_trim();
    free(s->tls_cert);
    free(s->tls_key);
}
