/*
 * libFuzzer target: the native JSON decoder (proto_json_decode), then what the server does with
 * a decoded request: plan, run, encode.
 *
 * Besides the sanitizers' checks, it asserts:
 *   - a failure carries a status code the server maps and a non-empty message;
 *   - a success is a consistent request: rank within the cap, dims whose product is count,
 *     count within max_elements, data present for a non-empty tensor, bounds that are arrays;
 *   - the op gives the same bits whether it runs in one call (qdq_run) or split the way the
 *     server splits it (reduce in two pieces and merge, apply in two pieces), and the same bits
 *     as the independent reference (tests/lib/ref.h);
 *   - the encoder succeeds on every request the decoder accepted and the op ran.
 *
 * The server's limits are smaller here so that one input stays fast (64 Ki elements, rank 32,
 * depth 64). An empty tensor may name more channels than that: every plan's state sizes are
 * checked, and the op runs on up to FUZZ_MAX_CHANNELS of them (fuzz_common.h; the server
 * answers more than --max-elements with 413, as tests/http/test_hostile.c checks in every
 * format).
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
    return x;
}

/* The op in one call, then split as the server splits it; both must give the same bits. */
static void run_op(const proto_request *q, uint64_t seed)
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
    size_t es = qdq_dtype_size(q->dtype), bytes = (size_t)q->count * es;
    size_t accn = qdq_acc_size(&plan), parn = qdq_params_size(&plan);
    char *out = malloc(bytes + 1), *acc = malloc(accn + 1), *par = malloc(parn + 1);
    REQUIRE(out && acc && par, "out of memory");
    int rc = qdq_run(&plan, q->data, out, q->min, q->n_min, q->max, q->n_max, acc, par, &err);
    if (rc == 0) {
        uint64_t n = plan.count, k = n ? mix(seed) % (n + 1) : 0, j = n ? mix(seed + 1) % (n + 1) : 0;
        check_split(&plan, q, q->data, out, par, k, j);
        proto_buf b = { 0 };
        rc = proto_json_encode(q, &plan, par, out, &b, &err);
        REQUIRE(rc == 0, "encode failed: %d %s", rc, err.msg);
        REQUIRE(b.len > 0 && b.data[0] == '{' && b.data[b.len - 1] == '}', "encoded %zu bytes",
                b.len);
        proto_buf_free(&b);
    } else {
        REQUIRE(rc == QDQ_EINVAL && err.msg[0], "qdq_run failed with %d and no message", rc);
    }
    free(out), free(acc), free(par);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_request req;
    proto_request_init(&req);
    qdq_error err = { 0 };
    /* The server hands the decoder the exact body: no NUL terminator to lean on. */
    char *body = malloc(size ? size : 1);
    if (size)
        memcpy(body, data, size);
    int rc = proto_json_decode(body, size, &LIMITS, &req, &err);
    if (rc) {
        REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_EMEDIA ||
                rc == PROTO_ENOMEM, "unexpected status %d", rc);
        REQUIRE(err.msg[0] != '\0', "status %d without a message", rc);
        REQUIRE(strlen(err.msg) < sizeof err.msg, "message not terminated");
    } else {
        REQUIRE(req.rank >= 0 && req.rank <= LIMITS.max_rank, "rank %d", req.rank);
        uint64_t count = 1;
        for (int i = 0; i < req.rank; i++) {
            REQUIRE(req.dims[i] >= 0, "dims[%d] = %lld", i, (long long)req.dims[i]);
            count *= (uint64_t)req.dims[i];
        }
        REQUIRE(count == req.count, "product of dims %llu, count %llu",
                (unsigned long long)count, (unsigned long long)req.count);
        REQUIRE(req.count <= LIMITS.max_elements, "count %llu over the limit",
                (unsigned long long)req.count);
        REQUIRE(req.count == 0 || req.data, "no data for %llu elements",
                (unsigned long long)req.count);
        REQUIRE((req.n_min == 0 || req.min) && (req.n_max == 0 || req.max),
                "bounds counts without arrays");
        REQUIRE(req.form == PROTO_FORM_NESTED || req.form == PROTO_FORM_DATA ||
                req.form == PROTO_FORM_B64, "form %d", (int)req.form);
        run_op(&req, (uint64_t)size * 0x9e3779b97f4a7c15ull + (size ? data[0] : 0));
    }
    proto_request_clear(&req);
    free(body);
    return 0;
}
