/*
 * The gRPC transport (grpc.h) on gRPC's C core: one completion queue, a few threads waiting
 * on it, and the registered-method API, which hands over each call with its request message
 * already received.
 *
 * A call's life. A gcall is posted (grpc_server_request_registered_call) for a method before any
 * client calls it; when the core matches a client's call to it (as soon as its headers arrive),
 * a thread takes the "new" event, posts a replacement, checks the bearer token and the
 * in-flight limit (a refused call's message is never read, as HTTP refuses such bodies unread),
 * and starts receiving the request message ("recv"). Calls are taken at their headers, not once
 * their message is in, so that a call still uploading when the server stops is the server's
 * own and is drained (the core's shutdown ends calls nobody has taken). When the message is in:
 *   for a big ModelInfer, starts a RECV_CLOSE_ON_SERVER batch at once ("close": completes
 *     when the call ends, so that the work can stop when the client cancels or its deadline
 *     passes);
 *   answers: ModelInfer through infer_compute (gather the message, decode, run, encode), the
 *     others from constants;
 *   starts the reply batch ("send": initial metadata, the message when OK, the status, and
 *     RECV_CLOSE_ON_SERVER when close was not started on its own).
 * A ModelInfer message larger than --inline-bytes is not computed on the completion queue's
 * thread: it becomes a task on the worker pool (pool.h, shared with HTTP), whose worker runs
 * infer_compute and starts the reply batch; the task's done (on the pool's loop thread) drops
 * the handler's reference. The thread that took the call goes back to the queue at once.
 * References keep the gcall: the handler's (passed on to recv, then to the task when there is
 * one), close's (when started) and send's;
 * the last one dropped logs the call, counts it (metrics.h) and frees everything.
 *
 * Copies of a ModelInfer tensor: the core's slices are gathered once into a warm buffer (as HTTP
 * copies its body into one), the op runs in place there, and the reply's byte buffer refers to
 * the output where it lies (a slice whose destroy gives the buffer back).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bufcache.h"
#include "clock.h"
#include "guard.h"
#include "log.h"
#include "grpc.h"
#include "metrics.h"
#include "record.h"
#include "unsent.h"
#include "v2_grpc.h"
#include "codec.h"

#define MAX_THREADS 16
#define SLOTS_INFER 64   /* ModelInfer calls posted ahead; each new call posts its replacement */
#define SLOTS_OTHER 4    /* the same for each other method */
#define SLOTS_STOP 1024  /* posted at stop, so that no call that has arrived waits unmatched */
/* ModelInfer messages from this size on are watched for the client's going away while they are
 * worked on (a close batch of their own); smaller calls learn it with the reply, saving an
 * event per call. */
#define WATCH_BYTES (64 << 10)

typedef struct gcall gcall;

/* A completion-queue tag: what to do when the operation completes. */
typedef struct gtag {
    void (*done)(gcall *c, bool ok);
    gcall *c;
} gtag;

enum { WORK_NONE, WORK_DONE, WORK_SKIPPED };

struct gcall {
    int rpc;                   /* SRV_GRPC_* */
    gtag t_new, t_recv, t_close, t_send;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* SRV_GRPC_OTHER only */
    grpc_byte_buffer *payload; /* the request message (registered methods) */
    atomic_int refs;
    atomic_bool closed;        /* close completed: the call is over for the client */
    bool watched;              /* close was started on arrival (else it goes with the reply) */
    bool status_later;         /* stopping: the status goes once the message has left (reply) */
    bool sending;              /* counted in G.sending: message and status in one batch */
    int cancelled;             /* close's result: cancelled, deadline passed, or network failure */
    uint64_t t_start, t_compute0, t_compute1; /* srv_now_ns; compute: ModelInfer's work */
    uint64_t bytes_in, bytes_out;
    int work;                  /* WORK_*: what became of ModelInfer's work */
    srv_task task;             /* ModelInfer's work on the pool (large messages) */

    /* The answer. */
    int code;                  /* 0, or a status code (qdq/proto): grpc status and message */
    int grpc_status;           /* the status sent */
    char msg[512];
    grpc_byte_buffer *reply;   /* the response message when code is 0 */
    grpc_slice status_slice;
    bool have_status_slice;

    /* ModelInfer. */
    char *base;                /* the request message's buffer (bufcache), owned until replied */
    size_t cap;
    proto_v2_request v2;
    proto_result res;
};

