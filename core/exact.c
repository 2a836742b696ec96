/*
 * The order-exact reduction: TensorFlow's Eigen min/max replayed one comparison at a time (the
 * range the op starts from, docs/semantics.md, is that reduction's result).
 *
 * Eigen's min and max are not symmetric in NaN and in the sign of zero: a NaN met by the
 * scalar loop replaces the running value (the next number replaces the NaN), a NaN met inside
 * a packet is skipped, and of two equal zeros the one kept depends on the operand order. So for
 * a channel that holds a NaN, or both -0.0 and +0.0, the result depends on the order Eigen
 * visits the elements. The fast kernels detect those channels; this file replays Eigen's order
 * for them:
 *   axis = -1: the full reduction (InnerMostDimReducer with tree reduction), packets of 8 floats
 *              or 4 doubles (AVX), as TensorFlow computes it on one intra-op thread;
 *   axis >= 0: the partial reduction over dims {0, 2} of [outer, C, inner]
 *              (GenericDimReducer: inner index outermost, outer index innermost).
 */
#include <math.h>

#include "exact.h"
#include "qdq_half.h"

#define LEAF 1024 /* Eigen's kLeafSize, in packets */

static uint64_t divup(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* std::min(t, acc) / std::max(t, acc), as Eigen's scalar reduce: a NaN t replaces acc. */
#define RED(T) \
    static T red_min_##T(T t, T acc) { return acc < t ? acc : t; } \
    static T red_max_##T(T t, T acc) { return t < acc ? acc : t; } \
    /* _mm256_min_ps(p, acc) / _mm256_max_ps(p, acc): a NaN p is skipped. */ \
    static T pk_min_##T(T acc, T p) { return p < acc ? p : acc; } \
    static T pk_max_##T(T acc, T p) { return p > acc ? p : acc; }
RED(float)
RED(double)

static float load_f(const qdq_plan *p, const void *d, uint64_t i)
{
    switch (p->dtype) {
    case QDQ_FLOAT16: return qdq_f16_to_f32(((const uint16_t *)d)[i]);
    case QDQ_BFLOAT16: return qdq_bf16_to_f32(((const uint16_t *)d)[i]);
    default: return ((const float *)d)[i];
    }
}

static double load_d(const qdq_plan *p, const void *d, uint64_t i)
{
    (void)p;
    return ((const double *)d)[i];
}

/*
 * One instance per compute type T with packet size P: the leaf (two packet accumulators, the
 * scalar tail, finalizeBoth), the tree above it, and the per-channel loop.
 */
#define EXACT(T, P, LOAD)                                                                      \
    static T leaf_##T(const qdq_plan *p, const void *d, uint64_t first, uint64_t n, int mx)   \
    {                                                                                          \
        T init = mx ? -(T)INFINITY : (T)INFINITY, pa[P], pb[P];                                \
        for (int l = 0; l < P; l++)                                                            \
            pa[l] = pb[l] = init;                                                              \
        uint64_t unroll = n / (2 * P) * (2 * P), vec = n / P * P, j = 0;                       \
        for (; j < unroll; j += 2 * P)                                                         \
            for (int l = 0; l < P; l++) {                                                      \
                T a = LOAD(p, d, first + j + l), b = LOAD(p, d, first + j + P + l);            \
                pa[l] = mx ? pk_max_##T(pa[l], a) : pk_min_##T(pa[l], a);                      \
                pb[l] = mx ? pk_max_##T(pb[l], b) : pk_min_##T(pb[l], b);                      \
            }                                                                                  \
        for (; j < vec; j += P)                                                                \
            for (int l = 0; l < P; l++) {                                                      \
                T a = LOAD(p, d, first + j + l);                                               \
                pa[l] = mx ? pk_max_##T(pa[l], a) : pk_min_##T(pa[l], a);                      \
            }                                                                                  \
        for (int l = 0; l < P; l++)                                                            \
            pa[l] = mx ? pk_max_##T(pa[l], pb[l]) : pk_min_##T(pa[l], pb[l]);                  \
        T acc = init;                                                                          \
        for (; j < n; j++)                                                                     \
            acc = mx ? red_max_##T(LOAD(p, d, first + j), acc)                                 \
                     : red_min_##T(LOAD(p, d, first + j), acc);                                \
        /* predux (predux_helper): lane l meets lane l + s, numext::mini/maxi(a[l], a[l+s]). */\
        for (int s = P / 2; s >= 1; s >>= 1)                                                   \
            for (int l = 0; l < s; l++)                                                        \
                pa[l] = mx ? (pa[l] < pa[l + s] ? pa[l + s] : pa[l])                           \
                           : (pa[l + s] < pa[l] ? pa[l + s] : pa[l]);                          \
        /* finalizeBoth: std::min(saccum, predux) / std::max(saccum, predux) */                \
        return mx ? (acc < pa[0] ? pa[0] : acc) : (pa[0] < acc ? pa[0] : acc);                 \
    }                                                                                          \
                                                                                               \
    static T tree_##T(const qdq_plan *p, const void *d, uint64_t first, uint64_t n, int mx)   \
    {                                                                                          \
        if (n <= (uint64_t)P * LEAF)                                                           \
            return leaf_##T(p, d, first, n, mx);                                               \
        T acc = mx ? -(T)INFINITY : (T)INFINITY;                                               \
        uint64_t split = P * divup(first + divup(n, 2), P);                                    \
        uint64_t left = split - first < n ? split - first : n;                                 \
        T r = tree_##T(p, d, first, left, mx);                                                 \
        acc = mx ? red_max_##T(r, acc) : red_min_##T(r, acc);                                  \
        if (left < n) {                                                                        \
            r = tree_##T(p, d, split, n - left, mx);                                           \
            acc = mx ? red_max_##T(r, acc) : red_min_##T(r, acc);                              \
        }                                                                                      \
        return acc;                                                                            \
    }                                                                                          \
                                                                                               \
    static T channel_##T(const qdq_plan *p, const void *d, uint64_t c, int mx)                \
    {                                                                                          \
        T acc = mx ? -(T)INFINITY : (T)INFINITY;                                               \
        for (uint64_t i = 0; i < p->inner; i++)                                                \
            for (uint64_t o = 0; o < p->outer; o++) {                                          \
                T x = LOAD(p, d, (o * p->channels + c) * p->inner + i);                        \
                acc = mx ? red_max_##T(x, acc) : red_min_##T(x, acc);                          \
            }                                                                                  \
        return acc;                                                                            \
    }

EXACT(float, 8, load_f)
EXACT(double, 4, load_d)

void qdq_exact_range(const qdq_plan *p, const void *data, uint64_t c, double *lo, double *hi)
{
    if (p->dtype == QDQ_FLOAT64) {
        if (p->attrs.axis < 0)
            *lo = tree_double(p, data, 0, p->count, 0), *hi = tree_double(p, data, 0, p->count, 1);
        else
            *lo = channel_double(p, data, c, 0), *hi = channel_double(p, data, c, 1);
    } else {
        if (p->attrs.axis < 0)
            *lo = tree_float(p, data, 0, p->count, 0), *hi = tree_float(p, data, 0, p->count, 1);
        else
            *lo = channel_float(p, data, c, 0), *hi = channel_float(p, data, c, 1);
    }
}
