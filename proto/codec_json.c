/*
 * The native JSON codec (docs/api.md, "JSON requests"): the body is kept whole, then decoded, computed
 * and encoded as one item of work (json_read.c, compute.c, json_write.c).
 */
#include <stdlib.h>

#include "codec_impl.h"

static int begin(proto_xchg *x, const proto_args *a, qdq_error *err)
{
    if (proto_args_nquery(a) > 0)
        return qdq_fail(err, QDQ_EINVAL, "JSON requests take their attributes in the body, not in "
                        "the query string");
    if (a->length != PROTO_LENGTH_UNKNOWN &&
        (a->length > SIZE_MAX - 1 || proto_buf_reserve(&x->text, (size_t)a->length + 1)))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for a %llu-byte body",
                        (unsigned long long)a->length);
    return 0;
}

static int feed(proto_xchg *x, const char *data, size_t n, qdq_error *err)
{
    if (proto_buf_append(&x->text, data, n))
        return qdq_fail(err, PROTO_ENOMEM, "out of memory receiving the body");
    return 0;
}

static int end(proto_xchg *x, proto_work *w, qdq_error *err)
{
    w->items = 1;
    w->bytes = x->text.len;
    return 0;
}

/* Decode, compute, encode, on one thread. */
static void run(proto_xchg *x, int i, int n, qdq_error *err)
{
    proto_request *q = &x->req;
    if (proto_json_decode(x->text.data ? x->text.data : "", x->text.len, &x->host->lim, q, err))
        return;
    proto_buf_free(&x->text);
    if (proto_run(q, &x->host->lim, &x->res, err))
        return;
    proto_buf b = { 0 };
    if (proto_json_encode(q, &x->res.plan, x->res.params, q->data, &b, err)) {
        proto_buf_free(&b);
        return;
    }
    x->elements = q->count;
    x->ans.body = proto_buf_detach(&b, &x->ans.len);
    x->ans.ctype = "application/json";
}

static int answer(proto_xchg *x, proto_answer *a, qdq_error *err)
{
    *a = x->ans;
    x->ans = (proto_answer){ 0 };
    return 0;
}

static uint64_t memory(const proto_xchg *x, uint64_t body) { return proto_memory_text(body); }

const proto_codec proto_codec_json = { .format = PROTO_FMT_JSON, .begin = begin, .feed = feed,
                                       .end = end, .run = run, .answer = answer,
                                       .memory = memory };