static const struct {
    const char *path;
    const char *name;
    bool open; /* answered without the bearer token, as HTTP's health routes */
} methods[SRV_GRPC_RPCS] = {
    [SRV_GRPC_SERVER_LIVE] = { "/inference.GRPCInferenceService/ServerLive", "ServerLive", true },
    [SRV_GRPC_SERVER_READY] = { "/inference.GRPCInferenceService/ServerReady", "ServerReady",
                                true },
    [SRV_GRPC_MODEL_READY] = { "/inference.GRPCInferenceService/ModelReady", "ModelReady",
                               false },
    [SRV_GRPC_SERVER_METADATA] = { "/inference.GRPCInferenceService/ServerMetadata",
                                   "ServerMetadata", false },
    [SRV_GRPC_MODEL_METADATA] = { "/inference.GRPCInferenceService/ModelMetadata",
                                  "ModelMetadata", false },
    [SRV_GRPC_MODEL_INFER] = { "/inference.GRPCInferenceService/ModelInfer", "ModelInfer",
                               false },
    [SRV_GRPC_HEALTH_CHECK] = { "/grpc.health.v1.Health/Check", "Check", true },
    [SRV_GRPC_OTHER] = { NULL, "other", false },
};

static struct {
    const cfg *cfg;
    proto_limits limits;
    srv_pool *pool;
    grpc_server *server;
    grpc_completion_queue *cq;
    void *rm[SRV_GRPC_RPCS];  /* registered methods */
    pthread_t threads[MAX_THREADS];
    int nthreads;
    int port;
    atomic_bool draining, stopping;
    atomic_int sending; /* replies whose message and status went in one batch, not yet sent */
    uint64_t stop_deadline; /* srv_grpc_stop's, set before stopping */
    atomic_bool shutdown_done;
    gtag shutdown_tag;
    atomic_int inflight;      /* calls taken and not yet freed */
} G;

const char *srv_grpc_rpc_name(int rpc)
{
    return rpc >= 0 && rpc < SRV_GRPC_RPCS ? methods[rpc].name : "other";
}

int srv_grpc_port(void) { return G.port; }

void srv_grpc_drain(void) { atomic_store(&G.draining, true); }

/* ---- logs ---- */

/* gRPC's own log lines, into the server's log. */
static void core_log(gpr_log_func_args *a)
{
    srv_log(a->severity == GPR_LOG_SEVERITY_ERROR  ? "error"
            : a->severity == GPR_LOG_SEVERITY_INFO ? "info"
                                                   : "debug",
            "grpc: %s", a->message);
}

/* One access-log line per call, as HTTP's (log.c): method GRPC, the gRPC status number. */
static void log_access(const gcall *c, const char *path)
{
    if (!G.cfg->access_log)
        return;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);
    double ms = (double)(srv_now_ns() - c->t_start) / 1e6;
    const char *work = c->work == WORK_DONE ? "done" : c->work == WORK_SKIPPED ? "skipped" : "";
    char safe[256];
    size_t n = 0;
    for (const char *p = path; *p && n + 1 < sizeof safe; p++) /* a client's bytes: printable */
        safe[n++] = *p > ' ' && *p < 0x7f && *p != '"' && *p != '\\' ? *p : '?';
    safe[n] = '\0';
    flockfile(stdout);
    if (strcmp(G.cfg->log_format, "json") == 0)
        fprintf(stdout, "{\"time\":\"%s\",\"method\":\"GRPC\",\"path\":\"%s\",\"route\":\"grpc_%s\","
                "\"grpc_status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f%s%s%s}\n",
                ts, safe, methods[c->rpc].name, c->grpc_status, (unsigned long long)c->bytes_in,
                (unsigned long long)c->bytes_out, ms, *work ? ",\"work\":\"" : "", work,
                *work ? "\"" : "");
    else
        fprintf(stdout, "%s GRPC %s grpc_%s %d in=%llu out=%llu %.3fms%s%s\n", ts, safe,
                methods[c->rpc].name, c->grpc_status, (unsigned long long)c->bytes_in,
                (unsigned long long)c->bytes_out, ms, *work ? " work=" : "", work);
    fflush(stdout);
    funlockfile(stdout);
}

/* ---- a call's memory ---- */

static void on_new(gcall *c, bool ok);
static void on_recv(gcall *c, bool ok);
static void on_close(gcall *c, bool ok);
static void on_send(gcall *c, bool ok);

static gcall *gcall_new(int rpc)
{
    gcall *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->rpc = rpc;
    c->t_new = (gtag){ on_new, c };
    c->t_recv = (gtag){ on_recv, c };
    c->t_close = (gtag){ on_close, c };
    c->t_send = (gtag){ on_send, c };
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    proto_v2_request_init(&c->v2);
    return c;
}

static void gcall_free(gcall *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    if (c->have_status_slice)
        grpc_slice_unref(c->status_slice);
    proto_v2_request_clear(&c->v2);
    proto_result_clear(&c->res);
    if (c->base) {
        if (c->code == 0)
            srv_buf_put(c->base, c->cap);
        else
            free(c->base); /* only answered requests keep buffers warm, as on HTTP */
    }
    free(c);
}

