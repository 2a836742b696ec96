/*
 * libmicrohttpd glue: the daemon, the life of a request, receiving bodies, and the graceful
 * stop. Nothing here knows a wire format: bodies go to a codec (proto/codec.h), answers come
 * from it or from the route table (routes.c).
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers
 * (we set up and answer nothing yet: answering in that first call would close keep-alive
 * connections), once per body chunk, once when the body is complete, and once more after a
 * resume. A failure found while receiving is recorded (the first one wins) and answered when
 * the body is complete, so the connection stays usable; only what must not be read (a body
 * over the limit, an unauthenticated or ambiguous one) is answered at once, closing the
 * connection.
 *
 * A request's life (srv_req, private to this file):
 *   created when the request line arrives        -> route resolved, headers read, codec set up
 *   body chunks                                   -> inflated if encoded, fed to the codec
 *   body complete                                 -> the codec's work runs inline if small,
 *                                                    else the connection is suspended and the
 *                                                    work goes to the pool
 *   pool done                                     -> the answer built, the connection resumed
 *   answer queued; connection done with it        -> access log line, metrics, freed
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "bufcache.h"
#include "clock.h"
#include "encoding.h"
#include "guard.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "record.h"
#include "respond.h"
#include "routes.h"
#include "spool.h"
#include "status.h"

typedef struct srv_req {
    srv *s;
    struct MHD_Connection *conn;
    const srv_route *route;
    char method[16];
    char path[256];
    char request_id[80];
    char accept_encoding[128]; /* the request's Accept-Encoding (JSON answers) */
    uint64_t t_start, t_compute0, t_compute1; /* ns, srv_now_ns */
    uint64_t bytes_in, bytes_out;
    uint64_t body_decoded;     /* body bytes after Content-Encoding */
    bool have_length;
    uint64_t content_length;
    srv_inflate *zin;          /* inflating a gzip/deflate body, or NULL */
    qdq_error err;             /* the first failure, answered when the body is complete */
    proto_xchg *x;             /* the codec's exchange (routes with a body) */
    srv_task task;             /* the codec's work on the pool */
    uint64_t reserved;         /* bytes taken from the memory budget (budget.h) */
    srv_waiter room;           /* waiting for room in the budget, its body not yet read */
    bool waiting, room_ok;
    bool stream_counted;       /* counted in s->streams (a checkpoint) */
    uint64_t progress_at;      /* body bytes at the last move of the deadline */
    int sent_status;           /* the HTTP status queued */
    bool suspended;            /* computing on the pool */
    bool done;                 /* an answer has been queued */
    int spool_fd;              /* the answer's spool file, to keep warm once sent, or -1 */
    bool viewed, closing;      /* answered from a view of the server, draining in it */
    srv_answer ans;            /* the answer being prepared */
} srv_req;

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

/* A request's state, created at the first access-handler call: libmicrohttpd promises the
 * completion callback (which frees it) only for requests the handler has seen. */
static srv_req *req_new(srv *s, struct MHD_Connection *conn, const char *url)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = s;
    r->conn = conn;
    r->t_start = srv_now_ns();
    r->spool_fd = -1;
    snprintf(r->path, sizeof r->path, "%s", url);
    atomic_fetch_add(&s->active, 1);
    return r;
}

static void req_free(srv_req *r)
{
    srv_answer_clear(&r->ans);
    if (r->spool_fd >= 0)
        close(r->spool_fd);
    /* The reservation first, then the buffers (warm in the cache when the answer went out and
     * the budget has room): never counted twice. */
    if (r->reserved)
        srv_budget_give(r->reserved);
    proto_xchg_free(r->x, r->sent_status == 200);
    srv_inflate_free(r->zin);
    if (r->stream_counted)
        atomic_fetch_sub(&r->s->streams, 1);
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
    int status = r->sent_status;
    if (!r->done)
        status = proto_status_http(PROTO_ECLOSED); /* the client went away before an answer */
    else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !status)
        status = proto_status_http(PROTO_ECLOSED);
    srv_record rec = {
        .method = r->method, .path = r->path, .request_id = r->request_id,
        .route = r->route ? (int)r->route->id : SRV_ROUTE_NONE,
        .route_name = r->route ? r->route->name : "-",
        .format = (int)proto_xchg_format(r->x), .status = status,
        .bytes_in = r->bytes_in, .bytes_out = r->bytes_out, .t_start = r->t_start,
        .t_queued = r->task.t_queued, .t_compute0 = r->t_compute0,
        .t_compute1 = r->t_compute1, .t_end = srv_now_ns(),
    };
    if (status == 200)
        rec.elements = proto_xchg_elements(r->x, &rec.dtype);
    if (status == 200 && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->spool_fd >= 0) {
        srv_spool_keep(r->spool_fd); /* sent whole: warm for the next checkpoint */
        r->spool_fd = -1;
    }
    rec.checkpoint = r->stream_counted;
    proto_xchg_counts(r->x, &rec.tensors, &rec.tensor_bytes);
    srv_log_access(&rec);
    srv_metrics_record(&rec);
    atomic_fetch_add(&s->served, 1);
    req_free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->active, 1);
}

