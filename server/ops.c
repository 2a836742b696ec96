/*
 * The work of a request: tensor set-up while the body arrives (raw, npy), the min/max folded
 * into the receive copy, and the job items that run inline or on the pool.
 */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

/* Allocates accumulators and parameters for r->plan. 0, or -1 with the failure recorded. */
static int alloc_state(srv_req *r)
{
    /* An empty tensor may still name a huge channel dimension: bound it like the elements. */
    if (r->plan.channels > r->s->limits.max_elements) {
        r->fail_http = 413;
        snprintf(r->fail_msg, sizeof r->fail_msg, "axis %lld has %llu channels, over the limit "
                 "of %llu (--max-elements)", (long long)r->plan.attrs.axis,
                 (unsigned long long)r->plan.channels,
                 (unsigned long long)r->s->limits.max_elements);
        return -1;
    }
    r->acc = malloc(qdq_acc_size(&r->plan) + 1);
    r->params = malloc(qdq_params_size(&r->plan) + 1);
    if (!r->acc || !r->params) {
        r->fail_http = 503;
        snprintf(r->fail_msg, sizeof r->fail_msg, "out of memory for %llu channels",
                 (unsigned long long)r->plan.channels);
        return -1;
    }
    qdq_acc_init(&r->plan, r->acc);
    return 0;
}

/* Records a failure from core or proto. */
static int fail(srv_req *r, int code, const qdq_error *err)
{
    r->fail_code = code;
    snprintf(r->fail_msg, sizeof r->fail_msg, "%s", err->msg);
    return -1;
}

int srv_ops_tensor_setup(srv_req *r)
{
    qdq_error err = { 0 };
    proto_request *q = &r->preq;
    int rc = qdq_plan_init(&r->plan, q->dtype, q->dims, q->rank, &q->attrs, &err);
    if (rc)
        return fail(r, rc, &err);
    r->tlen = q->count * qdq_dtype_size(q->dtype);
    if (r->tlen > r->s->limits.max_body) { /* e.g. a .npy header that promises too much */
        r->fail_http = 413;
        snprintf(r->fail_msg, sizeof r->fail_msg, "the tensor's %llu bytes are over the limit of "
                 "%llu bytes (--max-body-bytes)", (unsigned long long)r->tlen,
                 (unsigned long long)r->s->limits.max_body);
        return -1;
    }
    if (alloc_state(r))
        return -1;
    if (q->attrs.range_given) {
        rc = qdq_params_given(&r->plan, q->min, q->n_min, q->max, q->n_max, r->params, &err);
        if (rc)
            return fail(r, rc, &err);
    }
    r->tbase = srv_buf_get(SRV_TENSOR_OFF + r->tlen, &r->tcap);
    if (!r->tbase) {
        r->fail_http = 503;
        snprintf(r->fail_msg, sizeof r->fail_msg, "out of memory for a %llu-byte tensor",
                 (unsigned long long)r->tlen);
        return -1;
    }
    r->tensor_ready = true;
    return 0;
}

/*
 * Copies body bytes into the tensor and folds the complete elements: into the min/max when the
 * range comes from the data, or straight through the op when the range is given (the bytes are
 * still in cache).
 */
int srv_ops_tensor_feed(srv_req *r, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (n > r->tlen - r->got) {
        r->fail_code = QDQ_EINVAL;
        snprintf(r->fail_msg, sizeof r->fail_msg,
                 "body is longer than the tensor: shape needs %llu bytes of data",
                 (unsigned long long)r->tlen);
        return -1;
    }
    char *t = r->tbase + SRV_TENSOR_OFF;
    memcpy(t + r->got, data, n);
    r->got += n;
    uint64_t complete = r->got / qdq_dtype_size(r->preq.dtype);
    if (complete <= r->done_elems)
        return 0;
    if (r->preq.attrs.range_given) {
        qdq_apply(&r->plan, r->params, t, t, r->done_elems, complete);
        r->done_elems = complete;
        return 0;
    }
    /* On the last axis a call folds every channel into the accumulator once: the reduction waits
     * for 32 rows (or the end), so that costs 1/32 of the work or less, where a 32 KiB chunk is 2
     * rows of 4096 float32 (the reduction of such a tensor in 32 KiB chunks took 5x its time in
     * one call; in batches of 32 rows 1.15x). */
    uint64_t batch = r->plan.inner == 1 && r->plan.channels > 1 ? 32 * r->plan.channels : 1;
    if (complete - r->done_elems >= batch || complete == r->plan.count) {
        qdq_reduce(&r->plan, r->acc, t, r->done_elems, complete);
        r->done_elems = complete;
    }
    return 0;
}

/* The element range of item i of n, split on 64-byte boundaries. */
static void item_range(const srv_req *r, int i, int n, uint64_t *b, uint64_t *e)
{
    uint64_t count = r->plan.count, per = 64 / qdq_dtype_size(r->plan.dtype);
    uint64_t blocks = (count + per - 1) / per;
    *b = blocks * (uint64_t)i / (uint64_t)n * per;
    *e = blocks * (uint64_t)(i + 1) / (uint64_t)n * per;
    if (*b > count)
        *b = count;
    if (*e > count)
        *e = count;
}

