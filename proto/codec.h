/*
 * Codecs: one per wire format, each the whole life of one exchange (a request and its answer)
 * behind one interface, usable by any transport: the HTTP server, the gRPC server, the qdq
 * command. docs/architecture.md tells how to add one.
 *
 * The life of an exchange, driven by the transport:
 *
 *   proto_xchg_new     the request's attributes (headers, query, declared length) -> the codec
 *                      for them, set up; a request it cannot take is recorded in err
 *   proto_xchg_feed    body bytes as they arrive (after any Content-Encoding); a tensor's
 *                      min/max reduction is folded into the copy that receives it
 *   proto_xchg_end     the body is complete: what work is left, in how many parallel items
 *   proto_xchg_run     item i of n, on any thread (items of one exchange may run at once)
 *   proto_xchg_answer  the answer: content type, headers, and a body (owned, with its release)
 *   proto_xchg_free    gives back every buffer
 *
 * Failures follow the one error model (qdq_fail, status.h): a codec records the first failure
 * in the caller's qdq_error and the transport stops feeding and converts the code. Only work of
 * a single item may fail in proto_xchg_run (the decode of a JSON body, say): splittable work
 * has been checked before it is split.
 *
 * Buffers: large ones (tensor bodies) come from the host (proto_host.buf_get), so a server's
 * warm-buffer cache and memory budget apply; an answer may hand such a buffer to the transport
 * without a copy, and its release gives it back.
 */
#ifndef PROTO_CODEC_H
#define PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The wire formats, as logs and metrics name them. */
typedef enum proto_format {
    PROTO_FMT_NONE = 0,
    PROTO_FMT_JSON,
    PROTO_FMT_RAW,
    PROTO_FMT_NPY,
    PROTO_FMT_V2_JSON,
    PROTO_FMT_V2_BINARY,
    PROTO_FMT_SAFETENSORS,
    PROTO_NFORMATS
} proto_format;

/* "none", "json", "raw", "npy", "v2_json", "v2_binary", "safetensors". */
const char *proto_format_name(proto_format f);

/* What a route takes: the native op (format from Content-Type) or a KServe v2 inference. */
typedef enum proto_kind { PROTO_KIND_QDQ = 0, PROTO_KIND_V2_INFER } proto_kind;

/* What a codec uses from whoever runs it. */
typedef struct proto_host {
    proto_limits lim;
    size_t max_header_bytes; /* room for an answer's headers (X-QDQ-* ranges); 0: no limit */
    /* A buffer of at least size bytes (*cap gets its size), or NULL when none can be had. */
    void *(*buf_get)(void *cls, size_t size, size_t *cap);
    /* Gives a buffer back: keep asks to keep it warm for the next request (the answer was
     * sent), else it is freed. */
    void (*buf_put)(void *cls, void *p, size_t cap, bool keep);
    /* Streamed formats (safetensors): the largest body (0: no limit); a file for an answer
     * too large to hold (-1 with the failure recorded: PROTO_ESPACE when `bytes` will not fit;
     * the codec closes it, or hands it to the answer); the bytes written to such files come
     * and go (for a gauge; may be NULL). */
    uint64_t max_stream;
    int (*spool_open)(void *cls, uint64_t bytes, qdq_error *err);
    void (*spool_account)(void *cls, int64_t delta);
    /* Runs fn(ctx, i, n) for i in [0, n), on as many threads as the host has (NULL: the
     * codec runs them one after another), and returns when all are done. */
    void (*parallel)(void *cls, void (*fn)(void *ctx, int i, int n), void *ctx, int n);
    int threads; /* what parallel can run at once (1 without it) */
    /* Streamed formats: bytes of the body done so far (a progress line; may be NULL). */
    void (*progress)(void *cls, uint64_t done);
    /* Bytes of the piece being fed that the codec is done reading for now: a hint, for a
     * host that feeds a mapped file and keeps its memory small (may be NULL). */
    void (*consumed)(void *cls, const void *p, size_t n);
    /* The host reads checkpoints' reports (proto_xchg_report) besides their answers: their
     * statistics are computed even when the answer is the checkpoint. */
    bool reports;
    void *cls;
} proto_host;

/* A request's attributes, as its transport found them. */
#define PROTO_LENGTH_UNKNOWN UINT64_MAX
typedef struct proto_args {
    uint64_t length; /* the body's length after any Content-Encoding, or PROTO_LENGTH_UNKNOWN */
    /* A request header's value, or NULL. */
    const char *(*header)(void *cls, const char *name);
    /* Calls fn on each query argument (percent-decoded) in order until fn returns nonzero, and
     * returns that (0 when every call returned 0); fn NULL counts them. */
    int (*query)(void *cls, int (*fn)(void *ctx, const char *key, const char *value), void *ctx);
    void *cls;
} proto_args;

typedef struct proto_xchg proto_xchg;

