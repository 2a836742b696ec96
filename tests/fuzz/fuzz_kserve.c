/*
 * libFuzzer target: the KServe v2 / Triton decoder (proto_v2_decode and proto_v2_decode_inplace)
 * and encoder (proto_v2_encode, proto_v2_encode_split), as server/ops.c run_v2 drives them.
 *
 * Input: a request body. It is decoded with three Inference-Header-Content-Length values: none
 * (the whole body is JSON), the end of the first JSON object in it (so "JSON, then binary
 * tensor data" seeds reach the binary framing), and one derived from the last byte (any value,
 * past the end included).
 *
 * Asserted, besides the sanitizers' checks:
 *   - a failure carries a mapped status and a message, and leaves the request cleared;
 *   - a success is consistent: rank within the limit, dims whose product is count, count within
 *     max_elements, data for a non-empty tensor, outputs only among the model's, binary outputs
 *     among the requested, an id that is NUL-terminated;
 *   - decode and decode_inplace agree on everything (dtype, shape, data bytes, attributes,
 *     bounds, id, outputs);
 *   - the op gives the same bits in one call, split as the server splits it, and in the
 *     independent reference (tests/lib/ref.h);
 *   - encode and encode_split + the output's bytes give the same response, and the reported
 *     header length is where the JSON ends.
 *
 * Empty tensors that name many channels: as in fuzz_json.c (plan_runnable, fuzz_common.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kserve.h"
#include "proto.h"
#include "qdq.h"

#include "fuzz_common.h"

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return x;
}

/* Where the first JSON object of p ends (just past its '}'), or 0. */
static size_t json_end(const uint8_t *p, size_t n)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
            if (depth < 0)
                return 0;
        }
    }
    return 0;
}

static void check_status(int rc, const qdq_error *err)
{
    REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_EMEDIA || rc == PROTO_ENOMEM,
            "unexpected status %d", rc);
    REQUIRE(err->msg[0] != '\0', "status %d without a message", rc);
}

static void check_request(const proto_v2_request *v)
{
    const proto_request *q = &v->req;
    REQUIRE(q->rank >= 0 && q->rank <= LIMITS.max_rank, "rank %d", q->rank);
    uint64_t count = 1;
    for (int i = 0; i < q->rank; i++) {
        REQUIRE(q->dims[i] >= 0, "dims[%d] = %lld", i, (long long)q->dims[i]);
        count *= (uint64_t)q->dims[i];
    }
    REQUIRE(count == q->count, "product of dims %llu, count %llu", (unsigned long long)count,
            (unsigned long long)q->count);
    REQUIRE(q->count <= LIMITS.max_elements, "count %llu", (unsigned long long)q->count);
    REQUIRE(q->count == 0 || q->data, "no data for %llu elements", (unsigned long long)q->count);
    REQUIRE(qdq_dtype_size(q->dtype) != 0, "dtype %d", (int)q->dtype);
    REQUIRE((v->outputs & ~(unsigned)PROTO_V2_OUT_ALL) == 0 && v->outputs != 0,
            "outputs %#x", v->outputs);
    REQUIRE((v->binary_outputs & ~v->outputs) == 0, "binary outputs %#x not among %#x",
            v->binary_outputs, v->outputs);
    REQUIRE(memchr(v->id, 0, sizeof v->id) != NULL, "id not terminated");
    REQUIRE((q->n_min == 0 || q->min) && (q->n_max == 0 || q->max), "bounds without arrays");
}

static bool same_request(const proto_v2_request *a, const proto_v2_request *b)
{
    const proto_request *x = &a->req, *y = &b->req;
    size_t es = qdq_dtype_size(x->dtype);
    return x->dtype == y->dtype && x->rank == y->rank && x->count == y->count &&
           !memcmp(x->dims, y->dims, (size_t)x->rank * sizeof x->dims[0]) &&
           (x->count == 0 || !memcmp(x->data, y->data, (size_t)x->count * es)) &&
           !memcmp(&x->attrs, &y->attrs, sizeof x->attrs) && x->n_min == y->n_min &&
           x->n_max == y->n_max && (!x->n_min || !memcmp(x->min, y->min, x->n_min * es)) &&
           (!x->n_max || !memcmp(x->max, y->max, x->n_max * es)) && x->form == y->form &&
           a->has_id == b->has_id && !strcmp(a->id, b->id) && a->outputs == b->outputs &&
           a->binary_outputs == b->binary_outputs;
}

