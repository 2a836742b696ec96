/*
 * libFuzzer target: KServe v2 over gRPC, the request decoding (proto_v2_grpc_decode) as
 * server/grpc.c drives it, then the model (proto_run) and the response encoding
 * (proto_v2_grpc_encode); also the small RPCs' request checks.
 *
 * Input: a serialized ModelInferRequest. It is decoded from two places in memory: where
 * proto_v2_grpc_input_skew says (the input tensor then needs no move), and 3 bytes further (it
 * usually does); a first byte below 0x80 also takes it from 8-aligned memory.
 *
 * Asserted, besides the sanitizers' checks:
 *   - a failure carries a status of the decoder's set and a message, and leaves the request
 *     cleared;
 *   - a success is consistent: rank within the limit, dims whose product is count, count within
 *     max_elements, data for a non-empty tensor (inside the message's buffer when borrowed, and
 *     8-aligned there for FP64, 4 for FP32, 2 for FP16/BF16), outputs among the model's, an id
 *     that is NUL-terminated UTF-8;
 *   - both placements decode to the same request (dtype, shape, data bytes, attributes, bounds,
 *     id, outputs);
 *   - the op gives the same bits in one call and split as the server splits it;
 *   - the encoded response (prefix + output bytes + rest) parses back with protobuf-c into the
 *     selected outputs in model order with one raw_output_contents entry each, the output's
 *     bytes being the op's.
 *
 * Empty tensors naming more channels than max_elements (up to FUZZ_MAX_CHANNELS, fuzz_common.h)
 * go through the op directly, and proto_run must refuse them with PROTO_ETOOBIG (the server
 * answers RESOURCE_EXHAUSTED).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_predict_v2.pb-c.h"
#include "kserve.h"
#include "proto.h"
#include "qdq.h"
#include "v2_grpc.h"
#include "codec.h"

#include "fuzz_common.h"

static const char *const out_names[7] = { "output",     "input_min", "input_max", "output_min",
                                          "output_max", "scale",     "inverse_scale" };

static void check_status(int rc, const qdq_error *err)
{
    REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_ENOMEM ||
                rc == PROTO_ENOTFOUND,
            "unexpected status %d", rc);
    REQUIRE(err->msg[0] != '\0', "status %d without a message", rc);
}

static void check_request(const proto_v2_request *v, const char *buf, size_t cap)
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
    size_t es = qdq_dtype_size(q->dtype);
    REQUIRE(es != 0, "dtype %d", (int)q->dtype);
    REQUIRE(q->data != NULL, "no data");
    REQUIRE((uintptr_t)q->data % es == 0, "data at %p not aligned for %zu-byte items", q->data,
            es);
    if (q->data_borrowed)
        REQUIRE((const char *)q->data >= buf &&
                    (const char *)q->data + q->count * es <= buf + cap,
                "borrowed data outside the message's buffer");
    REQUIRE((v->outputs & ~(unsigned)PROTO_V2_OUT_ALL) == 0 && v->outputs != 0, "outputs %#x",
            v->outputs);
    REQUIRE(memchr(v->id, 0, sizeof v->id) != NULL, "id not terminated");
    for (const unsigned char *u = (const unsigned char *)v->id; *u;) {
        size_t n = proto_utf8_len(u, SIZE_MAX);
        REQUIRE(n != 0, "id is not UTF-8");
        u += n;
    }
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
           a->has_id == b->has_id && !strcmp(a->id, b->id) && a->outputs == b->outputs;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return x;
}

/* The op (checked split against qdq_run), then the encoder, parsed back. */
static void run_and_encode(proto_v2_request *v, uint64_t seed)
{
    proto_request *q = &v->req;
    qdq_plan plan;
    qdq_error err = { 0 };
    if (qdq_plan_init(&plan, q->dtype, q->dims, q->rank, &q->attrs, &err)) {
        REQUIRE(err.code == QDQ_EINVAL && err.msg[0], "plan_init failed without a message");
        return;
    }
    if (!plan_runnable(&plan))
        return;
    size_t bytes = (size_t)q->count * qdq_dtype_size(q->dtype);
    char *in = malloc(bytes + 1), *out = malloc(bytes + 1);
    size_t accn = qdq_acc_size(&plan), parn = qdq_params_size(&plan);
    char *acc = malloc(accn + 1), *par = malloc(parn + 1);
    REQUIRE(in && out && acc && par, "out of memory");
    memcpy(in, q->data, bytes);
    qdq_error e2 = { 0 };
    int rc0 = qdq_run(&plan, in, out, q->min, q->n_min, q->max, q->n_max, acc, par, &e2);

    proto_result res;
    memset(&err, 0, sizeof err);
    int rc = proto_run(&v->req, &LIMITS, &res, &err);
    if (plan.channels > LIMITS.max_elements) {
        /* The server's bound, not the op's: proto_run refuses before it runs (codec.h). */
        REQUIRE(rc == PROTO_ETOOBIG && strstr(err.msg, "channels") && res.acc == NULL &&
                    res.params == NULL,
                "%llu channels over the limit: proto_run %d (%s)",
                (unsigned long long)plan.channels, rc, err.msg);
        goto out;
    }
    REQUIRE(rc == rc0, "proto_v2_run %d (%s), qdq_run %d (%s)", rc, err.msg, rc0, e2.msg);
    if (rc) {
        REQUIRE(rc == QDQ_EINVAL && err.msg[0], "proto_v2_run failed with %d and no message", rc);
        REQUIRE(res.acc == NULL && res.params == NULL, "a failed run left memory");
        goto out;
    }
    REQUIRE(bytes == 0 || !memcmp(out, q->data, bytes), "proto_v2_run differs from qdq_run");
    uint64_t n = plan.count, k = n ? mix(seed) % (n + 1) : 0, j = n ? mix(seed + 5) % (n + 1) : 0;
    check_split(&plan, q, in, out, par, k, j);

    proto_buf b = { 0 };
    size_t split = SIZE_MAX;
    rc = proto_v2_grpc_encode(v, &res, &b, &split, &err);
    REQUIRE(rc == 0, "encode failed: %d %s", rc, err.msg);
    bool has_out = (v->outputs & PROTO_V2_OUT_OUTPUT) != 0;
    REQUIRE(has_out == (split != SIZE_MAX), "split %zu with outputs %#x", split, v->outputs);
    proto_buf whole = { 0 };
    if (has_out) {
        REQUIRE(split <= b.len, "split %zu past %zu", split, b.len);
        REQUIRE(!proto_buf_append(&whole, b.data, split) &&
                    !proto_buf_append(&whole, q->data, bytes) &&
                    !proto_buf_append(&whole, b.data + split, b.len - split),
                "out of memory");
    } else {
        REQUIRE(!proto_buf_append(&whole, b.data, b.len), "out of memory");
    }
    Inference__ModelInferResponse *m = inference__model_infer_response__unpack(
        NULL, whole.len, whole.len ? (const uint8_t *)whole.data : (const uint8_t *)"");
    REQUIRE(m != NULL, "the response does not parse");
    REQUIRE(m->n_outputs == m->n_raw_output_contents, "%zu outputs, %zu raw contents",
            m->n_outputs, m->n_raw_output_contents);
    REQUIRE(!strcmp(m->model_name, PROTO_V2_MODEL_NAME) && !strcmp(m->id, v->id), "names");
    size_t i = 0;
    for (int o = 0; o < 7; o++) {
        if (!(v->outputs & (1u << o)))
            continue;
        REQUIRE(i < m->n_outputs && !strcmp(m->outputs[i]->name, out_names[o]),
                "output %zu is not %s", i, out_names[o]);
        size_t want = o == 0 ? bytes : (size_t)plan.channels * (q->dtype == QDQ_FLOAT64 ? 8 : 4);
        REQUIRE(m->raw_output_contents[i].len == want, "%s has %zu bytes, want %zu",
                out_names[o], m->raw_output_contents[i].len, want);
        if (o == 0)
            REQUIRE(bytes == 0 || !memcmp(m->raw_output_contents[i].data, out, bytes),
                    "the output's bytes are not the op's");
        i++;
    }
    REQUIRE(i == m->n_outputs, "%zu outputs, %zu selected", m->n_outputs, i);
    inference__model_infer_response__free_unpacked(m, NULL);
    proto_buf_free(&whole);
    proto_buf_free(&b);
    proto_result_clear(&res);
out:
    free(in), free(out), free(acc), free(par);
}

