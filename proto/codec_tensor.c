/*
 * The raw and .npy codecs (docs/api.md, "Raw bytes" and "NumPy .npy"): a tensor streamed into one
 * buffer, its attributes from the query string.
 *
 * Once the layout is known (from the query and Content-Length for raw bytes, from the header
 * for .npy), the tensor's buffer, plan and accumulator are set up and each body chunk is copied
 * in and folded, while the bytes are in cache: into the min/max when the range comes from the
 * data, or straight through the op when the range is given. What is left at the end is the
 * parameters and the transform, split into ranges of elements that workers run at once; the
 * answer is sent from the same buffer (a .npy header written in front of the tensor).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_impl.h"

typedef struct qarg {
    proto_xchg *x;
    qdq_error *err;
} qarg;

static int query_arg(void *ctx, const char *key, const char *value)
{
    qarg *q = ctx;
    return proto_query_arg(&q->x->req, key, value ? value : "", &q->x->host->lim, q->err);
}

/* The plan, state and buffer of the tensor, once its dtype and shape are known. */
static int tensor_setup(proto_xchg *x, qdq_error *err)
{
    proto_request *q = &x->req;
    const proto_limits *lim = &x->host->lim;
    int rc = proto_plan(q, lim, &x->res, err);
    if (rc)
        return rc;
    x->tlen = q->count * qdq_dtype_size(q->dtype);
    if (lim->max_body && x->tlen > lim->max_body) /* a .npy header that promises too much */
        return qdq_fail(err, PROTO_ETOOBIG, "the tensor's %llu bytes are over the limit of %llu "
                        "bytes (--max-body-bytes)", (unsigned long long)x->tlen,
                        (unsigned long long)lim->max_body);
    if (q->attrs.range_given &&
        (rc = qdq_params_given(&x->res.plan, q->min, q->n_min, q->max, q->n_max,
                               x->res.params, err)))
        return rc;
    if (proto_xchg_buffer(x, x->tlen))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for a %llu-byte tensor",
                        (unsigned long long)x->tlen);
    qdq_stats_init(&x->res.stats);
    x->stream = (proto_stream){ &x->res.plan, x->res.acc, x->res.params, q->attrs.range_given,
                                x->tbase + PROTO_TENSOR_OFF, x->tlen, 0, 0,
                                q->want_stats ? &x->res.stats : NULL };
    x->tensor_ready = true;
    return 0;
}

static int tensor_feed(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    return proto_stream_feed(&x->stream, data, n, err);
}

static int begin_raw(proto_xchg *x, const proto_args *a, qdq_error *err)
{
    qarg q = { x, err };
    if (a->query && a->query(a->cls, query_arg, &q))
        return err->code;
    if (a->length == PROTO_LENGTH_UNKNOWN) /* the body is kept in text until its end */
        return 0;
    int rc = proto_raw_finish(&x->req, a->length, &x->host->lim, err);
    return rc ? rc : tensor_setup(x, err);
}

static int begin_npy(proto_xchg *x, const proto_args *a, qdq_error *err)
{
    qarg q = { x, err };
    if (a->query && a->query(a->cls, query_arg, &q))
        return err->code;
    return 0;
}

static int feed_raw(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    if (x->tensor_ready)
        return tensor_feed(x, data, n, err);
    if (proto_buf_append(&x->text, data, n))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory receiving the body");
    return 0;
}

/* The .npy header is kept until it is whole; then the data streams into the tensor. */
static int feed_npy(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    if (x->tensor_ready)
        return tensor_feed(x, data, n, err);
    if (proto_buf_append(&x->text, data, n))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory receiving the body");
    size_t off = 0;
    qdq_error part = { 0 };
    int rc = proto_npy_header_parse((const uint8_t *)x->text.data, x->text.len, x->length,
                                    &x->host->lim, &x->req, &off, &part);
    if (rc == PROTO_EAGAIN)
        return 0;
    if (rc)
        return qdq_fail(err, rc, "%s", part.msg);
    if ((rc = tensor_setup(x, err)) || (rc = tensor_feed(x, x->text.data + off,
                                                         x->text.len - off, err)))
        return rc;
    proto_buf_free(&x->text);
    return 0;
}

