/*
 * The KServe v2 codec (docs/api.md, "KServe v2"): an inference request in JSON, or with
 * Triton's binary tensor data extension (Inference-Header-Content-Length).
 *
 * A binary request of known length is received straight into a tensor buffer with room around
 * it, decoded in place (the input is not copied), computed in place, and answered from the same
 * buffer: the answer's JSON just before the output, its binary ranges just after. Other requests
 * are kept whole and decoded as one item of work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_impl.h"

static int begin(proto_xchg *x, const proto_args *a, qdq_error *err)
{
    x->format = PROTO_FMT_V2_JSON;
    x->v2_header_len = SIZE_MAX;
    const char *hl = a->header ? a->header(a->cls, "Inference-Header-Content-Length") : NULL;
    uint64_t v;
    if (hl && !proto_parse_length(hl, &v))
        return qdq_fail(err, QDQ_EINVAL, "Inference-Header-Content-Length is not a number: "
                        "'%.40s'", hl);
    if (hl) {
        x->v2_header_len = v > SIZE_MAX ? SIZE_MAX - 1 : (size_t)v;
        x->format = PROTO_FMT_V2_BINARY;
    }
    if (a->length == PROTO_LENGTH_UNKNOWN)
        return 0;
    if (hl) {
        /* Binary tensors: received into a warm buffer with room around, so the op runs in place
         * and the answer is built around the output. */
        if (proto_xchg_buffer(x, PROTO_TENSOR_OFF + a->length))
            return qdq_fail(err, PROTO_ENOMEM, "out of memory for a %llu-byte body",
                            (unsigned long long)a->length);
        x->v2_direct = true;
        return 0;
    }
    if (a->length > SIZE_MAX - 1 || proto_buf_reserve(&x->text, (size_t)a->length + 1))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for a %llu-byte body",
                        (unsigned long long)a->length);
    return 0;
}

static int feed(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    if (x->v2_direct) {
        if (n > x->length - x->got) /* the transport enforces the length: a guard */
            return qdq_fail(err, QDQ_EINVAL, "body is longer than its Content-Length");
        memcpy(x->tbase + PROTO_TENSOR_OFF + x->got, data, n);
        x->got += n;
        return 0;
    }
    if (proto_buf_append(&x->text, data, n))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory receiving the body");
    return 0;
}

static int end(proto_xchg *x, proto_work *w, qdq_error *err)
{
    w->items = 1;
    w->bytes = x->v2_direct ? x->got : x->text.len;
    return 0;
}

/* Decode (JSON and binary framing), compute, encode, on one thread. */
static void run(proto_xchg *x, int i, int n, qdq_error *err)
{
    x->v2 = malloc(sizeof *x->v2);
    if (!x->v2) {
        qdq_fail(err, PROTO_ENOMEM, "out of memory");
        return;
    }
    proto_v2_request_init(x->v2);
    const proto_limits *lim = &x->host->lim;
    int rc;
    if (x->v2_direct)
        rc = proto_v2_decode_inplace(x->tbase + PROTO_TENSOR_OFF, x->got, x->v2_header_len, lim,
                                     x->v2, err);
    else
        rc = proto_v2_decode(x->text.data ? x->text.data : "", x->text.len, x->v2_header_len,
                             lim, x->v2, err);
    if (rc)
        return;
    proto_request *q = &x->v2->req;
    if (proto_run(q, lim, &x->res, err))
        return;
    x->elements = q->count;
    proto_buf_free(&x->text); /* the request body is no longer needed */
    proto_buf b = { 0 };
    size_t hlen = SIZE_MAX, split = SIZE_MAX;
    if (proto_v2_encode_split(x->v2, &x->res.plan, x->res.params, q->data, &b, &hlen, &split,
                              err)) {
        proto_buf_free(&b);
        return;
    }
    proto_answer *a = &x->ans;
    char *o = q->data;
    size_t obytes = q->count * qdq_dtype_size(q->dtype);
    if (split != SIZE_MAX && q->data_borrowed && (size_t)(o - x->tbase) >= split &&
        o + obytes + (b.len - split) <= x->tbase + x->tcap) {
        /* The output stays where it was computed: the JSON goes just before it, the binary
         * ranges just after (the request's header and bounds there are no longer needed). */
        memcpy(o - split, b.data, split);
        memcpy(o + obytes, b.data + split, b.len - split);
        size_t total = b.len + obytes;
        proto_buf_free(&b);
        if (proto_answer_take_buffer(x, a, o - split, total, err))
            return;
    } else if (split != SIZE_MAX) { /* no room around the output: one buffer with it all */
        proto_buf whole = { 0 };
        if (proto_buf_reserve(&whole, b.len + obytes) ||
            proto_buf_append(&whole, b.data, split) || proto_buf_append(&whole, o, obytes) ||
            proto_buf_append(&whole, b.data + split, b.len - split)) {
            proto_buf_free(&b), proto_buf_free(&whole);
            qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
            return;
        }
        proto_buf_free(&b);
        a->body = proto_buf_detach(&whole, &a->len);
    } else {
        a->body = proto_buf_detach(&b, &a->len);
    }
    if (hlen == SIZE_MAX) {
        a->ctype = "application/json";
    } else {
        char num[32];
        int k = snprintf(num, sizeof num, "%zu", hlen);
        a->ctype = "application/octet-stream";
        if (proto_answer_header(a, "Inference-Header-Content-Length", num, (size_t)k))
            qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
    }
}

static int answer(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    *a = x->ans;
    x->ans = (proto_answer){ 0 };
    return 0;
}

/* Binary tensors live in one buffer; JSON ones are text, decoded and encoded again. */
static uint64_t memory(const proto_xchg *x, uint64_t body)
{
    return x->format == PROTO_FMT_V2_BINARY ? proto_memory_buffer(body) + PROTO_TENSOR_OFF
                                            : proto_memory_text(body);
}

const proto_codec proto_codec_v2 = { .format = PROTO_FMT_V2_JSON, .begin = begin, .feed = feed,
                                     .end = end, .run = run, .answer = answer,
                                     .memory = memory };
