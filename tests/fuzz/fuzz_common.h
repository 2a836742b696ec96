/*
 * What the decoder fuzz targets share besides fuzz_require.h: the checks of a decoded request
 * run through the op: plan_runnable (the per-channel state), check_split (the op split as the
 * server splits it) and check_reference (the op against the independent reference,
 * tests/lib/ref.h).
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "qdq.h"
#include "qdq_half.h"
#include "ref.h"

#include "fuzz_require.h"

/*
 * An empty tensor may name any number of channels (a zero dimension elsewhere): the element
 * limit does not bound them, yet the op keeps state per channel. The server refuses more
 * channels than --max-elements with 413 (server/ops.c; tests/http/test_hostile.c sends them in
 * every format). Here every plan's state must have a size that did not wrap around (the server
 * allocates what qdq_acc_size and qdq_params_size say before it compares), and the op runs on up
 * to FUZZ_MAX_CHANNELS channels: past LIMITS.max_elements, so that many empty channels go
 * through the op and the checks too; more would cost only memory and time.
 */
#define FUZZ_MAX_CHANNELS (4 * (uint64_t)LIMITS.max_elements)

/* Checks p's state sizes; true when the op is to run on it. */
static bool plan_runnable(const qdq_plan *p)
{
    /* At least a minimum and a maximum per channel in the accumulator and six values per channel
     * in the parameters, each of the compute type: a product that wrapped is smaller. */
    unsigned __int128 t = qdq_dtype_is_double(p->dtype) ? 8 : 4, c = p->channels;
    REQUIRE(qdq_acc_size(p) >= 2 * t * c && qdq_params_size(p) >= 6 * t * c,
            "state sizes %zu and %zu for %llu channels", qdq_acc_size(p), qdq_params_size(p),
            (unsigned long long)p->channels);
    return p->channels <= FUZZ_MAX_CHANNELS;
}

/* Element i of a (dtype dt) has the bits of element i of b, or both are NaN. */
static bool same_elem(qdq_dtype dt, const void *a, const void *b, uint64_t i)
{
    switch (dt) {
    case QDQ_FLOAT64: {
        uint64_t x, y;
        memcpy(&x, (const char *)a + 8 * i, 8), memcpy(&y, (const char *)b + 8 * i, 8);
        return x == y || ((x << 1) > (0x7ffull << 53) && (y << 1) > (0x7ffull << 53));
    }
    case QDQ_FLOAT32: {
        uint32_t x, y;
        memcpy(&x, (const char *)a + 4 * i, 4), memcpy(&y, (const char *)b + 4 * i, 4);
        return x == y || ((x << 1) > (0xffu << 24) && (y << 1) > (0xffu << 24));
    }
    default: {
        uint16_t x, y;
        memcpy(&x, (const char *)a + 2 * i, 2), memcpy(&y, (const char *)b + 2 * i, 2);
        float fx = dt == QDQ_FLOAT16 ? qdq_f16_to_f32(x) : qdq_bf16_to_f32(x);
        float fy = dt == QDQ_FLOAT16 ? qdq_f16_to_f32(y) : qdq_bf16_to_f32(y);
        return x == y || (fx != fx && fy != fy);
    }
    }
}

/*
 * qdq_run's output out and parameters par (plan p, request q, input data) against the reference:
 * the same elements (NaN matches NaN) and the same six values per channel, or abort.
 */
static void check_reference(const qdq_plan *p, const proto_request *q, const void *data,
                            const void *out, const void *par)
{
    ref_case c = { .dt = p->dtype, .attrs = p->attrs, .rank = q->rank, .dims = q->dims,
                   .in = data, .min = q->min, .max = q->max };
    ref_result res;
    ref_stats st;
    char why[160] = "";
    memset(&st, 0, sizeof st);
    REQUIRE(ref_run(&c, &res, &st, why, sizeof why) == 0,
            "the reference refuses what qdq_run took: %s", why);
    REQUIRE(res.count == p->count && res.channels == p->channels, "the reference's shape");
    REQUIRE(st.selfcheck_bad == 0, "the reference's two reductions disagree");
    for (uint64_t i = 0; i < p->count; i++)
        REQUIRE(same_elem(p->dtype, out, res.out, i), "output[%llu] differs from the reference",
                (unsigned long long)i);
    for (uint64_t ch = 0; ch < p->channels; ch++) {
        qdq_range r;
        qdq_params_get(p, par, ch, &r);
        double got[6] = { r.input_min, r.input_max, r.output_min, r.output_max, r.scale,
                          r.inverse_scale };
        for (int k = 0; k < 6; k++)
            REQUIRE(same_elem(QDQ_FLOAT64, got, res.par + 6 * ch, (uint64_t)k),
                    "channel %llu: reported value %d is %a, the reference's %a",
                    (unsigned long long)ch, k, got[k], res.par[6 * ch + (uint64_t)k]);
    }
    ref_result_free(&res);
}

