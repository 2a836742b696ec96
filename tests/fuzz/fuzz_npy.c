/*
 * libFuzzer target: the .npy decoder (proto_npy_header_parse) as the server drives it, then the
 * op and the answer's header.
 *
 * Input: a .npy file, optionally preceded by "?QUERY\n" (the query string's arguments, split on
 * '&' and '=' as in fuzz_query.c: dtype=bfloat16, bounds, attributes).
 *
 * The server parses the header again each time body bytes arrive, with the file's length when
 * Content-Length was given (else unknown). Asserted, besides the sanitizers' checks:
 *   - a failure carries a mapped status and a message; PROTO_EAGAIN only while the header is
 *     incomplete;
 *   - a file that parses whole also parses from every prefix that holds its header (same data
 *     offset, shape and dtype), and every shorter prefix asks for more bytes (PROTO_EAGAIN), so a
 *     valid file is never refused for arriving in pieces; with the length unknown it parses too;
 *   - the request is consistent (dims product = count, within the limits, data length right);
 *   - the op gives the same bits in one call, split as the server splits it, and in the
 *     independent reference (tests/lib/ref.h);
 *   - the answer's header (proto_npy_header_write) parses back to the same dtype, shape, version
 *     and bfloat16 spelling.
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
    return x;
}

static void check_status(int rc, const qdq_error *err)
{
    REQUIRE(rc == QDQ_EINVAL || rc == PROTO_ETOOBIG || rc == PROTO_EMEDIA || rc == PROTO_ENOMEM ||
            rc == PROTO_EAGAIN, "unexpected status %d", rc);
    REQUIRE(err->msg[0] != '\0', "status %d without a message", rc);
}

/* A fresh request with the query's arguments applied: 0, or the first argument's failure. */
static int fresh(proto_request *req, const char *query)
{
    proto_request_init(req);
    if (!query)
        return 0;
    char *q = strdup(query), *save = NULL;
    int rc = 0;
    for (char *arg = strtok_r(q, "&", &save); arg && !rc; arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        const char *value = "";
        if (eq)
            *eq = '\0', value = eq + 1;
        qdq_error err = { 0 };
        rc = proto_query_arg(req, arg, value, &LIMITS, &err);
        if (rc)
            check_status(rc, &err);
    }
    free(q);
    return rc;
}

/* Parses buf[0, len) of a file of file_len bytes in a fresh request. */
static int parse(const char *query, const uint8_t *buf, size_t len, uint64_t file_len,
                 proto_request *req, size_t *off)
{
    qdq_error err = { 0 };
    fresh(req, query);
    int rc = proto_npy_header_parse(buf, len, file_len, &LIMITS, req, off, &err);
    if (rc)
        check_status(rc, &err);
    return rc;
}

static bool same_layout(const proto_request *a, const proto_request *b)
{
    return a->dtype == b->dtype && a->rank == b->rank && a->count == b->count &&
           memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]) == 0 &&
           a->npy_version == b->npy_version && a->npy_bf16_v2 == b->npy_bf16_v2;
}

static void run_op(const proto_request *q, const void *data, uint64_t seed)
{
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
    int rc = qdq_run(&plan, data, out, q->min, q->n_min, q->max, q->n_max, acc, par, &err);
    if (rc == 0) {
        uint64_t n = plan.count, k = n ? mix(seed) % (n + 1) : 0, j = n ? mix(seed + 3) % (n + 1) : 0;
        check_split(&plan, q, data, out, par, k, j);
    } else {
        REQUIRE(rc == QDQ_EINVAL && err.msg[0], "qdq_run failed with %d and no message", rc);
    }
    free(out), free(acc), free(par);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *query = NULL;
    if (size && data[0] == '?') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t qn = nl ? (size_t)(nl - data) - 1 : size - 1;
        query = malloc(qn + 1);
        memcpy(query, data + 1, qn);
        query[qn] = '\0';
        if (memchr(query, 0, qn)) { /* a query string has no NUL */
            free(query);
            return 0;
        }
        size_t skip = nl ? qn + 2 : size;
        data += skip, size -= skip;
    }
    /* The server's buffer holds exactly the bytes received. */
    uint8_t *file = malloc(size ? size : 1);
    if (size)
        memcpy(file, data, size);

    proto_request req, req2;
    size_t off = 0, off2 = 0;
    if (query) {
        proto_request_init(&req);
        if (fresh(&req, query)) { /* a bad query is answered before the body matters */
            proto_request_clear(&req);
            goto done;
        }
        proto_request_clear(&req);
    }
    int rc = parse(query, file, size, size, &req, &off);
    REQUIRE(rc != PROTO_EAGAIN, "EAGAIN for a complete file of %zu bytes", size);
    if (rc == 0) {
        size_t es = qdq_dtype_size(req.dtype);
        REQUIRE(off <= size && off >= 10, "offset %zu of %zu", off, size);
        REQUIRE(req.count <= LIMITS.max_elements && req.count * es == size - off,
                "count %llu for %zu data bytes", (unsigned long long)req.count, size - off);
        uint64_t count = 1;
        for (int i = 0; i < req.rank; i++)
            count *= (uint64_t)req.dims[i];
        REQUIRE(count == req.count && req.rank <= LIMITS.max_rank, "dims and count disagree");
        REQUIRE(req.min_text == NULL && req.max_text == NULL, "bounds text left after parse");

        /* Arriving in pieces: every prefix (a sample of them, here) with the length known. */
        size_t cuts[8] = { 0, 6, 9, 11, off / 2, off ? off - 1 : 0, off, off + (size - off) / 2 };
        for (int i = 0; i < 8; i++) {
            size_t p = cuts[i];
            if (p > size)
                continue;
            int r2 = parse(query, file, p, size, &req2, &off2);
            if (p < off)
                REQUIRE(r2 == PROTO_EAGAIN, "prefix %zu of a valid file (header ends at %zu): "
                        "status %d", p, off, r2);
            else
                REQUIRE(r2 == 0 && off2 == off && same_layout(&req, &req2),
                        "prefix %zu holding the header: status %d", p, r2);
            proto_request_clear(&req2);
        }
        /* Chunked upload: the length unknown. */
        int r3 = parse(query, file, size, UINT64_MAX, &req2, &off2);
        REQUIRE(r3 == 0 && off2 == off && same_layout(&req, &req2),
                "the same file with its length unknown: status %d", r3);
        proto_request_clear(&req2);

        void *t = malloc(size - off + 1);
        memcpy(t, file + off, size - off);
        run_op(&req, t, mix(size));

        /* The answer's header parses back to the same layout. */
        proto_buf b = { 0 };
        REQUIRE(proto_npy_header_write(&req, &b) == 0, "header_write");
        REQUIRE(b.len % 64 == 0, "answer header of %zu bytes", b.len);
        REQUIRE(proto_buf_append(&b, t, size - off) == 0, "append");
        int r4 = parse(query, (const uint8_t *)b.data, b.len, b.len, &req2, &off2);
        REQUIRE(r4 == 0 && same_layout(&req, &req2) && b.len - off2 == size - off,
                "the answer's header does not parse back: status %d (%.*s)", r4,
                (int)(b.len < 200 ? b.len : 200), b.data);
        proto_request_clear(&req2);
        proto_buf_free(&b);
        free(t);
    } else {
        /* A refused file is refused with its length unknown too, or waits for more. */
        int r3 = parse(query, file, size, UINT64_MAX, &req2, &off2);
        proto_request_clear(&req2);
        (void)r3;
    }
    proto_request_clear(&req);
done:
    free(file);
    free(query);
    return 0;
}