/* Drops a reference; the last one logs and counts the call, and frees it. */
static void gcall_unref(gcall *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->cancelled && c->grpc_status == 0) /* the answer never reached the client */
        c->grpc_status = gpr_time_cmp(gpr_now(c->deadline.clock_type), c->deadline) >= 0
                             ? GRPC_STATUS_DEADLINE_EXCEEDED
                             : proto_status_grpc(PROTO_ECLOSED);
    int code = c->grpc_status >= 0 && c->grpc_status < SRV_GRPC_CODES ? c->grpc_status : 2;
    srv_record rec = {
        .protocol = SRV_PROTO_GRPC, .route = c->rpc, .route_name = methods[c->rpc].name,
        .status = code, .bytes_in = c->bytes_in, .bytes_out = c->bytes_out,
        .t_start = c->t_start, .t_queued = c->task.t_queued, .t_compute0 = c->t_compute0,
        .t_compute1 = c->t_compute1, .t_end = srv_now_ns(),
    };
    if (code == GRPC_STATUS_OK && c->work == WORK_DONE) {
        rec.elements = c->v2.req.count;
        rec.dtype = c->v2.req.dtype;
    }
    srv_metrics_record(&rec);
    char path[256];
    if (c->rpc == SRV_GRPC_OTHER)
        snprintf(path, sizeof path, "%.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
    log_access(c, c->rpc == SRV_GRPC_OTHER ? path : methods[c->rpc].path);
    gcall_free(c);
    atomic_fetch_sub(&G.inflight, 1);
}

/* Posts a gcall for the next call of rpc. 0, or -1 (out of memory, or the server stopping). */
static int post(int rpc)
{
    gcall *c = gcall_new(rpc);
    if (!c)
        return -1;
    grpc_call_error e;
    if (rpc == SRV_GRPC_OTHER)
        e = grpc_server_request_call(G.server, &c->call, &c->details, &c->md, G.cq, G.cq,
                                     &c->t_new);
    else
        e = grpc_server_request_registered_call(G.server, G.rm[rpc], &c->call, &c->deadline,
                                                &c->md, NULL, G.cq, G.cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        srv_log("error", "grpc: cannot wait for %s calls: %s", methods[rpc].name,
                grpc_call_error_to_string(e));
        gcall_free(c);
        return -1;
    }
    return 0;
}

/* ---- answering ---- */

/* Records a failure to answer with (the first one wins). */
static void fail(gcall *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(gcall *c, int code, const char *fmt, ...)
{
    if (c->code)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    c->code = code;
}

static void fail_err(gcall *c, const qdq_error *err)
{
    fail(c, err->code ? err->code : PROTO_EINTERNAL, "%s", err->msg);
}

/* A reply message from a proto_buf (taken). */
static void reply_buf(gcall *c, proto_buf *b)
{
    size_t n;
    char *p = proto_buf_detach(b, &n);
    grpc_slice s = p ? grpc_slice_new(p, n, free) : grpc_empty_slice();
    c->reply = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    c->bytes_out = n;
}

/* Adds the status (and, unless the call is watched, close) to a batch of ops; the new count. */
static size_t status_ops(gcall *c, grpc_op *ops, size_t n)
{
    if (!c->watched) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }
    c->grpc_status = c->code ? proto_status_grpc(c->code) : GRPC_STATUS_OK;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)c->grpc_status;
    if (c->code) {
        c->status_slice = grpc_slice_from_copied_string(c->msg);
        c->have_status_slice = true;
        ops[n].data.send_status_from_server.status_details = &c->status_slice;
    }
    return n + 1;
}

/* Starts a batch of the call's ops whose completion is on_send. */
static void start_send(gcall *c, const grpc_op *ops, size_t n)
{
    atomic_fetch_add(&c->refs, 1);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL);
    if (e != GRPC_CALL_OK) {
        srv_log("error", "grpc: cannot answer a %s call: %s", methods[c->rpc].name,
                grpc_call_error_to_string(e));
        grpc_call_cancel(c->call, NULL);
        atomic_fetch_sub(&c->refs, 1);
    }
}

/* Waits until the gRPC port's sockets have sent what they hold (unsent.h): 2 s at most, and
 * never past srv_grpc_stop's deadline. */
static void wait_port_sent(void)
{
    int port = G.port;
    uint64_t now = srv_now_ns(), most = now + 2000000000u;
    if (now < G.stop_deadline)
        srv_wait_unsent(&port, 1, G.stop_deadline < most ? G.stop_deadline : most);
}