/* How long a request may wait for room in the memory budget: the request deadline, at most
 * 30 s (a client should rather try another replica). */
static int room_wait_s(const srv *s)
{
    return s->cfg->request_timeout_s < 30 ? s->cfg->request_timeout_s : 30;
}

/* Records a failure (the first one is the one answered). */
static void fail(srv_req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(srv_req *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    qdq_vfail(&r->err, code, fmt, ap);
    va_end(ap);
}

/* Queues the prepared answer; while draining, with Connection: close (for an answer made from
 * a view of the server, as that view read it: a /readyz of 200 keeps the connection, its 503
 * closes it). */
static enum MHD_Result queue(srv_req *r)
{
    srv_send how = { r->request_id, r->accept_encoding,
                     r->viewed ? r->closing : atomic_load(&r->s->draining) };
    r->sent_status = r->ans.status;
    /* A large answer from a file may take its time: a MiB a second is still progress. */
    if (r->ans.a.from_file) {
        srv_guard_progress(r->conn, r->ans.a.file_len / (1u << 20) * 1000000000ull);
        r->spool_fd = dup(r->ans.a.fd); /* the response closes its own */
    }
    enum MHD_Result ok = srv_answer_queue(r->conn, &r->ans, &how, &r->bytes_out);
    r->done = true;
    return ok;
}

/* Answers the recorded failure now. */
static enum MHD_Result answer_failure(srv_req *r)
{
    srv_answer_error(&r->ans, &r->err, r->route ? r->route->allow : NULL);
    if (r->err.code == PROTO_EAUTH)
        proto_answer_header(&r->ans.a, "WWW-Authenticate", "Bearer realm=\"qdq-server\"", 26);
    return queue(r);
}

/* The request's headers and query, for the codec (proto_args). */
static const char *args_header(void *cls, const char *name)
{
    srv_req *r = cls;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct query_ctx {
    int (*fn)(void *ctx, const char *key, const char *value);
    void *ctx;
    int rc;
} query_ctx;

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    query_ctx *q = cls;
    (void)kind;
    q->rc = q->fn(q->ctx, key, value);
    return q->rc ? MHD_NO : MHD_YES;
}

static int args_query(void *cls, int (*fn)(void *ctx, const char *key, const char *value),
                      void *ctx)
{
    srv_req *r = cls;
    if (!fn)
        return MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, NULL, NULL);
    query_ctx q = { fn, ctx, 0 };
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_one, &q);
    return q.rc;
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

/* The budget found room for a waiting request (ok), or its wait ran out: let it go on. */
static void room_ready(srv_waiter *w, bool ok)
{
    srv_req *r = (srv_req *)((char *)w - offsetof(srv_req, room));
    r->room_ok = ok;
    if (ok)
        r->reserved += w->need;
    srv_guard_mark(r->conn, SRV_GUARD_RESUME);
    MHD_resume_connection(r->conn);
}

/*
 * Takes the memory a body of `body` bytes needs from the budget. A request too large for the
 * whole budget is refused (413); one that does not fit now waits, suspended and its body unread,
 * until room is given back or its wait runs out (then 503). Returns false when answered.
 */
static bool reserve(srv_req *r, uint64_t body)
{
    uint64_t need = proto_xchg_memory(r->x, body), limit = srv_budget_limit();
    if (limit && need > limit) {
        fail(r, PROTO_ETOOBIG, "the request needs %llu bytes of memory, more than the server's "
             "memory budget of %llu bytes (--max-memory)", (unsigned long long)need,
             (unsigned long long)limit);
        answer_failure(r);
        return false;
    }
    if (srv_budget_take(need)) {
        r->reserved += need;
        return true;
    }
    r->waiting = true;
    r->room.need = need;
    r->room.ready = room_ready;
    srv_guard_mark(r->conn, SRV_GUARD_SUSPEND);
    MHD_suspend_connection(r->conn);
    srv_budget_wait(&r->room);
    return true;
}