/* Decodes data from buf + off (buf: 8-aligned, off + size + 8 bytes). */
static int decode_at(char *buf, size_t off, const uint8_t *data, size_t size,
                     proto_v2_request *v, qdq_error *err)
{
    if (size)
        memcpy(buf + off, data, size);
    int rc = proto_v2_grpc_decode(buf + off, size, &LIMITS, v, err);
    if (rc) {
        check_status(rc, err);
        REQUIRE(v->req.data == NULL && v->req.min == NULL && v->req.max == NULL,
                "a failed decode left memory in the request");
    } else {
        check_request(v, buf, off + size);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pad = (8 - proto_v2_grpc_input_skew((const char *)data, size)) % 8;
    char *b1 = aligned_alloc(8, (size + 24) / 8 * 8), *b2 = aligned_alloc(8, (size + 24) / 8 * 8);
    REQUIRE(b1 && b2, "out of memory");
    proto_v2_request a, b;
    qdq_error err = { 0 }, err2 = { 0 };
    int rc = decode_at(b1, pad, data, size, &a, &err);
    int rc2 = decode_at(b2, size && data[0] < 0x80 ? 0 : 3, data, size, &b, &err2);
    REQUIRE(rc == rc2, "decode %d (%s) here, %d (%s) there", rc, err.msg, rc2, err2.msg);
    if (rc == 0) {
        REQUIRE(same_request(&a, &b), "two placements decode differently");
        if (a.req.form == PROTO_FORM_RAW)
            REQUIRE(a.req.data_borrowed, "a raw input was copied");
        run_and_encode(&a, mix(size));
    }
    proto_v2_request_clear(&a);
    proto_v2_request_clear(&b);
    free(b1);
    free(b2);

    /* The small RPCs' checks take the same bytes. */
    qdq_error e3 = { 0 }, e4 = { 0 };
    int r3 = proto_v2_grpc_model_check((const char *)data, size, &e3);
    REQUIRE(r3 == 0 || ((r3 == QDQ_EINVAL || r3 == PROTO_ENOTFOUND) && e3.msg[0]),
            "model_check %d", r3);
    int r4 = proto_v2_grpc_health_check((const char *)data, size, &e4);
    REQUIRE(r4 == 0 || ((r4 == QDQ_EINVAL || r4 == PROTO_ENOTFOUND) && e4.msg[0]),
            "health_check %d", r4);
    return 0;
}