/*
 * Starts the reply: the message when the call succeeded, and the status. Once the server is
 * stopping, the status waits for the message to leave (on_send): the core closes a connection as
 * soon as its last call has ended after the GOAWAY, and a connection closed with the client's
 * frames unread (its window updates, its pings) is reset, which drops the answer's bytes still
 * in the send queue: the client would see UNAVAILABLE for an answered call.
 */
static void reply(gcall *c)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (c->code == 0 && c->reply) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
        atomic_fetch_add(&G.sending, 1); /* before stopping is read: see srv_grpc_stop */
        c->status_later = atomic_load(&G.stopping);
        if (c->status_later)
            atomic_fetch_sub(&G.sending, 1);
        else
            c->sending = true;
    }
    if (!c->status_later)
        n = status_ops(c, ops, n);
    start_send(c, ops, n);
}

/* Whether the client is gone: cancelled, or its deadline passed. */
static bool gone(gcall *c)
{
    return atomic_load(&c->closed) ||
           gpr_time_cmp(gpr_now(c->deadline.clock_type), c->deadline) >= 0;
}

static void put_back(void *held)
{
    char **h = held; /* { base, cap } */
    srv_buf_put(h[0], (size_t)(uintptr_t)h[1]);
    free(held);
}

/*
 * Gathers the request message (the core's slices) into c->base, placed so that the input
 * tensor's bytes start 8-aligned (proto_v2_grpc_input_skew). Returns the message, *len its
 * length; NULL with the failure recorded.
 */
static char *gather(gcall *c, size_t *len)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, c->payload)) {
        fail(c, QDQ_EINVAL, "the request message cannot be decompressed");
        return NULL;
    }
    size_t total = grpc_byte_buffer_length(rd.buffer_out), pad = 0, got = 0;
    grpc_slice *s;
    bool first = true;
    while (grpc_byte_buffer_reader_peek(&rd, &s)) {
        size_t n = GRPC_SLICE_LENGTH(*s);
        if (first) {
            first = false;
            pad = (8 - proto_v2_grpc_input_skew((const char *)GRPC_SLICE_START_PTR(*s), n)) % 8;
            c->base = srv_buf_get(pad + total + 1, &c->cap);
            if (!c->base) {
                fail(c, PROTO_ENOMEM, "out of memory for a %zu-byte request", total);
                break;
            }
        }
        if (n > total - got) { /* cannot happen: the length is the slices' sum */
            fail(c, PROTO_EINTERNAL, "the request message is longer than its length");
            break;
        }
        memcpy(c->base + pad + got, GRPC_SLICE_START_PTR(*s), n);
        got += n;
    }
    grpc_byte_buffer_reader_destroy(&rd);
    /* The core's copy is no longer needed: give its memory back now. */
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    c->bytes_in = total;
    if (c->code)
        return NULL;
    if (first) { /* no slices */
        c->base = malloc(1);
        c->cap = 1;
        if (!c->base) {
            fail(c, PROTO_ENOMEM, "out of memory");
            return NULL;
        }
    }
    *len = got;
    return c->base + pad;
}

/*
 * ModelInfer's work: gather the message, decode it, run the op in place, and encode the reply
 * (c->reply), or record the failure. Checks between the steps whether the client is still
 * there: a cancelled call, or one whose deadline passed, stops there and frees its memory.
 * Touches nothing but c (and G.limits): runs on the thread that took the call for a small
 * message, on a pool worker for a large one (offload).
 */
static void infer_compute(gcall *c)
{
    if (gone(c))
        goto skip;
    size_t len = 0;
    char *msg = gather(c, &len);
    if (!msg)
        return;
    if (gone(c))
        goto skip;
    qdq_error err = { 0 };
    if (proto_v2_grpc_decode(msg, len, &G.limits, &c->v2, &err)) {
        fail_err(c, &err);
        return;
    }
    if (gone(c))
        goto skip;
    c->work = WORK_DONE;
    if (proto_run(&c->v2.req, &G.limits, &c->res, &err)) {
        fail_err(c, &err);
        return;
    }
    proto_buf b = { 0 };
    size_t split = SIZE_MAX;
    if (proto_v2_grpc_encode(&c->v2, &c->res, &b, &split, &err)) {
        proto_buf_free(&b);
        fail_err(c, &err);
        return;
    }
    proto_request *q = &c->v2.req;
    size_t obytes = (size_t)q->count * qdq_dtype_size(q->dtype), blen = b.len;
    grpc_slice whole = grpc_slice_new(b.data, b.len, free), slices[3];
    size_t ns = 0;
    if (split == SIZE_MAX) {
        slices[ns++] = grpc_slice_ref(whole);
    } else {
        /* The field prefix, the output where it was computed, then the rest. */
        slices[ns++] = grpc_slice_sub(whole, 0, split);
        if (obytes) {
            void **held = malloc(2 * sizeof *held);
            if (!held) {
                grpc_slice_unref(slices[0]);
                grpc_slice_unref(whole);
                fail(c, PROTO_ENOMEM, "out of memory encoding the response");
                return;
            }
            if (q->data_borrowed) { /* inside c->base: the slice takes the buffer */
                held[0] = c->base, held[1] = (void *)(uintptr_t)c->cap;
                slices[ns++] = grpc_slice_new_with_user_data(q->data, obytes, put_back, held);
                c->base = NULL;
            } else { /* typed contents: the slice takes the request's own tensor */
                free(held);
                slices[ns++] = grpc_slice_new(q->data, obytes, free);
                q->data = NULL;
            }
        }
        slices[ns++] = grpc_slice_sub(whole, split, blen);
    }
    grpc_slice_unref(whole);
    c->reply = grpc_raw_byte_buffer_create(slices, ns);
    for (size_t i = 0; i < ns; i++)
        grpc_slice_unref(slices[i]);
    c->bytes_out = blen + (split == SIZE_MAX ? 0 : obytes);
    return;
skip:
    c->work = WORK_SKIPPED;
    fail(c, PROTO_ECLOSED, "the client cancelled the call or its deadline passed");
}

