/*
 * The reference (ref.h): the op as TensorFlow's CPU kernel computes it, one element at a time.
 * Eigen's reduction order is modelled on its AVX2 build (8 float or 4 double lanes, two packet
 * accumulators, leaves of 1024 packets halved at packet boundaries, predux folding lanes in
 * halves), since that is the build whose answers the project reproduces.
 */
#include "ref.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qdq_half.h"

/* The shape as the reference sees it: [outer, C, inner] around the axis (C = 1, inner = count
 * for axis -1). */
typedef struct view {
    int64_t axis;
    uint64_t count, outer, C, inner;
    ref_stats *st;
} view;

/* The element index of the j-th element (j < outer * inner) of channel c. */
static uint64_t chan_elem(const view *sv, uint64_t c, uint64_t j)
{
    uint64_t o = j / sv->inner, i = j % sv->inner;
    return (o * sv->C + c) * sv->inner + i;
}

int64_t ref_qmin(const qdq_attrs *a)
{
    if (!a->signed_input)
        return 0;
    return -(INT64_C(1) << (a->num_bits - 1)) + (a->narrow_range ? 1 : 0);
}

int64_t ref_qmax(const qdq_attrs *a)
{
    return a->signed_input ? (INT64_C(1) << (a->num_bits - 1)) - 1 : (INT64_C(1) << a->num_bits) - 1;
}