static int end(proto_xchg *x, proto_work *w, qdq_error *err)
{
    int rc;
    if (x->format == PROTO_FMT_RAW && !x->tensor_ready) { /* no Content-Length: now we know */
        if ((rc = proto_raw_finish(&x->req, x->text.len, &x->host->lim, err)) ||
            (rc = tensor_setup(x, err)) ||
            (rc = tensor_feed(x, x->text.data, x->text.len, err)))
            return rc;
        proto_buf_free(&x->text);
    } else if (x->format == PROTO_FMT_NPY && !x->tensor_ready) {
        return qdq_fail(err, QDQ_EINVAL, "the body ends inside the .npy header (%zu bytes "
                        "received)", x->text.len);
    }
    if (x->stream.got != x->tlen)
        return qdq_fail(err, QDQ_EINVAL, "body is shorter than the tensor: %llu bytes of data, "
                        "the shape needs %llu", (unsigned long long)x->stream.got,
                        (unsigned long long)x->tlen);
    x->elements = x->res.plan.count;
    if (x->req.attrs.range_given) { /* applied while receiving */
        w->items = 0;
        return 0;
    }
    proto_stream_params(&x->stream);
    /* The transform in ranges of 256 KiB or more (a JSON answer is encoded by one thread). */
    uint64_t k = x->tlen / (256u << 10) + 1;
    w->items = x->want_json ? 1 : k < 1024 ? (int)k : 1024;
    w->bytes = x->tlen;
    if (x->req.want_stats) { /* each item's statistics, merged for the answer */
        x->item_stats = malloc((size_t)w->items * sizeof *x->item_stats);
        if (!x->item_stats)
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for the statistics");
        for (int i = 0; i < w->items; i++)
            qdq_stats_init(&x->item_stats[i]);
    }
    return 0;
}

/* The element range of item i of n, split on 64-byte boundaries. */
static void item_range(const qdq_plan *plan, int i, int n, uint64_t *b, uint64_t *e)
{
    uint64_t count = plan->count, per = 64 / qdq_dtype_size(plan->dtype);
    uint64_t blocks = (count + per - 1) / per;
    *b = blocks * (uint64_t)i / (uint64_t)n * per;
    *e = blocks * (uint64_t)(i + 1) / (uint64_t)n * per;
    if (*b > count)
        *b = count;
    if (*e > count)
        *e = count;
}

static void run(proto_xchg *x, int i, int n, qdq_error *err)
{
    uint64_t b, e;
    item_range(&x->res.plan, i, n, &b, &e);
    char *t = x->tbase + PROTO_TENSOR_OFF;
    x->nitems = n;
    if (b < e)
        qdq_apply_stats(&x->res.plan, x->res.params, t, t, b, e,
                        x->item_stats ? &x->item_stats[i] : NULL);
}

/* The statistics of the whole tensor, for the answer (when asked). */
static void gather_stats(proto_xchg *x)
{
    if (!x->req.want_stats)
        return;
    for (int i = 0; x->item_stats && i < x->nitems; i++)
        qdq_stats_merge(&x->res.stats, &x->item_stats[i]);
    x->req.stats = &x->res.stats;
}

/* X-QDQ-Max-Abs-Error, X-QDQ-RMSE, X-QDQ-SQNR-dB (null when it has none), X-QDQ-Nonfinite. */
static int stats_headers(const qdq_stats *st, proto_answer *a)
{
    qdq_stats_summary s;
    qdq_stats_summarize(st, &s);
    char n[PROTO_NUM_MAX + 1];
    int rc = proto_answer_header(a, "X-QDQ-Max-Abs-Error", n,
                                 proto_num_format_f64(s.max_abs_error, n));
    rc = rc || proto_answer_header(a, "X-QDQ-RMSE", n, proto_num_format_f64(s.rmse, n));
    rc = rc || (s.sqnr_null ? proto_answer_header(a, "X-QDQ-SQNR-dB", "null", 4)
                            : proto_answer_header(a, "X-QDQ-SQNR-dB", n,
                                                  proto_num_format_f64(s.sqnr_db, n)));
    int k = snprintf(n, sizeof n, "%llu", (unsigned long long)s.nonfinite);
    rc = rc || proto_answer_header(a, "X-QDQ-Nonfinite", n, (size_t)k);
    return rc;
}

/*
 * X-QDQ-Dtype, X-QDQ-Shape and the six per-channel range headers. A transport builds response
 * headers in limited memory (max_header_bytes): ranges that would not fit in half of it are
 * left out, and X-QDQ-Ranges-Omitted says why and how to get them.
 */