/* Sends what c holds: its reply or its failure; or, when the client is gone, ends the call. */
static void answer(gcall *c)
{
    if (c->code == PROTO_ECLOSED) { /* nobody to answer: end the call */
        c->grpc_status = gpr_time_cmp(gpr_now(c->deadline.clock_type), c->deadline) >= 0
                             ? GRPC_STATUS_DEADLINE_EXCEEDED
                             : proto_status_grpc(PROTO_ECLOSED);
        grpc_call_cancel_with_status(c->call, (grpc_status_code)c->grpc_status, c->msg, NULL);
    } else
        reply(c);
}

/* ModelInfer's work on a pool worker; the reply batch is started from here too (gRPC takes it
 * from any thread), so the answer leaves as soon as it is computed. */
static void task_run(srv_task *t, int item)
{
    gcall *c = (gcall *)((char *)t - offsetof(gcall, task));
    (void)item;
    c->t_compute0 = t->t_started;
    infer_compute(c);
    c->t_compute1 = srv_now_ns();
    answer(c);
}

/* On the pool's loop thread, after task_run: the reference the handler passed to the task. */
static void task_done(srv_task *t)
{
    gcall_unref((gcall *)((char *)t - offsetof(gcall, task)));
}

/*
 * Hands a ModelInfer call's work to the pool when its message is larger than --inline-bytes
 * (small ones cost less than the trip to a worker: about 100 us here). true when the task is
 * queued (it answers the call); false when the work is the caller's to do now, or when the
 * pool refused it (c->code set: overloaded, as HTTP's 503 past --max-queue).
 */
static bool offload(gcall *c)
{
    if (!G.pool || grpc_byte_buffer_length(c->payload) <= (size_t)G.cfg->small_request_bytes)
        return false;
    if (srv_pool_pending(G.pool) >= G.cfg->workers + G.cfg->max_queue) {
        fail(c, PROTO_EBUSY, "the server is overloaded: %d requests are waiting for a worker "
             "(--max-queue)", G.cfg->max_queue);
        return false;
    }
    c->task.items = 1;
    c->task.run = task_run;
    c->task.done = task_done;
    if (srv_pool_submit(G.pool, &c->task)) {
        fail(c, PROTO_ENOMEM, "out of memory queueing the request");
        return false;
    }
    return true;
}

/* The bearer token from the call's "authorization" metadata. */
static bool authorized(const gcall *c)
{
    const char *want = G.cfg->auth_token;
    if (!want[0] || methods[c->rpc].open)
        return true;
    for (size_t i = 0; i < c->md.count; i++) {
        const grpc_metadata *m = &c->md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != 13 ||
            memcmp(GRPC_SLICE_START_PTR(m->key), "authorization", 13) != 0)
            continue;
        char v[600];
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (n >= sizeof v)
            return false;
        memcpy(v, GRPC_SLICE_START_PTR(m->value), n);
        v[n] = '\0';
        return srv_guard_token_ok(want, v);
    }
    return false;
}

