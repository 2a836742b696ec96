/*
 * libFuzzer target: the raw form's query string (proto_query_arg for each argument, then
 * proto_raw_finish with the body's length), then what the server does with the request: plan,
 * the op (in one call, split as the server splits it, and in the independent reference: the
 * same bits), the X-QDQ-* header
 * values and a .npy header for the answer.
 *
 * Input: the query string, optionally followed by a NUL byte and the body. Arguments are split
 * on '&' and '=' and handed over as libmicrohttpd does: already percent-decoded (here: taken as
 * they are), a key without '=' has the value "". Without a body part, the body is the size the
 * shape needs (up to 64 Ki elements; else 8 bytes), filled from a generator seeded by the
 * input, so that accepted queries reach the op.
 *
 * Empty tensors that name many channels: as in fuzz_json.c (plan_runnable, fuzz_common.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "qdq.h"

#include "fuzz_common.h"

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    x ^= x >> 29, x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 32;
    return x;
}

static void check_status(int rc, const qdq_error *err)
{
    REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_EMEDIA || rc == PROTO_ENOMEM,
            "unexpected status %d", rc);
    REQUIRE(err->msg[0] != '\0', "status %d without a message", rc);
}

/* The op in one call, then split; the header values and an npy header for the answer. */
static void run_op(const proto_request *q, const void *data, uint64_t seed)
{
    qdq_plan plan;
    qdq_error err = { 0 };
    if (qdq_plan_init(&plan, q->dtype, q->dims, q->rank, &q->attrs, &err)) {
        REQUIRE(err.code == QDQ_EINVAL && err.msg[0], "plan_init failed without a message");
        return;
    }
    REQUIRE(plan.count == q->count, "plan count %llu, request count %llu",
            (unsigned long long)plan.count, (unsigned long long)q->count);
    if (!plan_runnable(&plan))
        return;
    size_t bytes = (size_t)q->count * qdq_dtype_size(q->dtype);
    size_t accn = qdq_acc_size(&plan), parn = qdq_params_size(&plan);
    char *out = malloc(bytes + 1), *acc = malloc(accn + 1), *par = malloc(parn + 1);
    REQUIRE(out && acc && par, "out of memory");
    int rc = qdq_run(&plan, data, out, q->min, q->n_min, q->max, q->n_max, acc, par, &err);
    if (rc) {
        REQUIRE(rc == QDQ_EINVAL && err.msg[0], "qdq_run failed with %d and no message", rc);
        goto out;
    }
    uint64_t n = plan.count, k = n ? mix(seed) % (n + 1) : 0, j = n ? mix(seed + 7) % (n + 1) : 0;
    check_split(&plan, q, data, out, par, k, j);
    for (int which = 0; which < 6; which++) {
        proto_buf b = { 0 };
        REQUIRE(proto_ranges_format(&plan, par, which, &b) == 0, "ranges_format %d", which);
        /* One value per channel, comma-separated, no newlines (a header value). */
        size_t commas = 0;
        for (size_t i = 0; i < b.len; i++) {
            REQUIRE(b.data[i] != '\r' && b.data[i] != '\n' && b.data[i] != '\0',
                    "control byte in a header value");
            commas += b.data[i] == ',';
        }
        REQUIRE(plan.channels == 0 ? b.len == 0 : commas + 1 == plan.channels,
                "%zu values for %llu channels", b.len ? commas + 1 : 0,
                (unsigned long long)plan.channels);
        proto_buf_free(&b);
    }
    proto_buf b = { 0 };
    REQUIRE(proto_shape_format(q, &b) == 0, "shape_format");
    proto_buf_free(&b);
    REQUIRE(proto_npy_header_write(q, &b) == 0, "npy_header_write");
    REQUIRE(b.len % 64 == 0 && b.len >= 64, "npy header of %zu bytes", b.len);
    proto_buf_free(&b);
out:
    free(out), free(acc), free(par);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t qlen = nul ? (size_t)(nul - data) : size;
    char *query = malloc(qlen + 1);
    memcpy(query, data, qlen);
    query[qlen] = '\0';

    proto_request req;
    proto_request_init(&req);
    qdq_error err = { 0 };
    int rc = 0;
    uint8_t *gen = NULL;
    char *save = NULL;
    for (char *arg = strtok_r(query, "&", &save); arg && !rc; arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        const char *value = "";
        if (eq)
            *eq = '\0', value = eq + 1;
        rc = proto_query_arg(&req, arg, value, &LIMITS, &err);
        if (rc)
            check_status(rc, &err);
    }
    if (rc)
        goto done;

    /* The body. */
    const uint8_t *body = nul ? nul + 1 : NULL;
    size_t body_len = nul ? size - qlen - 1 : 8;
    if (!nul) {
        size_t es = qdq_dtype_size(req.dtype);
        if (req.shape_given && req.count <= LIMITS.max_elements)
            body_len = (size_t)req.count * es;
        gen = malloc(body_len + 1);
        uint64_t x = mix(size + 0x51);
        for (size_t i = 0; i < qlen; i++)
            x = mix(x ^ data[i]);
        for (size_t i = 0; i < body_len; i++) {
            x = mix(x + i);
            /* Mostly ordinary numbers; now and then special bit patterns (NaN, inf, zeros). */
            gen[i] = (i % es == es - 1 && (x & 0xf0) == 0) ? 0x7f | (uint8_t)(x & 0x80)
                                                          : (uint8_t)(x >> 8);
        }
        body = gen;
    }
    rc = proto_raw_finish(&req, body_len, &LIMITS, &err);
    if (rc) {
        check_status(rc, &err);
        goto done;
    }
    REQUIRE(req.count * qdq_dtype_size(req.dtype) == body_len, "count %llu for %zu bytes",
            (unsigned long long)req.count, body_len);
    REQUIRE(req.min_text == NULL && req.max_text == NULL, "bounds text left after finish");
    REQUIRE(req.count <= LIMITS.max_elements, "count over the limit");
    {
        /* The server's tensor buffer is its own (aligned) copy of the body. */
        void *t = malloc(body_len + 1);
        if (body_len)
            memcpy(t, body, body_len);
        run_op(&req, t, mix(size));
        free(t);
    }
done:
    free(gen);
    proto_request_clear(&req);
    free(query);
    return 0;
}
