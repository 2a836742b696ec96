/*
 * The interface between the op's bookkeeping (qdq.c) and its element kernels.
 *
 * A kernel family provides, per dtype, loops over contiguous elements:
 *   run:   all n elements belong to one channel (scalar parameters)
 *   lanes: element k belongs to channel c0 + k (parameter arrays starting at c0)
 *   rows:  whole rows of the last axis (rows of C elements, `stride` elements apart, channel =
 *          column: C channels of a wider row when a worker takes a range of channels)
 *   cols:  n consecutive channels of an axis >= 0, each a run of `inner` elements
 * and, per compute type, the merge of two accumulators, the ranges from one, and the parameters
 * of n channels from their ranges (scale.h, lane by lane).
 * Values of the compute type T (float, or double for float64) are passed through void
 * pointers. Accumulators: mn, mx of T (NaN ignored); nz, pz, nn are flags of T's width
 * (nonzero: a -0.0 / +0.0 / NaN was seen). The flags tell qdq.c when the result could depend on
 * the order of the reduction, where it takes the exact path (exact.c). nz is read only when an
 * extreme is a zero: a kernel may leave it clear for elements that include a value above +0.0
 * (or a NaN) and one below -0.0.
 */
#ifndef QDQ_KERNELS_H
#define QDQ_KERNELS_H

#include <stddef.h>

typedef struct qdq_kernels {
    void (*reduce_run)(const void *in, size_t n, void *mn, void *mx, void *nz, void *pz,
                       void *nn);
    void (*reduce_lanes)(const void *in, size_t n, void *mn, void *mx, void *nz, void *pz,
                         void *nn);
    /* rows rows of C channels (the last axis), stride elements apart: as reduce_lanes on each. */
    void (*reduce_rows)(const void *in, size_t rows, size_t stride, size_t C, void *mn, void *mx,
                        void *nz, void *pz, void *nn);
    void (*apply_run)(const void *in, void *out, size_t n, const void *lo, const void *hi,
                      const void *scale, const void *inv, int clamp, int half_up);
    void (*apply_lanes)(const void *in, void *out, size_t n, const void *lo, const void *hi,
                        const void *scale, const void *inv, int clamp, int half_up);
    /* As reduce_run on each of n runs of inner elements, into accumulators c0 .. c0 + n - 1. */
    void (*reduce_cols)(const void *in, size_t n, size_t inner, void *mn, void *mx, void *nz,
                        void *pz, void *nn);
    /* As apply_lanes on each of rows rows of C channels, stride elements apart. */
    void (*apply_rows)(const void *in, void *out, size_t rows, size_t stride, size_t C,
                       const void *lo, const void *hi, const void *scale, const void *inv,
                       int clamp, int half_up);
    /* As apply_run on each of n runs of inner elements, with parameters c0 .. c0 + n - 1. */
    void (*apply_cols)(const void *in, void *out, size_t n, size_t inner, const void *lo,
                       const void *hi, const void *scale, const void *inv, int clamp,
                       int half_up);
    /* q holds (T)qmin, (T)qmax; lo, hi the ranges; olo, ohi, sc, inv receive n values each. */
    void (*scales)(size_t n, const void *q, const void *lo, const void *hi, void *olo, void *ohi,
                   void *sc, void *inv);
    /* Channels [c0, c1) of the accumulator src (mn, mx, nz, pz, nn: C values each) into dst:
     * the lesser mn, the greater mx (NaN: dst's stays), the flags OR-ed. */
    void (*merge)(size_t C, void *dst, const void *src, size_t c0, size_t c1);
    /* The range of channels c0.. from a complete accumulation into params' in_min, in_max (C
     * values each) as qdq.c's ranges: the extremes, a zero extreme signed by the channel's -0.0
     * flag. Returns the first channel it left to qdq.c (the last few); sets *exact when a
     * channel done needs Eigen's order instead (NaN, or zeros of both signs and a zero
     * extreme). NULL: qdq.c does them all. */
    size_t (*ranges)(size_t C, const void *acc, void *params, size_t c0, size_t c1, int *exact);
    /* As apply_run, where no product y * inv rounds from a tie on its narrowing to the storage
     * type (qdq.c checks that before it calls this). NULL where the narrowing costs the same
     * either way: only bfloat16's has a cheaper form without ties. */
    void (*apply_run_noties)(const void *in, void *out, size_t n, const void *lo,
                             const void *hi, const void *scale, const void *inv, int clamp,
                             int half_up);
} qdq_kernels;

/* A family's entry for a dtype whose kernels are named *_suf, with scales_t and merge_t (t: f
 * or d), ranges (or NULL) and apply_run_noties (or NULL). */
#define QDQ_FAMILY_NT(suf, t, rng, noties)                                                     \
    {                                                                                          \
        .reduce_run = reduce_run_##suf, .reduce_lanes = reduce_lanes_##suf,                    \
        .reduce_rows = reduce_rows_##suf, .apply_run = apply_run_##suf,                        \
        .apply_lanes = apply_lanes_##suf, .reduce_cols = reduce_cols_##suf,                    \
        .apply_rows = apply_rows_##suf, .apply_cols = apply_cols_##suf, .scales = scales_##t,  \
        .merge = merge_##t, .ranges = rng, .apply_run_noties = noties,                         \
    }
#define QDQ_FAMILY(suf, t, rng) QDQ_FAMILY_NT(suf, t, rng, NULL)

/* Indexed by qdq_dtype. */
extern const qdq_kernels qdq_kernels_portable[4];
#if defined(__x86_64__) && !defined(QDQ_NO_AVX2)
#define QDQ_HAVE_AVX2 1
extern const qdq_kernels qdq_kernels_avx2[4];
#endif

#endif
