/*
 * ref: the op written a second time, plainly, from the semantics (docs/semantics.md) and apart
 * from core/'s code: scalar loops in the compute type (float for float32, float16 and bfloat16;
 * double for float64), sharing only qdq_half.h's dtype conversions with core. Where TensorFlow's
 * answer depends on the order Eigen visits the elements (a channel holding NaN, or zeros of both
 * signs at an extreme), that order is replayed; elsewhere the plain minimum and maximum are used
 * (and, for tensors up to 300,000 elements, checked against Eigen's order: stats.selfcheck_bad).
 *
 * The tests compare core (test_core_random.c) and the server (the big and random HTTP cases,
 * through cases.c) with it, so that a wrong answer of core cannot become its own expectation.
 * It is slow (tens of ns per element) and holds no state: safe on any thread, each with its own
 * stats.
 *
 *   ref_case c = { .dt = QDQ_FLOAT32, .attrs = a, .rank = 2, .dims = dims, .in = x };
 *   ref_result res;
 *   char why[160];
 *   if (ref_run(&c, &res, NULL, why, sizeof why) == 0) { ... res.out, res.par ... }
 *   ref_result_free(&res);
 */
#ifndef REF_H
#define REF_H

#include <stddef.h>
#include <stdint.h>

#include "qdq.h"

typedef struct ref_case {
    qdq_dtype dt;
    qdq_attrs attrs;
    int rank;
    const int64_t *dims;   /* rank values (may be NULL when rank is 0) */
    const void *in;        /* the elements, row-major, of dt */
    const void *min, *max; /* range_given: one bound per channel (one when axis = -1), of dt */
} ref_case;

typedef struct ref_result {
    uint64_t count, channels;
    void *out;   /* count elements of dt (malloc'ed) */
    double *par; /* per channel, the six reported values in the order of tu_range_keys (input_min,
                  * input_max, output_min, output_max, scale, inverse_scale): par[6 * c + k]
                  * (malloc'ed; compute-type values) */
} ref_result;

/* What the reference met (evidence that the cases reach the edges); counts add up over runs. */
typedef struct ref_stats {
    uint64_t ties;                  /* exact .5 after scaling */
    uint64_t half_up_quirks;        /* HALF_UP's floor(y + 0.5) differing from rounding y */
    uint64_t clamped;               /* elements moved by range_given's clamp */
    uint64_t nan_in;                /* NaN inputs */
    uint64_t order_channels;        /* channels whose range depends on Eigen's order */
    uint64_t zero_extreme_channels; /* ... of them, for zeros of both signs */
    uint64_t selfcheck_bad;         /* order-independent channels where Eigen's order differed */
} ref_stats;

/*
 * The op on c: fills res (count, channels and malloc'ed out and par; free with ref_result_free).
 * st (may be NULL) gets the counts added. Returns 0; or -1 with res zeroed and a reason in
 * why[0, whyn) when c is outside the op's domain (dtype, rank, dims, axis, num_bits, round mode,
 * bounds that are NaN or crossed): the reference computes valid cases only, it does not
 * reproduce the server's error messages.
 */
int ref_run(const ref_case *c, ref_result *res, ref_stats *st, char *why, size_t whyn);
void ref_result_free(ref_result *res);

/* qmin and qmax of the attributes (docs/semantics.md), as 64-bit integers. */
int64_t ref_qmin(const qdq_attrs *a);
int64_t ref_qmax(const qdq_attrs *a);

#endif