/* A body of unknown length: its share of the budget grows with it (doubling, to take it
 * seldom). 0, or a failure recorded (503) when it outgrows the room there is. */
static int grow_reservation(srv_req *r, uint64_t body)
{
    uint64_t need = proto_xchg_memory(r->x, body);
    if (need <= r->reserved)
        return 0;
    uint64_t more = proto_xchg_memory(r->x, 2 * body) - r->reserved;
    if (!srv_budget_take(more)) {
        more = need - r->reserved;
        if (!srv_budget_take(more))
            return qdq_fail(&r->err, PROTO_EBUSY, "the body outgrew the room left in the "
                            "server's memory budget of %llu bytes (--max-memory): %llu bytes "
                            "needed", (unsigned long long)srv_budget_limit(),
                            (unsigned long long)need);
    }
    r->reserved += more;
    return 0;
}

/* The first call: route, method, headers, and the codec. Returns false when answered. */
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
    bool open = r->route->flags & SRV_ROUTE_OPEN;
    if (s->cfg->auth_token[0] && !open &&
        !srv_guard_token_ok(s->cfg->auth_token,
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"))) {
        /* Answered at once: an unauthenticated body is not read (the connection closes). */
        fail(r, PROTO_EAUTH, "missing or wrong bearer token (Authorization: Bearer <token>)");
        answer_failure(r);
        return false;
    }
    if (atomic_load(&s->active) > s->cfg->max_inflight && !open) {
        fail(r, PROTO_EBUSY, "the server is overloaded: more than %d requests in flight "
             "(--max-inflight)", s->cfg->max_inflight);
        answer_failure(r);
        return false;
    }
    if (!srv_route_allows(r->route, method)) {
        fail(r, PROTO_EMETHOD, "method %s is not allowed on %s (allowed: %s)", r->method,
             r->path, r->route->allow);
        /* A client waiting for 100 Continue (curl -T FILE without -X POST is a PUT) is answered
         * before it sends its body (the connection closes); any other body is read and dropped,
         * keeping the connection. */
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        if (expect && strcasecmp(expect, "100-continue") == 0) {
            answer_failure(r);
            return false;
        }
        return true;
    }
    /* While draining (srv_stop), requests are still served: whatever a client sent before the
     * signal, or during the grace, is answered, with Connection: close. */
    if (!(r->route->flags & SRV_ROUTE_BODY))
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
        fail(r, QDQ_EINVAL, "ambiguous message framing: %s", n_cl >= 100 ? "a header name "
             "with white space or a near miss of Content-Length/Transfer-Encoding"
             : n_cl > 1 ? "several Content-Length headers" : n_te > 1 ? "several Transfer-Encoding headers"
             : n_cl && n_te ? "both Content-Length and Transfer-Encoding"
                            : "Transfer-Encoding other than chunked");
        answer_failure(r);
        return false;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        if (!proto_parse_length(cl, &r->content_length)) {
            fail(r, QDQ_EINVAL, "Content-Length is not a number: '%.40s'", cl);
            return true;
        }
        r->have_length = true;
    }
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0) {
        int rc;
        r->zin = srv_inflate_new(ce, &rc);
        if (rc == -1) {
            fail(r, PROTO_EMEDIA, "Content-Encoding '%.40s' is not supported: use gzip or "
                 "deflate", ce);
            return true;
        }
        if (rc == -2) {
            fail(r, PROTO_ENOMEM, "out of memory starting to inflate the body");
            return true;
        }
    }
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    if (ae)
        snprintf(r->accept_encoding, sizeof r->accept_encoding, "%s", ae);
    /* Content-Length counts compressed bytes when there is an encoding. */
    proto_args a = { r->have_length && !r->zin ? r->content_length : PROTO_LENGTH_UNKNOWN,
                     args_header, args_query, r };
    bool streams = proto_args_stream(r->route->kind, &a);
    uint64_t limit = streams ? s->host.max_stream : s->host.lim.max_body;
    if (r->have_length && r->content_length > limit) {
        fail(r, PROTO_ETOOBIG, "body of %llu bytes is over the limit of %llu bytes (%s)",
             (unsigned long long)r->content_length, (unsigned long long)limit,
             streams ? "--max-checkpoint-bytes" : "--max-body-bytes");
        answer_failure(r);
        return false;
    }
    if (streams) { /* a checkpoint: --max-checkpoint-inflight at once */
        if (atomic_fetch_add(&s->streams, 1) >= s->cfg->max_checkpoint_inflight) {
            atomic_fetch_sub(&s->streams, 1);
            fail(r, PROTO_EBUSY, "the server is processing %d checkpoints already "
                 "(--max-checkpoint-inflight)", s->cfg->max_checkpoint_inflight);
            answer_failure(r);
            return false;
        }
        r->stream_counted = true;
    }
    r->x = proto_xchg_new(r->route->kind, &a, &s->host, &r->err);
    if (r->err.code == PROTO_ESPACE) { /* the spool cannot hold it: refused unread */
        answer_failure(r);
        return false;
    }
    if (r->x && !r->err.code && a.length != PROTO_LENGTH_UNKNOWN)
        return reserve(r, a.length);
    return true;
}