/*
 * The op as the server runs it, against qdq_run's output out and parameters par (plan p, request
 * q, input data): with range_given the parameters first, else the reduction cut at k into two
 * accumulators, merged; then the apply cut at j, in place. Then by channel ranges, cut at channel
 * k % (C + 1): each range reduced (cut at k), given its parameters and applied (cut at j) on its
 * own. The same bytes and ranges, or abort. Then qdq_run's answer against the reference.
 */
static void check_split(const qdq_plan *p, const proto_request *q, const void *data,
                        const void *out, const void *par, uint64_t k, uint64_t j)
{
    uint64_t n = p->count;
    size_t bytes = (size_t)n * qdq_dtype_size(p->dtype);
    size_t accn = qdq_acc_size(p), parn = qdq_params_size(p);
    char *out2 = malloc(bytes + 1), *acc = malloc(accn + 1), *acc2 = malloc(accn + 1),
         *par2 = malloc(parn + 1);
    REQUIRE(out2 && acc && acc2 && par2, "out of memory");
    if (q->attrs.range_given) {
        qdq_error e2 = { 0 };
        REQUIRE(qdq_params_given(p, q->min, q->n_min, q->max, q->n_max, par2, &e2) == 0,
                "params_given failed after qdq_run succeeded: %s", e2.msg);
    } else {
        qdq_acc_init(p, acc);
        qdq_acc_init(p, acc2);
        qdq_reduce(p, acc, data, 0, k);
        qdq_reduce(p, acc2, data, k, n);
        qdq_acc_merge(p, acc, acc2);
        qdq_params_from_acc(p, acc, data, par2);
    }
    if (bytes)
        memcpy(out2, data, bytes);
    qdq_apply(p, par2, out2, out2, 0, j);
    qdq_apply(p, par2, out2, out2, j, n);
    REQUIRE(memcmp(out, out2, bytes) == 0, "split op differs from qdq_run (k=%llu j=%llu)",
            (unsigned long long)k, (unsigned long long)j);
    for (uint64_t c = 0; c < p->channels; c++) {
        qdq_range a, b;
        qdq_params_get(p, par, c, &a);
        qdq_params_get(p, par2, c, &b);
        REQUIRE(memcmp(&a, &b, sizeof a) == 0, "channel %llu ranges differ when split",
                (unsigned long long)c);
    }
    uint64_t C = p->channels, cut[3] = { 0, k % (C + 1), C };
    if (bytes)
        memcpy(out2, data, bytes);
    for (int r = 0; r < 2; r++) {
        if (!q->attrs.range_given) {
            qdq_acc_init(p, acc);
            qdq_reduce_channels(p, acc, data, 0, k, cut[r], cut[r + 1]);
            qdq_reduce_channels(p, acc, data, k, n, cut[r], cut[r + 1]);
            qdq_params_from_acc_channels(p, acc, data, par2, cut[r], cut[r + 1]);
        }
        qdq_apply_channels(p, par2, out2, out2, j, n, cut[r], cut[r + 1]);
        qdq_apply_channels(p, par2, out2, out2, 0, j, cut[r], cut[r + 1]);
    }
    REQUIRE(memcmp(out, out2, bytes) == 0, "op by channel ranges differs from qdq_run (cut at "
            "channel %llu, k=%llu j=%llu)", (unsigned long long)cut[1], (unsigned long long)k,
            (unsigned long long)j);
    for (uint64_t c = 0; c < C; c++) {
        qdq_range a, b;
        qdq_params_get(p, par, c, &a);
        qdq_params_get(p, par2, c, &b);
        REQUIRE(memcmp(&a, &b, sizeof a) == 0, "channel %llu ranges differ by channel ranges",
                (unsigned long long)c);
    }
    free(out2), free(acc), free(acc2), free(par2);
    check_reference(p, q, data, out, par);
}

#endif
