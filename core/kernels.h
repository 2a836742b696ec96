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
 *
 * The rows kernels choose among strategies by the sizes involved (qdq_tuning below); every
 * strategy gives the same bits, and a plan may force any of them (tests do, to reach each).
 */
#ifndef QDQ_KERNELS_H
#define QDQ_KERNELS_H

#include <stdbool.h>
#include <stddef.h>

#include "qdq.h"

/* ---- The layout of the accumulator and of the parameter block ---- */

/*
 * Both are arrays of C values of the compute type (ts bytes: 4, or 8 for float64), one after
 * another in these orders (qdq_acc_size, qdq_params_size); the parameter block ends with a
 * 64-bit word past its arrays, the no-tie flag (qdq.c). Everything that finds an array finds it
 * through qdq_block_at.
 */
enum { QDQ_ACC_MN, QDQ_ACC_MX, QDQ_ACC_NZ, QDQ_ACC_PZ, QDQ_ACC_NN, QDQ_ACC_ARRAYS };
enum {
    QDQ_PAR_IN_MIN, /* the range the op started from */
    QDQ_PAR_IN_MAX,
    QDQ_PAR_LO, /* the adjusted range (output_min, output_max): the clamp's bounds */
    QDQ_PAR_HI,
    QDQ_PAR_SCALE,
    QDQ_PAR_INV,
    QDQ_PAR_ARRAYS, /* the no-tie word's place */
};

/* Channel c of array j of a block of C channels of ts-byte values. */
static inline void *qdq_block_at(const void *block, size_t C, size_t ts, int j, size_t c)
{
    return (char *)block + ((size_t)j * C + c) * ts;
}

/* The accumulator's five arrays from channel c: what the reduce kernels take. */
typedef struct qdq_acc_ptrs {
    void *mn, *mx, *nz, *pz, *nn;
} qdq_acc_ptrs;

static inline qdq_acc_ptrs qdq_acc_at(void *acc, size_t C, size_t ts, size_t c)
{
    qdq_acc_ptrs a = { qdq_block_at(acc, C, ts, QDQ_ACC_MN, c),
                       qdq_block_at(acc, C, ts, QDQ_ACC_MX, c),
                       qdq_block_at(acc, C, ts, QDQ_ACC_NZ, c),
                       qdq_block_at(acc, C, ts, QDQ_ACC_PZ, c),
                       qdq_block_at(acc, C, ts, QDQ_ACC_NN, c) };
    return a;
}

/* The parameters the apply kernels take, from channel c: the clamp's bounds, scale, inverse. */
typedef struct qdq_apply_ptrs {
    const void *lo, *hi, *scale, *inv;
} qdq_apply_ptrs;

static inline qdq_apply_ptrs qdq_apply_at(const void *params, size_t C, size_t ts, size_t c)
{
    qdq_apply_ptrs a = { qdq_block_at(params, C, ts, QDQ_PAR_LO, c),
                         qdq_block_at(params, C, ts, QDQ_PAR_HI, c),
                         qdq_block_at(params, C, ts, QDQ_PAR_SCALE, c),
                         qdq_block_at(params, C, ts, QDQ_PAR_INV, c) };
    return a;
}

/* ---- Strategies and their thresholds ---- */

/* How apply_rows takes whole rows (kernels_avx2.c; the portable family has one way). */
typedef enum qdq_apply_way {
    QDQ_APPLY_AUTO = 0, /* by the thresholds (qdq_apply_rows_way) */
    QDQ_APPLY_BY_ROW,   /* row after row */
    QDQ_APPLY_BLOCK,    /* down blocks of rows, a few vectors of channels at a time */
    QDQ_APPLY_QUAD,     /* four rows at a time, along the rows */
    QDQ_APPLY_OCT,      /* eight rows at a time, a line at a time; no clamp (with one: QUAD) */
} qdq_apply_way;

/* How reduce_rows takes whole rows (the float32-computing dtypes; float64 has one way). */
typedef enum qdq_reduce_way {
    QDQ_REDUCE_AUTO = 0,   /* by the thresholds (qdq_reduce_rows_way) */
    QDQ_REDUCE_BLOCKED,    /* down blocks of rows, in panels of channels */
    QDQ_REDUCE_ALONG,      /* along the rows, eight at a time */
    QDQ_REDUCE_ALONG_FAR,  /* the same, the next eight rows' lines fetched meanwhile */
} qdq_reduce_way;

/*
 * The sizes at which the kernels and qdq.c change strategy, and the blocks they work in; one
 * const default instance (qdq_tuning_default, core/tuning.c, which says why each value is
 * what it is). A plan points to it, or to a caller's own (qdq_plan.tuning): tests move the
 * thresholds to reach each side of each with small tensors, or force a strategy outright.
 * Any values give the same bits; only the time differs. Sizes are in bytes unless named
 * otherwise.
 */