/* Body bytes after any Content-Encoding: counted against the limit, then fed to the codec. */
static int consume(void *cls, const char *data, size_t n)
{
    srv_req *r = cls;
    uint64_t limit = proto_xchg_body_limit(r->x);
    r->body_decoded += n;
    if (r->body_decoded > limit)
        fail(r, PROTO_ETOOBIG, "body is over the limit of %llu bytes (%s)%s",
             (unsigned long long)limit,
             r->stream_counted ? "--max-checkpoint-bytes" : "--max-body-bytes",
             r->zin ? " after inflating" : "");
    else if (!r->have_length || r->zin || r->stream_counted
                 ? grow_reservation(r, r->body_decoded) == 0 : true)
        proto_xchg_feed(r->x, data, n, &r->err);
    /* A checkpoint that keeps arriving, a MiB at a time, is not cut by the deadline. */
    if (r->stream_counted && r->body_decoded - r->progress_at >= (1u << 20)) {
        r->progress_at = r->body_decoded;
        srv_guard_progress(r->conn, 0);
    }
    return r->err.code;
}

/* A body chunk as it came over the wire. */
static void receive(srv_req *r, const char *data, size_t n)
{
    r->bytes_in += n;
    if (r->err.code || !r->x)
        return; /* a failed request's body is read and dropped, keeping the connection */
    if (r->zin)
        srv_inflate_feed(r->zin, data, n, consume, r, &r->err);
    else
        consume(r, data, n);
}

/* The view of the server that routes' answers may use. */
static srv_view view_of(const srv *s)
{
    srv_view v = { atomic_load(&s->draining),
                   { atomic_load(&s->active), srv_pool_pending(s->pool), srv_log_dropped(),
                     srv_budget_limit(), srv_budget_held(), srv_budget_waiting(),
                     atomic_load(&s->streams), srv_spool_bytes() } };
    return v;
}

/* The codec's answer (or the failure) into r->ans. */
static void prepare_answer(srv_req *r)
{
    srv_answer_clear(&r->ans);
    if (!r->err.code && proto_xchg_answer(r->x, &r->ans.a, &r->err) == 0) {
        r->ans.status = 200;
        return;
    }
    srv_answer_error(&r->ans, &r->err, r->route->allow);
}

static void task_run(srv_task *t, int item)
{
    srv_req *r = (srv_req *)((char *)t - offsetof(srv_req, task));
    if (item == 0)
        r->t_compute0 = t->t_started;
    proto_xchg_run(r->x, item, t->items, &r->err);
}

/* On the pool's loop thread, after the last item: the answer, and the connection resumed. */
static void task_done(srv_task *t)
{
    srv_req *r = (srv_req *)((char *)t - offsetof(srv_req, task));
    r->t_compute1 = srv_now_ns();
    prepare_answer(r);
    atomic_fetch_sub(&r->s->queued, 1);
    MHD_resume_connection(r->conn);
}

