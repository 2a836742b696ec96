/*
 * What the decoder fuzz targets share: FUZZ_STRICT (also run inputs whose per-channel state
 * exceeds the limits), REQUIRE (an invariant: print it and abort, which libFuzzer reports as a
 * crash), and the decoding limits the targets use.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "qdq.h"

static int strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *s = getenv("FUZZ_STRICT");
    strict = s && *s == '1';
    return 0;
}

#define REQUIRE(cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: %s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static const proto_limits LIMITS = { .max_elements = 1u << 16, .max_rank = 32, .max_depth = 64,
                                     .max_body = 1u << 20 };

/*
 * The op as the server runs it, against qdq_run's output out and parameters par (plan p, request
 * q, input data): with range_given the parameters first, else the reduction cut at k into two
 * accumulators, merged; then the apply cut at j, in place. Then by channel ranges, cut at channel
 * k % (C + 1): each range reduced (cut at k), given its parameters and applied (cut at j) on its
 * own. The same bytes and ranges, or abort.
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
}

#endif