/* What is left to do once the body is complete. */
typedef struct proto_work {
    int items;      /* at most this many parallel items (0: nothing; the answer is ready) */
    uint64_t bytes; /* about how much data they go over, for a host choosing where to run them */
} proto_work;

/* An answer, owned by whoever holds it. */
typedef struct proto_answer {
    const char *ctype;
    char *body;
    size_t len;
    void (*release)(void *cls); /* frees body; NULL: free(body) */
    void *release_cls;
    proto_buf headers;          /* extra headers, "Name: value\n" lines */
    /* Or the body is a file: `file_len` bytes from its start, the descriptor owned (closed by
     * proto_answer_clear, or by whoever sends it). */
    bool from_file;
    int fd;
    uint64_t file_len;
} proto_answer;

/* Frees the body (through its release) and the headers; leaves a zeroed answer. */
void proto_answer_clear(proto_answer *a);
/* Appends "Name: value" to the answer's headers. 0, or PROTO_ENOMEM. */
int proto_answer_header(proto_answer *a, const char *name, const char *value, size_t len);

/*
 * A new exchange for a request of this kind, set up from its attributes. NULL only when out of
 * memory (err says so). On a request the codec refuses (a Content-Type it does not know, a bad
 * query argument...) the exchange is still returned, with the failure in err: the transport then
 * reads and drops the body and answers the failure. host must outlive the exchange.
 */
proto_xchg *proto_xchg_new(proto_kind kind, const proto_args *a, const proto_host *host,
                           qdq_error *err);
/* Whether a request with these attributes would stream (proto_xchg_streams): its body limit
 * is proto_host.max_stream, not lim.max_body. */
bool proto_args_stream(proto_kind kind, const proto_args *a);
/* The exchange's format (known from the start). */
proto_format proto_xchg_format(const proto_xchg *x);
/* The most body bytes this exchange takes (after any Content-Encoding). */
uint64_t proto_xchg_body_limit(const proto_xchg *x);
/* Body bytes. 0, or the recorded failure's code. */
int proto_xchg_feed(proto_xchg *x, const char *data, size_t n, qdq_error *err);
/* The body is complete: fills w. 0, or the recorded failure's code. */
int proto_xchg_end(proto_xchg *x, proto_work *w, qdq_error *err);
/* Item i of n, 1 <= n <= w.items. */
void proto_xchg_run(proto_xchg *x, int i, int n, qdq_error *err);
/* The answer, after every item has run without a failure. 0, or the failure's code. */
int proto_xchg_answer(proto_xchg *x, proto_answer *a, qdq_error *err);
/*
 * The most memory the exchange may hold at once for a body of `body` bytes (after any
 * Content-Encoding): the body or tensor buffer, decoded tensors, the answer. A host with a
 * memory budget takes this much before reading the body (or as a body of unknown length grows).
 */
uint64_t proto_xchg_memory(const proto_xchg *x, uint64_t body);
/* Whether the exchange streams a body of any size (safetensors): its own body limit
 * (proto_xchg_body_limit), its own concurrency, and no whole-request deadline while it keeps
 * arriving. */
bool proto_xchg_streams(const proto_xchg *x);
/* What a checkpoint exchange did, for metrics: tensors and data bytes processed. */
void proto_xchg_counts(const proto_xchg *x, uint64_t *tensors, uint64_t *bytes);
/* A checkpoint exchange's report (docs/api.md, "Whole checkpoints"), appended to b: the same
 * JSON its answer is when asked for the report. 0, QDQ_EINVAL for another format, or
 * PROTO_ENOMEM. */
int proto_xchg_report(const proto_xchg *x, proto_buf *b);
/* The elements the op computed and their dtype (0 when none), for metrics. */
uint64_t proto_xchg_elements(const proto_xchg *x, qdq_dtype *dtype);
/* Frees the exchange; sent says the answer went out (its buffers may be kept warm). */
void proto_xchg_free(proto_xchg *x, bool sent);

/* ---- the op on a decoded request (compute.c): shared by every codec and transport ---- */

/* A computed request: its plan and the op's state (malloc; proto_result_clear frees them). */
typedef struct proto_result {
    qdq_plan plan;
    void *acc, *params;
    qdq_stats stats; /* when the request asked for them (want_stats) */
} proto_result;

/*
 * Plans the op for q (every attribute checked), allocates its state within the limits (a
 * tensor may be empty yet name a huge channel axis: channels count against max_elements) and
 * runs it in place on q->data, with the error statistics in res->stats when q->want_stats
 * (then q->stats points to them). 0, or a failure recorded in err (res left empty).
 */
int proto_run(proto_request *q, const proto_limits *lim, proto_result *res, qdq_error *err);
/* Plans and allocates only (the caller reduces and applies itself). */
int proto_plan(const proto_request *q, const proto_limits *lim, proto_result *res,
               qdq_error *err);
void proto_result_clear(proto_result *res);

#endif