/* The body is complete: answer, compute inline, or send the work to the pool. */
static enum MHD_Result finish(srv_req *r)
{
    srv *s = r->s;
    if (r->zin && !srv_inflate_complete(r->zin))
        fail(r, QDQ_EINVAL, "Content-Encoding %s: the compressed body is truncated",
             srv_inflate_name(r->zin));
    if (r->err.code)
        return answer_failure(r);
    if (!(r->route->flags & SRV_ROUTE_BODY)) {
        srv_view v = view_of(s);
        r->route->answer(&v, r->method, r->path, &r->ans);
        r->viewed = true;
        r->closing = v.draining;
        return queue(r);
    }
    proto_work w;
    if (proto_xchg_end(r->x, &w, &r->err))
        return answer_failure(r);
    int n = w.items < s->cfg->workers ? w.items : s->cfg->workers;
    if (n == 0 || w.bytes <= (uint64_t)s->cfg->small_request_bytes) {
        r->t_compute0 = srv_now_ns();
        for (int i = 0; i < (n ? 1 : 0); i++)
            proto_xchg_run(r->x, i, 1, &r->err);
        r->t_compute1 = srv_now_ns();
        prepare_answer(r);
        return queue(r);
    }
    /* Up to one task per worker runs; --max-queue more may wait (gRPC's tasks too). */
    int most = s->cfg->workers + s->cfg->max_queue;
    if (atomic_fetch_add(&s->queued, 1) >= most || srv_pool_pending(s->pool) >= most) {
        atomic_fetch_sub(&s->queued, 1);
        fail(r, PROTO_EBUSY, "the server is overloaded: %d requests are waiting for a worker "
             "(--max-queue)", s->cfg->max_queue);
        return answer_failure(r);
    }
    r->task.items = n;
    r->task.run = task_run;
    r->task.done = task_done;
    r->suspended = true;
    srv_guard_mark(r->conn, SRV_GUARD_SUSPEND);
    MHD_suspend_connection(r->conn);
    if (srv_pool_submit(s->pool, &r->task)) {
        atomic_fetch_sub(&s->queued, 1);
        fail(r, PROTO_ENOMEM, "out of memory queueing the request");
        srv_answer_error(&r->ans, &r->err, NULL);
        MHD_resume_connection(r->conn);
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
        begin(r, method);
        return MHD_YES;
    }
    if (r->waiting) { /* resumed: the budget had room, or the wait ran out */
        r->waiting = false;
        if (!r->room_ok) {
            fail(r, PROTO_EBUSY, "the server's memory budget (--max-memory %llu bytes) had no "
                 "room for this request's %llu bytes within %d s", (unsigned long long)
                 srv_budget_limit(), (unsigned long long)r->room.need, room_wait_s(r->s));
            return answer_failure(r);
        }
        if (!*upload_data_size)
            return MHD_YES; /* the call after a resume: the body comes next */
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
    if (r->suspended) { /* resumed: the answer is prepared */
        srv_guard_mark(conn, SRV_GUARD_RESUME);
        r->suspended = false;
        return queue(r);
    }
    return finish(r);
}

/* The codecs' buffers: the warm-buffer cache. */
static void *host_buf_get(void *cls, size_t size, size_t *cap)
{
    (void)cls;
    return srv_buf_get(size, cap);
}

static void host_buf_put(void *cls, void *p, size_t cap, bool keep)
{
    (void)cls;
    if (keep && srv_budget_cache_fits(cap))
        srv_buf_put(p, cap);
    else
        free(p);
}

/* Checkpoints' answers wait in spool files (spool.h). */
static int spool_open(void *cls, uint64_t bytes, qdq_error *err)
{
    (void)cls;
    return srv_spool_open(bytes, err);
}

static void spool_account(void *cls, int64_t delta)
{
    (void)cls;
    srv_spool_account(delta);
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
    s->host.lim.max_elements = c->max_elements;
    s->host.lim.max_rank = c->max_rank;
    s->host.lim.max_depth = c->max_json_depth;
    s->host.lim.max_body = c->max_body_bytes;
    s->host.max_header_bytes = c->max_header_bytes;
    s->host.buf_get = host_buf_get;
    s->host.buf_put = host_buf_put;
    s->host.max_stream = c->max_checkpoint_bytes;
    s->host.spool_open = spool_open;
    s->host.spool_account = spool_account;
    s->host.cls = s;
    srv_metrics_init(srv_route_names(), SRV_ROUTES);
    srv_budget_init(c->max_memory, 1000 * room_wait_s(s));
    srv_spool_init(c->spool_dir, c->spool_keep_ms ? c->max_checkpoint_inflight : 0);
    s->pool = srv_pool_start(c->workers);
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
    /* Requests still waiting for room are let go (503): libmicrohttpd must not stop with a
     * connection suspended. Work on the pool cannot be abandoned: let it finish. */
    srv_budget_release_all();
    while (atomic_load(&s->queued) > 0)
        usleep(1000);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    srv_guard_stop();
    srv_buf_trim();
    srv_spool_idle(0);
    free(s->tls_cert);
    free(s->tls_key);
}