/* The op, checked split, then both encoders. */
static void run_and_encode(const proto_v2_request *v, uint64_t seed)
{
    const proto_request *q = &v->req;
    qdq_plan plan;
    qdq_error err = { 0 };
    if (qdq_plan_init(&plan, q->dtype, q->dims, q->rank, &q->attrs, &err)) {
        REQUIRE(err.code == QDQ_EINVAL && err.msg[0], "plan_init failed without a message");
        return;
    }
    if (!plan_runnable(&plan))
        return;
    size_t bytes = (size_t)q->count * qdq_dtype_size(q->dtype);
    size_t accn = qdq_acc_size(&plan), parn = qdq_params_size(&plan);
    char *out = malloc(bytes + 1), *acc = malloc(accn + 1), *par = malloc(parn + 1);
    REQUIRE(out && acc && par, "out of memory");
    int rc = qdq_run(&plan, q->data, out, q->min, q->n_min, q->max, q->n_max, acc, par, &err);
    if (rc) {
        REQUIRE(rc == QDQ_EINVAL && err.msg[0], "qdq_run failed with %d and no message", rc);
        goto out;
    }
    uint64_t n = plan.count, k = n ? mix(seed) % (n + 1) : 0, j = n ? mix(seed + 5) % (n + 1) : 0;
    check_split(&plan, q, q->data, out, par, k, j);

    proto_buf full = { 0 }, part = { 0 };
    size_t hl = 0, hl2 = 0, split = 0;
    rc = proto_v2_encode(v, &plan, par, out, &full, &hl, &err);
    REQUIRE(rc == 0, "encode failed: %d %s", rc, err.msg);
    REQUIRE(full.len && full.data[0] == '{', "encoded %zu bytes", full.len);
    if (hl == SIZE_MAX) {
        REQUIRE(full.data[full.len - 1] == '}', "a JSON-only response does not end in '}'");
        REQUIRE(v->binary_outputs == 0, "JSON-only response with binary outputs %#x",
                v->binary_outputs);
    } else {
        REQUIRE(hl <= full.len && full.data[hl - 1] == '}', "header length %zu of %zu", hl,
                full.len);
        REQUIRE(v->binary_outputs != 0, "binary framing without binary outputs");
    }
    rc = proto_v2_encode_split(v, &plan, par, out, &part, &hl2, &split, &err);
    REQUIRE(rc == 0, "encode_split failed: %d %s", rc, err.msg);
    REQUIRE(hl2 == hl, "encode_split header length %zu, encode %zu", hl2, hl);
    if (split == SIZE_MAX) {
        REQUIRE(part.len == full.len && !memcmp(part.data, full.data, full.len),
                "encode_split without a binary output differs from encode");
    } else {
        REQUIRE(split == hl && split <= part.len && part.len + bytes == full.len &&
                !memcmp(part.data, full.data, split) &&
                (bytes == 0 || !memcmp(full.data + split, out, bytes)) &&
                !memcmp(part.data + split, full.data + split + bytes, part.len - split),
                "encode_split (split %zu, %zu bytes) + output (%zu bytes) != encode (%zu bytes)",
                split, part.len, bytes, full.len);
    }
    proto_buf_free(&full);
    proto_buf_free(&part);
out:
    free(out), free(acc), free(par);
}

static void one(const uint8_t *data, size_t size, size_t header_len)
{
    proto_v2_request a, b;
    qdq_error err = { 0 }, err2 = { 0 };
    char *body = malloc(size ? size : 1), *body2 = malloc(size ? size : 1);
    if (size) {
        memcpy(body, data, size);
        memcpy(body2, data, size);
    }
    int rc = proto_v2_decode(body, size, header_len, &LIMITS, &a, &err);
    int rc2 = proto_v2_decode_inplace(body2, size, header_len, &LIMITS, &b, &err2);
    REQUIRE(rc == rc2, "decode %d (%s), decode_inplace %d (%s)", rc, err.msg, rc2, err2.msg);
    if (rc) {
        check_status(rc, &err);
        REQUIRE(a.req.data == NULL && a.req.min == NULL && a.req.max == NULL,
                "a failed decode left memory in the request");
    } else {
        check_request(&a);
        check_request(&b);
        REQUIRE(same_request(&a, &b), "decode and decode_inplace disagree");
        run_and_encode(&a, mix(size ^ header_len));
    }
    proto_v2_request_clear(&a);
    proto_v2_request_clear(&b);
    free(body);
    free(body2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, SIZE_MAX);
    size_t end = json_end(data, size);
    if (end && end < size)
        one(data, size, end);
    if (size)
        one(data, size, (size_t)(mix(data[size - 1]) % (size + 3)));
    return 0;
}
