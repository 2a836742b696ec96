/* The portable kernel family: plain C, any CPU. See portable_template.h. */
#include <math.h>
#include <stdint.h>

#include "qdq.h"

#include "kernels.h"
#include "qdq_half.h"
#include "scale.h"

#define LOAD_PLAIN(p) (*(p))
#define STORE_PLAIN(p, v) (*(p) = (v))
#define LOAD_F16(p) qdq_f16_to_f32(*(p))
#define STORE_F16(p, v) (*(p) = qdq_f32_to_f16(v))
#define LOAD_BF16(p) qdq_bf16_to_f32(*(p))
#define STORE_BF16(p, v) (*(p) = qdq_f32_to_bf16(v))

static void scales_f(size_t n, const void *q, const void *lo, const void *hi, void *olo, void *ohi,
                     void *sc, void *inv)
{
    const float *qq = q, *l = lo, *h = hi;
    for (size_t c = 0; c < n; c++)
        qdq_scale_f(qq[0], qq[1], l[c], h[c], (float *)olo + c, (float *)ohi + c, (float *)sc + c,
                    (float *)inv + c);
}

static void scales_d(size_t n, const void *q, const void *lo, const void *hi, void *olo, void *ohi,
                     void *sc, void *inv)
{
    const double *qq = q, *l = lo, *h = hi;
    for (size_t c = 0; c < n; c++)
        qdq_scale_d(qq[0], qq[1], l[c], h[c], (double *)olo + c, (double *)ohi + c,
                    (double *)sc + c, (double *)inv + c);
}

/* The accumulators' merge (kernels.h), a channel at a time: the definition the AVX2 family's
 * vectors follow, and its last channels take. */
#define DEFINE_MERGE(name, T, F)                                                               \
    static void name(size_t C, void *dst, const void *src, size_t c0, size_t c1)               \
    {                                                                                          \
        qdq_acc_ptrs d = qdq_acc_at(dst, C, sizeof(T), 0);                                     \
        qdq_acc_ptrs s = qdq_acc_at((void *)src, C, sizeof(T), 0);                             \
        T *dn = d.mn, *dx = d.mx;                                                              \
        const T *sn = s.mn, *sx = s.mx;                                                        \
        F *dz = d.nz, *dp = d.pz, *dq = d.nn;                                                  \
        const F *sz = s.nz, *sp = s.pz, *sq = s.nn;                                            \
        for (size_t c = c0; c < c1; c++) {                                                     \
            dn[c] = sn[c] < dn[c] ? sn[c] : dn[c];                                             \
            dx[c] = sx[c] > dx[c] ? sx[c] : dx[c];                                             \
            dz[c] |= sz[c], dp[c] |= sp[c], dq[c] |= sq[c];                                    \
        }                                                                                      \
    }
DEFINE_MERGE(merge_f, float, int32_t)
DEFINE_MERGE(merge_d, double, int64_t)

/*
 * The error statistics of a kernel call (qdq.h, qdq_stats), an element at a time in float64:
 * sums over blocks of STATS_BLOCK elements, added to the totals a block at a time (the rounding
 * then grows with the block and the number of blocks, not with the element count).
 */
#define STATS_BLOCK 4096

typedef struct pstats {
    double se, sx, tse, tsx, mx;
    uint64_t finite;
    unsigned left;
} pstats;

static inline void pstats_init(pstats *a)
{
    a->se = a->sx = a->tse = a->tsx = a->mx = 0;
    a->finite = 0, a->left = STATS_BLOCK;
}

/* One element: its input x and its output o (as stored), widened exactly. */
static inline void pstats_add(pstats *a, double x, double o)
{
    if (isfinite(x)) {
        double e = o - x, m = fabs(e);
        a->se += e * e, a->sx += x * x;
        a->mx = m > a->mx ? m : a->mx; /* a NaN difference is skipped (qdq.h) */
        a->finite++;
    }
    if (--a->left == 0)
        a->tse += a->se, a->tsx += a->sx, a->se = a->sx = 0, a->left = STATS_BLOCK;
}

/* The call's n elements into st. */
static inline void pstats_done(pstats *a, size_t n, qdq_stats *st)
{
    st->sum_sq_error += a->tse + a->se, st->sum_sq_input += a->tsx + a->sx;
    st->max_abs_error = a->mx > st->max_abs_error ? a->mx : st->max_abs_error;
    st->finite += a->finite, st->nonfinite += n - a->finite;
}

#define SUF f32
#define S float
#define T float
#define F int32_t
#define LOAD LOAD_PLAIN
#define STORE STORE_PLAIN
#define RINT rintf
#define FLOOR floorf
#include "portable_template.h"
#undef SUF
#undef S
#undef LOAD
#undef STORE

#define SUF f16
#define S uint16_t
#define LOAD LOAD_F16
#define STORE STORE_F16
#include "portable_template.h"
#undef SUF
#undef LOAD
#undef STORE

#define SUF bf16
#define LOAD LOAD_BF16
#define STORE STORE_BF16
#include "portable_template.h"
#undef SUF
#undef S
#undef T
#undef F
#undef LOAD
#undef STORE
#undef RINT
#undef FLOOR

#define SUF f64
#define S double
#define T double
#define F int64_t
#define LOAD LOAD_PLAIN
#define STORE STORE_PLAIN
#define RINT rint
#define FLOOR floor
#include "portable_template.h"

const qdq_kernels qdq_kernels_portable[4] = {
    QDQ_FAMILY(f32, f, NULL), QDQ_FAMILY(f64, d, NULL), QDQ_FAMILY(f16, f, NULL),
    QDQ_FAMILY(bf16, f, NULL),
};