/* The request message of a small RPC, contiguous (malloc'ed into *out; the caller frees). */
static int small_message(gcall *c, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!c->payload)
        return 0;
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, c->payload)) {
        fail(c, QDQ_EINVAL, "the request message cannot be decompressed");
        return -1;
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    *len = GRPC_SLICE_LENGTH(s);
    c->bytes_in = *len;
    *out = malloc(*len + 1);
    if (*out)
        memcpy(*out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    if (!*out) {
        fail(c, PROTO_ENOMEM, "out of memory");
        return -1;
    }
    return 0;
}

/* Everything but ModelInfer: small answers. */
static void answer_small(gcall *c)
{
    proto_buf b = { 0 };
    qdq_error err = { 0 };
    char *msg = NULL;
    size_t len = 0;
    int rc = 0;
    if (small_message(c, &msg, &len))
        return;
    bool draining = atomic_load(&G.draining);
    switch (c->rpc) {
    case SRV_GRPC_SERVER_LIVE:
        rc = proto_v2_grpc_bool_response(PROTO_V2_GRPC_LIVE, &b);
        break;
    case SRV_GRPC_SERVER_READY:
        if (draining)
            fail(c, PROTO_EBUSY, "the server is shutting down");
        else
            rc = proto_v2_grpc_bool_response(PROTO_V2_GRPC_READY, &b);
        break;
    case SRV_GRPC_MODEL_READY:
        if (proto_v2_grpc_model_check(msg, len, &err))
            fail_err(c, &err);
        else if (draining)
            fail(c, PROTO_EBUSY, "the server is shutting down");
        else
            rc = proto_v2_grpc_bool_response(PROTO_V2_GRPC_MODEL_READY, &b);
        break;
    case SRV_GRPC_SERVER_METADATA:
        rc = proto_v2_grpc_server_metadata(QDQ_SERVER_VERSION, &b);
        break;
    case SRV_GRPC_MODEL_METADATA:
        if (proto_v2_grpc_model_check(msg, len, &err))
            fail_err(c, &err);
        else
            rc = proto_v2_grpc_model_metadata(&b);
        break;
    case SRV_GRPC_HEALTH_CHECK:
        if (proto_v2_grpc_health_check(msg, len, &err))
            fail_err(c, &err);
        else
            rc = proto_v2_grpc_health(!draining, &b);
        break;
    default:
        break;
    }
    free(msg);
    if (rc)
        fail(c, PROTO_ENOMEM, "out of memory");
    if (!c->code)
        reply_buf(c, &b);
    proto_buf_free(&b);
}

/* ---- completion handlers ---- */

static void on_new(gcall *c, bool ok)
{
    if (!ok) { /* the server is shutting down: no call came */
        gcall_free(c);
        return;
    }
    c->t_start = srv_now_ns();
    atomic_fetch_add(&G.inflight, 1);
    if (!atomic_load(&G.stopping))
        post(c->rpc);
    if (c->rpc == SRV_GRPC_OTHER)
        c->deadline = c->details.deadline;
    atomic_store(&c->refs, 1); /* this handler's */
    if (c->rpc == SRV_GRPC_OTHER) {
        fail(c, PROTO_EMETHOD, "no method %.*s on this server (it has "
             "inference.GRPCInferenceService and grpc.health.v1.Health/Check)",
             (int)GRPC_SLICE_LENGTH(c->details.method),
             (const char *)GRPC_SLICE_START_PTR(c->details.method));
    } else if (!authorized(c)) {
        fail(c, PROTO_EAUTH, "missing or wrong bearer token (Authorization: Bearer <token>)");
    } else if (!methods[c->rpc].open && atomic_load(&G.inflight) > G.cfg->max_inflight) {
        fail(c, PROTO_EBUSY, "the server is overloaded: more than %d requests in flight "
             "(--max-inflight)", G.cfg->max_inflight);
    } else {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->payload;
        if (grpc_call_start_batch(c->call, &op, 1, &c->t_recv, NULL) == GRPC_CALL_OK)
            return; /* on_recv goes on, with this handler's reference */
        fail(c, PROTO_EINTERNAL, "cannot receive the request message");
    }
    answer(c);
    gcall_unref(c);
}

/* The request message is in (or the call ended first): the answer. */
static void on_recv(gcall *c, bool ok)
{
    if (!ok || !c->payload) {
        /* No request message: the call failed while it arrived (the client cancelled, its
         * deadline passed, or the message was over the limit), or the client half-closed
         * without one. */
        if (!ok || grpc_call_failed_before_recv_message(c->call)) {
            fail(c, PROTO_ECLOSED, "the call ended before its request message arrived");
            c->work = c->rpc == SRV_GRPC_MODEL_INFER ? WORK_SKIPPED : WORK_NONE;
        } else {
            fail(c, QDQ_EINVAL, "the call has no request message");
        }
    } else if (c->rpc == SRV_GRPC_MODEL_INFER) {
        if (grpc_byte_buffer_length(c->payload) >= WATCH_BYTES) {
            grpc_op close_op;
            memset(&close_op, 0, sizeof close_op);
            close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
            close_op.data.recv_close_on_server.cancelled = &c->cancelled;
            atomic_fetch_add(&c->refs, 1);
            c->watched = true;
            if (grpc_call_start_batch(c->call, &close_op, 1, &c->t_close, NULL) !=
                GRPC_CALL_OK) {
                atomic_fetch_sub(&c->refs, 1);
                atomic_store(&c->closed, true);
            }
        }
        if (offload(c))
            return; /* the task answers, and drops this handler's reference */
        if (!c->code) {
            c->t_compute0 = srv_now_ns();
            infer_compute(c);
            c->t_compute1 = srv_now_ns();
        }
    } else {
        answer_small(c);
    }
    answer(c);
    gcall_unref(c);
}

static void on_close(gcall *c, bool ok)
{
    (void)ok;
    atomic_store(&c->closed, true);
    gcall_unref(c);
}

static void on_send(gcall *c, bool ok)
{
    if (ok && c->status_later) { /* the message is written: the status once it has left */
        c->status_later = false;
        wait_port_sent();
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        start_send(c, ops, status_ops(c, ops, 0));
        gcall_unref(c);
        return;
    }
    if (c->sending) {
        c->sending = false;
        atomic_fetch_sub(&G.sending, 1);
    }
    if (!ok)
        c->cancelled = 1; /* not sent: the call ended first */
    if (!c->watched)
        atomic_store(&c->closed, true);
    gcall_unref(c);
}

static void *loop(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(G.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        gtag *t = ev.tag;
        if (t == &G.shutdown_tag) {
            atomic_store(&G.shutdown_done, true);
            continue;
        }
        t->done(t->c, ev.success != 0);
    }
    return NULL;
}

/* ---- start and stop ---- */

/* A PEM file's text (malloc), or NULL after logging why. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        srv_log("error", "grpc: cannot open %s", path);
        return NULL;
    }
    proto_buf b = { 0 };
    char chunk[4096];
    size_t k;
    int rc = 0;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && !rc)
        rc = proto_buf_append(&b, chunk, k);
    fclose(f);
    if (rc || proto_buf_append(&b, "", 1)) {
        proto_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static grpc_server_credentials *credentials(const cfg *c)
{
    if (!c->tls_cert[0])
        return grpc_insecure_server_credentials_create();
    char *cert = read_file(c->tls_cert), *key = read_file(c->tls_key);
    grpc_server_credentials *cr = NULL;
    if (cert && key) {
        grpc_ssl_pem_key_cert_pair pair = { key, cert };
        cr = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
    }
    if (key)
        memset(key, 0, strlen(key)); /* leave no copy of the key behind in freed memory */
    free(cert);
    free(key);
    return cr;
}