static uint64_t divup(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/*
 * _mm256_min_p?(a, b) / _mm256_max_p?(a, b), one lane: a when a < b (a > b), else b: b when
 * either is NaN or both are zero. reducePacket(p, &acc) is lane(p, acc).
 */
static float lane_f(int mx, float a, float b) { return mx ? (a > b ? a : b) : (a < b ? a : b); }
static double lane_d(int mx, double a, double b) { return mx ? (a > b ? a : b) : (a < b ? a : b); }

/*
 * Eigen's predux_min / predux_max as finalizeBoth calls them (predux<NaNPropagation>:
 * GenericPacketMath.h predux_helper): lane l meets lane l + k for k = P/2, P/4, ..., 1, with
 * numext::mini(a, b) = b < a ? b : a and numext::maxi(a, b) = a < b ? b : a (a tie keeps a).
 */
static float fold_f(int mx, float a, float b) { return mx ? (a < b ? b : a) : (b < a ? b : a); }
static double fold_d(int mx, double a, double b) { return mx ? (a < b ? b : a) : (b < a ? b : a); }

static float predux_f(int mx, const float *a)
{
    float t[8];
    for (int l = 0; l < 8; l++)
        t[l] = a[l];
    for (int k = 4; k > 0; k /= 2)
        for (int l = 0; l < k; l++)
            t[l] = fold_f(mx, t[l], t[l + k]);
    return t[0];
}

static double predux_d(int mx, const double *a)
{
    double t[4];
    for (int l = 0; l < 4; l++)
        t[l] = a[l];
    for (int k = 2; k > 0; k /= 2)
        for (int l = 0; l < k; l++)
            t[l] = fold_d(mx, t[l], t[l + k]);
    return t[0];
}

/*
 * One compute type T (float, P = 8 lanes; double, P = 4):
 *   sred:     MinReducer/MaxReducer::reduce(t, &acc): acc = std::min(t, acc) / std::max(t, acc)
 *   imr:      InnerMostDimReducer<Self, Op, vectorizable, tree> (TensorReduction.h)
 *   eigen:    the reduction TensorFlow runs: the full one for axis -1, the generic partial
 *             reduction over dims {0, 2} of [outer, C, inner] (inner index outermost) otherwise
 *   plain:    min and max ignoring NaN, and whether the channel depends on the order
 *   params:   the scale and adjusted range (docs/semantics.md), in T
 *   elem:     one element: clamp, scale, round, scale back (docs/semantics.md), in T
 */
#define DEFINE_REF(T, SUF, P, TMAX, FLOOR, RINT)                                                \
    static T sred_##SUF(int mx, T t, T acc)                                                    \
    {                                                                                          \
        return mx ? (t < acc ? acc : t) : (acc < t ? acc : t);                                 \
    }                                                                                          \
                                                                                               \
    static T imr_##SUF(const T *x, uint64_t first, uint64_t n, int mx)                         \
    {                                                                                          \
        T init = mx ? -(T)INFINITY : (T)INFINITY, accum = init;                                \
        if (n > (uint64_t)P * 1024) {                                                          \
            uint64_t split = P * divup(first + divup(n, 2), P);                                \
            uint64_t left = split - first < n ? split - first : n;                             \
            accum = sred_##SUF(mx, imr_##SUF(x, first, left, mx), accum);                      \
            if (left < n)                                                                      \
                accum = sred_##SUF(mx, imr_##SUF(x, split, n - left, mx), accum);              \
            return accum;                                                                      \
        }                                                                                      \
        uint64_t unroll = n / (2 * P) * (2 * P), vec = n / P * P, j = 0;                       \
        T pa[P], pb[P];                                                                        \
        for (int l = 0; l < P; l++)                                                            \
            pa[l] = pb[l] = init;                                                              \
        for (; j < unroll; j += 2 * P)                                                         \
            for (int l = 0; l < P; l++) {                                                      \
                /* reducePacket(p, &acc): acc = pmin(acc, p) = _mm256_min_p?(p, acc) */        \
                pa[l] = lane_##SUF(mx, x[first + j + (uint64_t)l], pa[l]);                     \
                pb[l] = lane_##SUF(mx, x[first + j + P + (uint64_t)l], pb[l]);                 \
            }                                                                                  \
        for (; j < vec; j += P)                                                                \
            for (int l = 0; l < P; l++)                                                        \
                pa[l] = lane_##SUF(mx, x[first + j + (uint64_t)l], pa[l]);                     \
        for (int l = 0; l < P; l++) /* reducePacket(paccum2, &paccum) */                       \
            pa[l] = lane_##SUF(mx, pb[l], pa[l]);                                              \
        for (j = vec; j < n; j++)                                                              \
            accum = sred_##SUF(mx, x[first + j], accum);                                       \
        T v = predux_##SUF(mx, pa); /* finalizeBoth: std::min(saccum, predux(paccum)) */       \
        return mx ? (accum < v ? v : accum) : (v < accum ? v : accum);                         \
    }                                                                                          \
                                                                                               \
    static void eigen_##SUF(const view *sv, const T *x, uint64_t c, T *lo, T *hi)             \
    {                                                                                          \
        if (sv->axis < 0) {                                                                  \
            *lo = imr_##SUF(x, 0, sv->count, 0), *hi = imr_##SUF(x, 0, sv->count, 1);          \
            return;                                                                            \
        }                                                                                      \
        T mn = (T)INFINITY, mx = -(T)INFINITY;                                                 \
        for (uint64_t i = 0; i < sv->inner; i++)                                               \
            for (uint64_t o = 0; o < sv->outer; o++) {                                         \
                T v = x[(o * sv->C + c) * sv->inner + i];                                      \
                mn = sred_##SUF(0, v, mn), mx = sred_##SUF(1, v, mx);                          \
            }                                                                                  \
        *lo = mn, *hi = mx;                                                                    \
    }                                                                                          \
                                                                                               \
    static int plain_##SUF(const view *sv, const T *x, uint64_t c, T *lo, T *hi)              \
    {                                                                                          \
        T mn = (T)INFINITY, mx = -(T)INFINITY;                                                 \
        int nan = 0, nz = 0, pz = 0;                                                           \
        uint64_t n = sv->outer * sv->inner;                                                    \
        for (uint64_t j = 0; j < n; j++) {                                                     \
            T v = x[chan_elem(sv, c, j)];                                                      \
            if (isnan(v)) {                                                                    \
                nan = 1;                                                                       \
                continue;                                                                      \
            }                                                                                  \
            if (v < mn)                                                                        \
                mn = v;                                                                        \
            if (v > mx)                                                                        \
                mx = v;                                                                        \
            if (v == 0) {                                                                      \
                if (signbit(v))                                                                \
                    nz = 1;                                                                    \
                else                                                                           \
                    pz = 1;                                                                    \
            }                                                                                  \
        }                                                                                      \
        *lo = mn, *hi = mx;                                                                    \
        sv->st->zero_extreme_channels += !nan && nz && pz && (mn == 0 || mx == 0);               \
        sv->st->order_channels += nan || (nz && pz && (mn == 0 || mx == 0));                     \
        return nan || (nz && pz && (mn == 0 || mx == 0)); /* 1: the order decides */            \
    }                                                                                          \
                                                                                               \
    static void params_##SUF(int64_t qmin_i, int64_t qmax_i, T lo, T hi, double six[6])        \
    {                                                                                          \
        T qmin = (T)qmin_i, qmax = (T)qmax_i;                                                  \
        T s_min = (qmin * lo > 0) ? qmin / lo : TMAX;                                          \
        T s_max = (qmax * hi > 0) ? qmax / hi : TMAX;                                          \
        T scale, inv, olo = lo, ohi = hi;                                                      \
        if (s_min < s_max) {                                                                   \
            scale = s_min;                                                                     \
            inv = lo / qmin;                                                                   \
            ohi = qmax * inv;                                                                  \
        } else {                                                                               \
            scale = s_max;                                                                     \
            inv = hi / qmax;                                                                   \
            olo = qmin * inv;                                                                  \
        }                                                                                      \
        six[0] = lo, six[1] = hi, six[2] = olo, six[3] = ohi, six[4] = scale, six[5] = inv;    \
    }                                                                                          \
                                                                                               \
    static T elem_##SUF(const view *sv, T x, const double *six, int clamp, int half_up)                      \
    {                                                                                          \
        T lo = (T)six[2], hi = (T)six[3], scale = (T)six[4], inv = (T)six[5];                  \
        T y = x;                                                                               \
        if (clamp) {                                                                           \
            y = hi < y ? hi : y; /* std::min(x, hi) */                                         \
            y = y < lo ? lo : y; /* std::max(y, lo) */                                         \
            sv->st->clamped += y != x;                                                           \
        }                                                                                      \
        y = y * scale;                                                                         \
        sv->st->ties += y - FLOOR(y) == (T)0.5;                                                  \
        /* y + 0.5 rounded up to the next integer: 0.49999997 -> 1, odd 2^23.. -> even */       \
        sv->st->half_up_quirks += half_up && FLOOR(y + (T)0.5) != FLOOR(y) + (y - FLOOR(y) >= (T)0.5); \
        sv->st->nan_in += isnan(x);                                                              \
        y = half_up ? FLOOR(y + (T)0.5) : RINT(y);                                             \
        return y * inv;                                                                        \
    }

DEFINE_REF(float, f, 8, FLT_MAX, floorf, nearbyintf)
DEFINE_REF(double, d, 4, DBL_MAX, floor, nearbyint)

static float widen_f(qdq_dtype dt, const void *a, uint64_t i)
{
    switch (dt) {
    case QDQ_FLOAT16: return qdq_f16_to_f32(((const uint16_t *)a)[i]);
    case QDQ_BFLOAT16: return qdq_bf16_to_f32(((const uint16_t *)a)[i]);
    default: return ((const float *)a)[i];
    }
}

static void narrow_store(qdq_dtype dt, void *a, uint64_t i, float v)
{
    switch (dt) {
    case QDQ_FLOAT16: ((uint16_t *)a)[i] = qdq_f32_to_f16(v); break;
    case QDQ_BFLOAT16: ((uint16_t *)a)[i] = qdq_f32_to_bf16(v); break;
    default: ((float *)a)[i] = v; break;
    }
}

static double widen_d(qdq_dtype dt, const void *a, uint64_t i)
{
    (void)dt;
    return ((const double *)a)[i];
}

static void store_d(qdq_dtype dt, void *a, uint64_t i, double v)
{
    (void)dt;
    ((double *)a)[i] = v;
}

/* The whole op in T: the range of each channel (given, or reduced), its parameters, then every
 * element. */
#define DEFINE_RUN(T, SUF, WIDEN, STORE)                                                        \
    static void reference_##SUF(const ref_case *c, const view *sv, ref_result *res)            \
    {                                                                                          \
        T *x = malloc(sv->count * sizeof(T) + 1);                                              \
        for (uint64_t e = 0; e < sv->count; e++)                                               \
            x[e] = WIDEN(c->dt, c->in, e);                                                     \
        int64_t qmin = ref_qmin(&c->attrs), qmax = ref_qmax(&c->attrs);                        \
        for (uint64_t ch = 0; ch < sv->C; ch++) {                                              \
            T lo, hi;                                                                          \
            if (c->attrs.range_given) {                                                        \
                lo = WIDEN(c->dt, c->min, ch), hi = WIDEN(c->dt, c->max, ch);                  \
            } else if (plain_##SUF(sv, x, ch, &lo, &hi)) {                                     \
                eigen_##SUF(sv, x, ch, &lo, &hi);                                              \
            } else if (sv->count <= 300000) { /* the order cannot matter: check that */        \
                T elo, ehi;                                                                    \
                eigen_##SUF(sv, x, ch, &elo, &ehi);                                            \
                if (memcmp(&elo, &lo, sizeof(T)) || memcmp(&ehi, &hi, sizeof(T)))              \
                    sv->st->selfcheck_bad++;                                                   \
            }                                                                                  \
            params_##SUF(qmin, qmax, lo, hi, res->par + 6 * ch);                               \
        }                                                                                      \
        int clamp = c->attrs.range_given, up = c->attrs.round_mode == QDQ_HALF_UP;             \
        for (uint64_t e = 0; e < sv->count; e++) {                                             \
            uint64_t ch = (e / sv->inner) % sv->C;                                             \
            STORE(c->dt, res->out, e, elem_##SUF(sv, x[e], res->par + 6 * ch, clamp, up));     \
        }                                                                                      \
        free(x);                                                                               \
    }

DEFINE_RUN(float, f, widen_f, narrow_store)
DEFINE_RUN(double, d, widen_d, store_d)

static size_t esize(qdq_dtype dt) { return dt == QDQ_FLOAT64 ? 8 : dt == QDQ_FLOAT32 ? 4 : 2; }

/* Checks what the reference relies on; fills sv. 0, or -1 with why written. */
static int validate(const ref_case *c, view *sv, char *why, size_t whyn)
{
    const qdq_attrs *a = &c->attrs;
    if ((unsigned)c->dt > QDQ_BFLOAT16)
        return snprintf(why, whyn, "dtype %d", (int)c->dt), -1;
    if (c->rank < 0 || (c->rank > 0 && !c->dims))
        return snprintf(why, whyn, "rank %d", c->rank), -1;
    if (a->axis < -1 || a->axis >= c->rank)
        return snprintf(why, whyn, "axis %" PRId64 " for rank %d", a->axis, c->rank), -1;
    if (a->num_bits < 1 || a->num_bits > (a->signed_input ? 61 : 62))
        return snprintf(why, whyn, "num_bits %d", a->num_bits), -1;
    if (a->round_mode != QDQ_HALF_TO_EVEN && a->round_mode != QDQ_HALF_UP)
        return snprintf(why, whyn, "round_mode %d", a->round_mode), -1;
    /* An empty tensor (a dimension 0) may name any other dimensions: it has no elements. */
    bool empty = false;
    for (int i = 0; i < c->rank; i++) {
        if (c->dims[i] < 0)
            return snprintf(why, whyn, "dims[%d] = %" PRId64, i, c->dims[i]), -1;
        empty = empty || c->dims[i] == 0;
    }
    uint64_t count = !empty;
    for (int i = 0; i < c->rank && !empty; i++) {
        if (count > UINT64_MAX / (uint64_t)c->dims[i] / 8)
            return snprintf(why, whyn, "dims[%d] = %" PRId64, i, c->dims[i]), -1;
        count *= (uint64_t)c->dims[i];
    }
    sv->axis = a->axis;
    sv->count = count;
    sv->outer = sv->C = sv->inner = 1;
    if (empty) {
        sv->outer = sv->inner = 0;
        if (a->axis >= 0)
            sv->C = (uint64_t)c->dims[a->axis];
    } else if (a->axis >= 0) {
        for (int i = 0; i < a->axis; i++)
            sv->outer *= (uint64_t)c->dims[i];
        sv->C = (uint64_t)c->dims[a->axis];
        for (int i = (int)a->axis + 1; i < c->rank; i++)
            sv->inner *= (uint64_t)c->dims[i];
    } else {
        sv->inner = count;
    }
    if (sv->C > SIZE_MAX / 64)
        return snprintf(why, whyn, "%" PRIu64 " channels", sv->C), -1;
    if (count > 0 && !c->in)
        return snprintf(why, whyn, "no input"), -1;
    if (a->range_given) {
        if (!c->min || !c->max)
            return snprintf(why, whyn, "range_given without bounds"), -1;
        for (uint64_t ch = 0; ch < sv->C; ch++) {
            double lo = c->dt == QDQ_FLOAT64 ? widen_d(c->dt, c->min, ch) : widen_f(c->dt, c->min, ch);
            double hi = c->dt == QDQ_FLOAT64 ? widen_d(c->dt, c->max, ch) : widen_f(c->dt, c->max, ch);
            if (!(lo <= hi))
                return snprintf(why, whyn, "bounds [%g, %g] of channel %" PRIu64, lo, hi, ch), -1;
        }
    }
    return 0;
}

int ref_run(const ref_case *c, ref_result *res, ref_stats *st, char *why, size_t whyn)
{
    memset(res, 0, sizeof *res);
    ref_stats none;
    memset(&none, 0, sizeof none);
    view sv;
    if (validate(c, &sv, why, whyn))
        return -1;
    sv.st = st ? st : &none;
    res->count = sv.count;
    res->channels = sv.C;
    res->out = malloc(sv.count * esize(c->dt) + 1);
    res->par = malloc(6 * sv.C * sizeof(double) + 1);
    if (!res->out || !res->par) {
        ref_result_free(res);
        snprintf(why, whyn, "out of memory for %" PRIu64 " elements", sv.count);
        return -1;
    }
    if (c->dt == QDQ_FLOAT64)
        reference_d(c, &sv, res);
    else
        reference_f(c, &sv, res);
    return 0;
}

void ref_result_free(ref_result *res)
{
    free(res->out);
    free(res->par);
    memset(res, 0, sizeof *res);
}