static int ranges_headers(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    static const char *const names[6] = { "X-QDQ-Input-Min", "X-QDQ-Input-Max",
                                          "X-QDQ-Output-Min", "X-QDQ-Output-Max",
                                          "X-QDQ-Scale", "X-QDQ-Inverse-Scale" };
    /* The six ranges in one buffer, one after another (at[k] where range k starts): for the
     * common tensor of a few channels, one allocation and no growth. */
    uint64_t ch = x->res.plan.channels;
    size_t guess = ch < 4096 ? (size_t)ch * 6 * (PROTO_NUM_MAX + 1) + 64 : 0;
    proto_buf b = { 0 }, shape = { 0 };
    size_t at[7] = { 0 };
    const char *dt = qdq_dtype_name(x->req.dtype);
    int rc = proto_answer_header(a, "X-QDQ-Dtype", dt, strlen(dt));
    rc = rc || proto_shape_format(&x->req, &shape) || proto_buf_reserve(&b, guess);
    size_t total = 0;
    for (int k = 0; k < 6 && !rc; k++) {
        rc = proto_ranges_format(&x->res.plan, x->res.params, k, &b);
        at[k + 1] = b.len;
        total += at[k + 1] - at[k] + strlen(names[k]) + 4;
    }
    if (!rc)
        rc = proto_answer_header(a, "X-QDQ-Shape", shape.data ? shape.data : "", shape.len);
    size_t room = x->host->max_header_bytes ? x->host->max_header_bytes / 2 : SIZE_MAX;
    if (!rc && total <= room) {
        rc = proto_buf_reserve(&a->headers, total + 1);
        for (int k = 0; k < 6 && !rc; k++)
            rc = proto_answer_header(a, names[k], b.data ? b.data + at[k] : "", at[k + 1] - at[k]);
    } else if (!rc) {
        char why[160];
        int n = snprintf(why, sizeof why, "%llu channels need %zu bytes of headers; ask with "
                         "Accept: application/json", (unsigned long long)ch, total);
        rc = proto_answer_header(a, "X-QDQ-Ranges-Omitted", why, (size_t)n);
    }
    proto_buf_free(&shape);
    proto_buf_free(&b);
    if (rc)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory formatting the response headers");
    return 0;
}

static int answer(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    char *data = x->tbase + PROTO_TENSOR_OFF;
    gather_stats(x);
    if (x->want_json) {
        proto_buf b = { 0 };
        x->req.form = PROTO_FORM_DATA;
        int rc = proto_json_encode(&x->req, &x->res.plan, x->res.params, data, &b, err);
        if (rc) {
            proto_buf_free(&b);
            return rc;
        }
        a->body = proto_buf_detach(&b, &a->len);
        a->ctype = "application/json";
        return 0;
    }
    int rc = ranges_headers(x, a, err);
    if (rc)
        return rc;
    if (x->req.stats && stats_headers(x->req.stats, a))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory formatting the response headers");
    char *start = data;
    size_t len = x->tlen;
    if (x->format == PROTO_FMT_NPY) {
        proto_buf h = { 0 };
        if (proto_npy_header_write(&x->req, &h) || h.len > PROTO_TENSOR_OFF) {
            proto_buf_free(&h);
            return qdq_fail(err, PROTO_EINTERNAL, "npy header does not fit");
        }
        start = data - h.len;
        memcpy(start, h.data, h.len);
        len += h.len;
        proto_buf_free(&h);
        a->ctype = "application/x-npy";
    } else {
        a->ctype = "application/octet-stream";
    }
    return proto_answer_take_buffer(x, a, start, len, err);
}

/* The tensor's buffer (its JSON answer, when asked for, is text as large again, or more). */
static uint64_t memory(const proto_xchg *x, uint64_t body)
{
    return x->want_json ? proto_memory_text(body) : proto_memory_buffer(body);
}

const proto_codec proto_codec_raw = { .format = PROTO_FMT_RAW, .begin = begin_raw,
                                      .feed = feed_raw, .end = end, .run = run,
                                      .answer = answer, .memory = memory };
const proto_codec proto_codec_npy = { .format = PROTO_FMT_NPY, .begin = begin_npy,
                                      .feed = feed_npy, .end = end, .run = run,
                                      .answer = answer, .memory = memory };