typedef struct qdq_tuning {
    size_t far_bytes;       /* rows of more than this many bytes come from memory (not cache) */
    /* apply_rows in cache: four rows at a time (QUAD) on rows at least this long ... */
    size_t quad_bytes;      /* ... without a clamp */
    size_t quad_clamp_bytes;/* ... with one */
    size_t quad_bf16_bytes; /* ... bfloat16 without a clamp */
    size_t oct_bytes;       /* eight at a time (OCT) instead, up to rows this long (float32,
                             * float64, no clamp) */
    size_t far_quad_bytes;  /* from memory: QUAD on rows at least this long, else BY_ROW */
    size_t block_rows;      /* BLOCK's blocks: at least this many rows ... */
    size_t block_rows_max;  /* ... at most this many, else span_bytes of rows */
    size_t span_bytes;
    size_t along_bytes;     /* reduce_rows in cache: ALONG on rows at least this long */
    size_t near_rows;       /* reduce_rows' blocks down the rows, in cache (BLOCKED) */
    size_t panel;           /* channels BLOCKED keeps at once (at most QDQ_PANEL_MAX) */
    size_t panel_along;     /* channels ALONG keeps at once (at most QDQ_PANEL_ALONG_MAX) */
    size_t fuse_bytes;      /* qdq_run_channels' blocks of channels (qdq.c) hold this much */
    /* bfloat16 per tensor takes the narrowing without the tie fix when the products to look at
     * (qdq.c, bf16_noties) are fewer than noties_max and 1 per noties_per elements. */
    size_t noties_max, noties_per;
    qdq_apply_way apply_rows;   /* QDQ_APPLY_AUTO, or the one way apply_rows takes */
    qdq_reduce_way reduce_rows; /* QDQ_REDUCE_AUTO, or the one way reduce_rows takes */
} qdq_tuning;

/* The panels' upper bounds: the kernels keep a panel's reductions in arrays of this size. */
#define QDQ_PANEL_MAX 512
#define QDQ_PANEL_ALONG_MAX 2048

extern const qdq_tuning qdq_tuning_default;

/* The plan's tuning: its own, or the default. */
static inline const qdq_tuning *qdq_tuning_of(const qdq_plan *p)
{
    return p->tuning ? p->tuning : &qdq_tuning_default;
}

/* The way apply_rows takes `rows` rows of C channels, stride elements apart, of dtype dt (the
 * AVX2 family; its kernels and tests both ask here). Never QDQ_APPLY_OCT with a clamp. */
static inline qdq_apply_way qdq_apply_rows_way(const qdq_tuning *t, qdq_dtype dt, size_t rows,
                                               size_t stride, size_t C, int clamp)
{
    size_t es = qdq_dtype_size(dt), row = stride * es;
    if (t->apply_rows != QDQ_APPLY_AUTO)
        return t->apply_rows == QDQ_APPLY_OCT && clamp ? QDQ_APPLY_QUAD : t->apply_rows;
    size_t qb = clamp ? t->quad_clamp_bytes : dt == QDQ_BFLOAT16 ? t->quad_bf16_bytes
                                                                 : t->quad_bytes;
    bool quad = row >= qb;
    if (rows * C * es > t->far_bytes && !(quad && row >= t->far_quad_bytes))
        return QDQ_APPLY_BY_ROW; /* from memory: the order the data streams in */
    if (quad && !clamp && es >= 4 && row <= t->oct_bytes)
        return QDQ_APPLY_OCT;
    return quad ? QDQ_APPLY_QUAD : QDQ_APPLY_BLOCK;
}

/* The way reduce_rows takes them (the AVX2 family; float64 is always QDQ_REDUCE_BLOCKED). */
static inline qdq_reduce_way qdq_reduce_rows_way(const qdq_tuning *t, qdq_dtype dt, size_t rows,
                                                 size_t stride, size_t C)
{
    size_t es = qdq_dtype_size(dt);
    if (dt == QDQ_FLOAT64)
        return QDQ_REDUCE_BLOCKED;
    if (t->reduce_rows != QDQ_REDUCE_AUTO)
        return t->reduce_rows;
    if (rows * C * es > t->far_bytes)
        return QDQ_REDUCE_ALONG_FAR;
    return stride * es >= t->along_bytes ? QDQ_REDUCE_ALONG : QDQ_REDUCE_BLOCKED;
}

/* ---- The kernels ---- */

typedef struct qdq_kernels {
    void (*reduce_run)(const void *in, size_t n, void *mn, void *mx, void *nz, void *pz,
                       void *nn);
    void (*reduce_lanes)(const void *in, size_t n, void *mn, void *mx, void *nz, void *pz,
                         void *nn);
    /* rows rows of C channels (the last axis), stride elements apart: as reduce_lanes on each. */
    void (*reduce_rows)(const void *in, size_t rows, size_t stride, size_t C, void *mn, void *mx,
                        void *nz, void *pz, void *nn, const qdq_tuning *t);
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
                       int clamp, int half_up, const qdq_tuning *t);
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
    /* apply_run, apply_lanes and apply_rows (one way) that also fold the error statistics of
     * their elements into st (qdq.h, qdq_stats: finite inputs counted and summed, the others
     * counted), from the values they store: the output bits are the plain kernels'. */
    void (*apply_run_stats)(const void *in, void *out, size_t n, const void *lo, const void *hi,
                            const void *scale, const void *inv, int clamp, int half_up,
                            qdq_stats *st);
    void (*apply_lanes_stats)(const void *in, void *out, size_t n, const void *lo,
                              const void *hi, const void *scale, const void *inv, int clamp,
                              int half_up, qdq_stats *st);
    void (*apply_rows_stats)(const void *in, void *out, size_t rows, size_t stride, size_t C,
                             const void *lo, const void *hi, const void *scale, const void *inv,
                             int clamp, int half_up, qdq_stats *st);
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
        .apply_run_stats = apply_run_stats_##suf, .apply_lanes_stats = apply_lanes_stats_##suf, \
        .apply_rows_stats = apply_rows_stats_##suf,                                            \
    }
#define QDQ_FAMILY(suf, t, rng) QDQ_FAMILY_NT(suf, t, rng, NULL)

/* Indexed by qdq_dtype. */
extern const qdq_kernels qdq_kernels_portable[4];
#if defined(__x86_64__) && !defined(QDQ_NO_AVX2)
#define QDQ_HAVE_AVX2 1
extern const qdq_kernels qdq_kernels_avx2[4];
#endif

#endif