/* The op on a decoded request, in place on its data. 0, or -1 with the failure recorded. */
static int compute(srv_req *r, proto_request *q)
{
    qdq_error err = { 0 };
    int rc = qdq_plan_init(&r->plan, q->dtype, q->dims, q->rank, &q->attrs, &err);
    if (rc)
        return fail(r, rc, &err);
    if (alloc_state(r))
        return -1;
    rc = qdq_run(&r->plan, q->data, q->data, q->min, q->n_min, q->max, q->n_max, r->acc,
                 r->params, &err);
    return rc ? fail(r, rc, &err) : 0;
}

/* The whole JSON request: decode, compute, encode, on one thread. */
static void run_json(srv_req *r)
{
    qdq_error err = { 0 };
    proto_request *q = &r->preq;
    int rc = proto_json_decode(r->text.data ? r->text.data : "", r->text.len, &r->s->limits, q,
                               &err);
    if (rc) {
        fail(r, rc, &err);
        return;
    }
    if (compute(r, q))
        return;
    proto_buf b = { 0 };
    rc = proto_json_encode(q, &r->plan, r->params, q->data, &b, &err);
    if (rc) {
        proto_buf_free(&b);
        fail(r, rc, &err);
        return;
    }
    r->body = proto_buf_detach(&b, &r->body_len);
    r->status = 200;
    r->ctype = "application/json";
}

/* A KServe v2 inference: decode (JSON and binary framing), compute, encode, on one thread. */
static void run_v2(srv_req *r)
{
    qdq_error err = { 0 };
    r->v2 = malloc(sizeof *r->v2);
    if (!r->v2) {
        r->fail_http = 503;
        snprintf(r->fail_msg, sizeof r->fail_msg, "out of memory");
        return;
    }
    proto_v2_request_init(r->v2);
    int rc;
    if (r->v2_direct)
        rc = proto_v2_decode_inplace(r->tbase + SRV_TENSOR_OFF, r->got, r->v2_header_len,
                                     &r->s->limits, r->v2, &err);
    else
        rc = proto_v2_decode(r->text.data ? r->text.data : "", r->text.len, r->v2_header_len,
                             &r->s->limits, r->v2, &err);
    if (rc) {
        fail(r, rc, &err);
        return;
    }
    proto_request *q = &r->v2->req;
    if (compute(r, q))
        return;
    proto_buf_free(&r->text); /* the request body is no longer needed */
    proto_buf b = { 0 };
    size_t hlen = SIZE_MAX, split = SIZE_MAX;
    rc = proto_v2_encode_split(r->v2, &r->plan, r->params, q->data, &b, &hlen, &split, &err);
    if (rc) {
        proto_buf_free(&b);
        fail(r, rc, &err);
        return;
    }
    char *o = q->data;
    size_t obytes = q->count * qdq_dtype_size(q->dtype);
    if (split != SIZE_MAX && q->data_borrowed && (size_t)(o - r->tbase) >= split &&
        o + obytes + (b.len - split) <= r->tbase + r->tcap) {
        /* The output stays where it was computed: the JSON goes just before it, the binary
         * ranges just after (the request's header and bounds there are no longer needed). */
        memcpy(o - split, b.data, split);
        memcpy(o + obytes, b.data + split, b.len - split);
        size_t total = b.len + obytes;
        proto_buf_free(&b);
        if (srv_req_body_from_buffer(r, o - split, total))
            return;
    } else if (split != SIZE_MAX) { /* no room around the output: one buffer with it all */
        proto_buf whole = { 0 };
        if (proto_buf_reserve(&whole, b.len + obytes) ||
            proto_buf_append(&whole, b.data, split) || proto_buf_append(&whole, o, obytes) ||
            proto_buf_append(&whole, b.data + split, b.len - split)) {
            proto_buf_free(&b), proto_buf_free(&whole);
            r->fail_http = 503;
            snprintf(r->fail_msg, sizeof r->fail_msg, "out of memory encoding the response");
            return;
        }
        proto_buf_free(&b);
        r->body = proto_buf_detach(&whole, &r->body_len);
    } else {
        r->body = proto_buf_detach(&b, &r->body_len);
    }
    r->status = 200;
    if (hlen == SIZE_MAX) {
        r->ctype = "application/json";
    } else {
        char n[32];
        int k = snprintf(n, sizeof n, "%zu", hlen);
        r->ctype = "application/octet-stream";
        srv_req_header(r, "Inference-Header-Content-Length", n, (size_t)k);
    }
}

void srv_ops_run(srv_req *r, int item)
{
    if (r->job == SRV_JOB_JSON) {
        run_json(r);
        return;
    }
    if (r->job == SRV_JOB_V2) {
        run_v2(r);
        return;
    }
    uint64_t b, e;
    item_range(r, item, r->items, &b, &e);
    char *t = r->tbase + SRV_TENSOR_OFF;
    if (b < e)
        qdq_apply(&r->plan, r->params, t, t, b, e);
}

void srv_ops_finish(srv_req *r)
{
    if (r->fail_code || r->fail_http) {
        srv_req_fail(r, r->fail_http ? r->fail_http : srv_http_status(r->fail_code), "%s",
                     r->fail_msg);
        return;
    }
    if (r->job == SRV_JOB_APPLY)
        srv_req_respond_tensor(r);
}