int srv_grpc_start(const cfg *c, srv_pool *pool)
{
    memset(&G, 0, sizeof G);
    G.cfg = c;
    G.pool = pool;
    if (c->grpc_port < 0)
        return 0;
    G.limits.max_elements = c->max_elements;
    G.limits.max_rank = c->max_rank;
    G.limits.max_depth = c->max_json_depth;
    G.limits.max_body = c->max_body_bytes;
    gpr_set_log_function(core_log);
    /*
     * The core receives a whole message into slices it mallocs (chunks of up to 4 MiB) before
     * handing it over, and frees them when we have gathered it. With glibc's defaults those
     * chunks are fresh mmaps, or heap that is trimmed back to the kernel once freed, so every
     * 64 MiB request paid ~16k page faults (64 MiB of first touches: ~25 ms of CPU here) that
     * HTTP, receiving into warm buffers (bufcache.c), does not. Allocations below 8 MiB now come
     * from the heap, and up to 256 MiB of freed heap stays mapped for the next request (measured:
     * 16.3k -> 1.2k faults per 64 MiB call). Larger buffers (bufcache's) are mmaps as before.
     * This is the whole process's malloc policy: it applies only when gRPC is on.
     */
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    grpc_init();

    grpc_arg args[4];
    int max_msg = c->max_body_bytes > INT_MAX ? INT_MAX : (int)c->max_body_bytes;
    args[0] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                          { .integer = max_msg } };
    args[1] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                          { .integer = -1 } };
    /* A second server on the same port must fail, as HTTP's does, not share it. */
    args[2] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_ALLOW_REUSEPORT, { .integer = 0 } };
    /* Channelz (per-call statistics for gRPC's admin tools, which this server does not serve)
     * costs every call. */
    args[3] = (grpc_arg){ GRPC_ARG_INTEGER, (char *)GRPC_ARG_ENABLE_CHANNELZ, { .integer = 0 } };
    grpc_channel_args ca = { 4, args };
    G.server = grpc_server_create(&ca, NULL);
    G.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(G.server, G.cq, NULL);
    for (int i = 0; i < SRV_GRPC_OTHER; i++)
        G.rm[i] = grpc_server_register_method(G.server, methods[i].path, NULL,
                                              GRPC_SRM_PAYLOAD_NONE, 0);

    char addr[300];
    snprintf(addr, sizeof addr, strchr(c->grpc_host, ':') ? "[%s]:%d" : "%s:%d", c->grpc_host,
             c->grpc_port);
    grpc_server_credentials *cr = credentials(c);
    G.port = cr ? grpc_server_add_http2_port(G.server, addr, cr) : 0;
    if (cr)
        grpc_server_credentials_release(cr);
    if (G.port <= 0) {
        srv_log("error", "grpc: cannot listen on %s%s", addr,
                cr ? "" : " (the TLS certificate or key cannot be read)");
        G.port = 0;
        grpc_server_destroy(G.server);
        grpc_completion_queue_shutdown(G.cq);
        while (grpc_completion_queue_next(G.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(G.cq);
        grpc_shutdown();
        return -1;
    }
    grpc_server_start(G.server);
    static const char *names[SRV_GRPC_RPCS];
    for (int i = 0; i < SRV_GRPC_RPCS; i++)
        names[i] = methods[i].name;
    srv_metrics_init_grpc(names, SRV_GRPC_RPCS, &G.inflight);
    for (int i = 0; i < SRV_GRPC_RPCS; i++)
        for (int k = 0; k < (i == SRV_GRPC_MODEL_INFER ? SLOTS_INFER : SLOTS_OTHER); k++)
            post(i);
    G.nthreads = c->http_threads < MAX_THREADS ? c->http_threads : MAX_THREADS;
    for (int i = 0; i < G.nthreads; i++)
        if (pthread_create(&G.threads[i], NULL, loop, NULL)) {
            srv_log("error", "grpc: cannot start a thread");
            G.nthreads = i;
            srv_grpc_stop(0);
            return -1;
        }
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

void srv_grpc_stop(uint64_t deadline_ns)
{
    if (!G.server)
        return;
    atomic_store(&G.draining, true);
    /* Calls that arrived while every posted gcall was taken wait unmatched in the core, and the
     * core's shutdown would end them unanswered: match them first. */
    if (G.nthreads > 0)
        for (int k = 0; k < SLOTS_STOP; k++)
            if (post(k % SRV_GRPC_RPCS))
                break;
    G.stop_deadline = deadline_ns;
    atomic_store(&G.stopping, true);
    /* Replies begun before with their status are let out first (see reply): the GOAWAY would
     * close their connections as soon as the status is written. */
    while (atomic_load(&G.sending) > 0 && srv_now_ns() < deadline_ns && G.nthreads > 0)
        sleep_ms(1);
    if (G.nthreads > 0)
        wait_port_sent();
    G.shutdown_tag = (gtag){ NULL, NULL };
    grpc_server_shutdown_and_notify(G.server, G.cq, &G.shutdown_tag);
    while (!atomic_load(&G.shutdown_done) && srv_now_ns() < deadline_ns && G.nthreads > 0)
        sleep_ms(10);
    if (!atomic_load(&G.shutdown_done)) {
        if (atomic_load(&G.inflight) > 0)
            srv_log("warn", "grpc: drain timeout: cancelling %d calls", atomic_load(&G.inflight));
        grpc_server_cancel_all_calls(G.server);
        if (G.nthreads == 0) /* no thread to take the events: take them here */
            while (!atomic_load(&G.shutdown_done)) {
                grpc_event ev = grpc_completion_queue_next(
                    G.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type != GRPC_OP_COMPLETE)
                    break;
                gtag *t = ev.tag;
                if (t == &G.shutdown_tag)
                    atomic_store(&G.shutdown_done, true);
                else
                    t->done(t->c, ev.success != 0);
            }
        while (!atomic_load(&G.shutdown_done))
            sleep_ms(5);
    }
    /* Work on the pool cannot be abandoned: a call cancelled above still has its task, which
     * sees the call gone at its next step and ends it. Wait until every call is freed (the
     * threads still take the events that free them). */
    while (atomic_load(&G.inflight) > 0 && G.nthreads > 0)
        sleep_ms(5);
    grpc_server_destroy(G.server);
    grpc_completion_queue_shutdown(G.cq);
    for (int i = 0; i < G.nthreads; i++)
        pthread_join(G.threads[i], NULL);
    if (G.nthreads == 0)
        while (grpc_completion_queue_next(G.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    grpc_completion_queue_destroy(G.cq);
    G.server = NULL;
    G.cq = NULL;
    G.port = 0;
    grpc_shutdown();
    srv_buf_trim(); /* the buffers the last replies gave back */
}
