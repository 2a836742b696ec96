/*
 * The op's bookkeeping: validation, the plan, accumulators, scale computation, and the walk
 * that cuts an element range into per-channel pieces for the kernels (kernels.h).
 */
#include "qdq.h"

#ifdef __x86_64__
#include <cpuid.h>
#endif
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "exact.h"
#include "kernels.h"
#include "qdq_half.h"

size_t qdq_dtype_size(qdq_dtype dtype)
{
    switch (dtype) {
    case QDQ_FLOAT32: return 4;
    case QDQ_FLOAT64: return 8;
    case QDQ_FLOAT16:
    case QDQ_BFLOAT16: return 2;
    }
    return 0;
}

const char *qdq_dtype_name(qdq_dtype dtype)
{
    static const char *const names[] = { "float32", "float64", "float16", "bfloat16" };
    return (unsigned)dtype < 4 ? names[dtype] : NULL;
}

/* What the CPU offers, asked once: cpuid traps to the hypervisor in a VM and costs microseconds. */
static qdq_isa detect_isa(void)
{
#ifdef QDQ_HAVE_AVX2
    /* AVX2 and F16C in the CPU, and YMM state enabled by the OS (OSXSAVE, XCR0 bits 1-2). */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return QDQ_ISA_PORTABLE;
    bool f16c = c & (1u << 29), avx = c & (1u << 28), osxsave = c & (1u << 27);
    if (!f16c || !avx || !osxsave)
        return QDQ_ISA_PORTABLE;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5)))
        return QDQ_ISA_PORTABLE;
    return QDQ_ISA_AVX2;
#else
    return QDQ_ISA_PORTABLE;
#endif
}

qdq_isa qdq_isa_best(void)
{
    /* A constant of the machine: racing threads compute the same value. */
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = (int)detect_isa();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return (qdq_isa)v;
}

static const qdq_kernels *kernels(const qdq_plan *p)
{
#ifdef QDQ_HAVE_AVX2
    if (p->isa == QDQ_ISA_AVX2)
        return &qdq_kernels_avx2[p->dtype];
#endif
    return &qdq_kernels_portable[p->dtype];
}

/* Size of the compute type: float64 computes in double, the others in float. */
static size_t tsize(const qdq_plan *p) { return p->dtype == QDQ_FLOAT64 ? 8 : 4; }

/* The accumulator's arrays and the parameter block's array j (kernels.h), from channel c. */
static qdq_acc_ptrs acc_at(const qdq_plan *p, const void *acc, uint64_t c)
{
    return qdq_acc_at((void *)acc, p->channels, tsize(p), c);
}

static void *par_at(const qdq_plan *p, const void *params, int j, uint64_t c)
{
    return qdq_block_at(params, p->channels, tsize(p), j, c);
}

int qdq_plan_init(qdq_plan *plan, qdq_dtype dtype, const int64_t *dims, int rank,
                  const qdq_attrs *a, qdq_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (qdq_dtype_size(dtype) == 0)
        return qdq_fail(err, QDQ_EINVAL, "dtype is not supported: %d", (int)dtype);
    if (a->num_bits < 1 || a->num_bits > (a->signed_input ? 61 : 62))
        return qdq_fail(err, QDQ_EINVAL, "num_bits is out of range: %d with signed_input_ %d (allowed: 1..%d)",
                    a->num_bits, a->signed_input ? 1 : 0, a->signed_input ? 61 : 62);
    if (a->round_mode != QDQ_HALF_TO_EVEN && a->round_mode != QDQ_HALF_UP)
        return qdq_fail(err, QDQ_EINVAL, "round_mode must be HALF_TO_EVEN or HALF_UP (got %d)", a->round_mode);
    if (a->axis < -1)
        return qdq_fail(err, QDQ_EINVAL, "axis must be at least -1. Found %" PRId64, a->axis);
    if (rank < 0)
        return qdq_fail(err, QDQ_EINVAL, "rank must be at least 0 (got %d)", rank);
    if (a->axis >= rank)
        return qdq_fail(err, QDQ_EINVAL, "Shape must be at least rank %llu but is rank %d",
                    (unsigned long long)a->axis + 1, rank);
    uint64_t count = 1, outer = 1, inner = 1, channels = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return qdq_fail(err, QDQ_EINVAL, "dims[%d] must be at least 0 (got %" PRId64 ")", i, dims[i]);
        uint64_t d = (uint64_t)dims[i];
        if (d != 0 && count > UINT64_MAX / d)
            return qdq_fail(err, QDQ_EINVAL, "element count overflows 64 bits at dims[%d] = %" PRId64, i, dims[i]);
        count *= d;
    }
    if (a->axis >= 0) {
        for (int i = 0; i < a->axis; i++)
            outer *= (uint64_t)dims[i];
        channels = (uint64_t)dims[a->axis];
        if (channels > SIZE_MAX / 64) /* the accumulator and parameter blocks must be sizable */
            return qdq_fail(err, QDQ_EINVAL, "dims[%" PRId64 "] = %" PRIu64 " channels is too many for axis %"
                        PRId64, a->axis, channels, a->axis);
        for (int i = (int)a->axis + 1; i < rank; i++)
            inner *= (uint64_t)dims[i];
        if (count == 0) /* products of the other dims may exceed 64 bits when one dim is 0 */
            outer = inner = channels ? 0 : 1;
    } else {
        inner = count;
    }
    int b = a->num_bits;
    plan->qmin = a->signed_input ? -(int64_t)(1ULL << (b - 1)) + (a->narrow_range ? 1 : 0) : 0;
    plan->qmax = a->signed_input ? (int64_t)((1ULL << (b - 1)) - 1) : (int64_t)((1ULL << b) - 1);
    plan->dtype = dtype;
    plan->attrs = *a;
    plan->count = count;
    plan->outer = outer;
    plan->channels = channels;
    plan->inner = inner;
    plan->isa = qdq_isa_best();
    return QDQ_OK;
}

/* The layouts are kernels.h's: five arrays of C values of T; six, then the no-tie word (nonzero
 * when no product narrows from a tie: bf16_noties). */
size_t qdq_acc_size(const qdq_plan *p) { return QDQ_ACC_ARRAYS * p->channels * tsize(p); }
size_t qdq_params_size(const qdq_plan *p) { return QDQ_PAR_ARRAYS * p->channels * tsize(p) + 8; }

/* GCC/Clang vector extensions (any target), for the fill and the no-tie check. */
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

/* Sets n floats or doubles (bytes: 4 or 8 each) at dst to v, 64 bytes a step (0.6x the time of
 * 16 bytes a step with the dtype tested in the loop). */
static void fill(void *dst, uint64_t n, size_t bytes, double v)
{
    char *d = dst, pat[16];
    uint64_t total = n * bytes, k = 0;
    v4f f4 = { (float)v, (float)v, (float)v, (float)v };
    v2d d2 = { v, v };
    if (bytes == 4)
        memcpy(pat, &f4, sizeof pat);
    else
        memcpy(pat, &d2, sizeof pat);
    for (; k + 64 <= total; k += 64) {
        memcpy(d + k, pat, 16), memcpy(d + k + 16, pat, 16);
        memcpy(d + k + 32, pat, 16), memcpy(d + k + 48, pat, 16);
    }
    for (; k + 16 <= total; k += 16)
        memcpy(d + k, pat, 16);
    for (; k < total; k += bytes)
        memcpy(d + k, pat, bytes);
}

void qdq_acc_init_channels(const qdq_plan *p, void *acc, uint64_t c0, uint64_t c1)
{
    uint64_t C = p->channels;
    size_t ts = tsize(p);
    c1 = c1 < C ? c1 : C;
    if (c0 >= c1)
        return;
    qdq_acc_ptrs a = acc_at(p, acc, c0);
    uint64_t n = c1 - c0;
    fill(a.mn, n, ts, INFINITY);
    fill(a.mx, n, ts, -INFINITY);
    memset(a.nz, 0, n * ts), memset(a.pz, 0, n * ts), memset(a.nn, 0, n * ts);
}

void qdq_acc_init(const qdq_plan *p, void *acc)
{
    qdq_acc_init_channels(p, acc, 0, p->channels);
}

/* Calls the kernel on each per-channel piece of [begin, end). The position is divided out once;
 * the walk then steps from piece to piece. */
void qdq_reduce(const qdq_plan *p, void *acc, const void *data, uint64_t begin, uint64_t end)
{
    const qdq_kernels *k = kernels(p);
    size_t es = qdq_dtype_size(p->dtype);
    uint64_t C = p->channels;
    qdq_acc_ptrs a = acc_at(p, acc, 0), ac;
    const char *in = data;
    if (begin >= end)
        return;
    if (C == 1) {
        k->reduce_run(in + begin * es, end - begin, a.mn, a.mx, a.nz, a.pz, a.nn);
    } else if (p->inner == 1) { /* last axis: consecutive elements are consecutive channels */
        uint64_t c = begin % C;
        if (c != 0) { /* the rest of a row */
            uint64_t n = C - c < end - begin ? C - c : end - begin;
            ac = acc_at(p, acc, c);
            k->reduce_lanes(in + begin * es, n, ac.mn, ac.mx, ac.nz, ac.pz, ac.nn);
            begin += n;
        }
        if (end - begin >= 2 * C) { /* whole rows */
            uint64_t rows = (end - begin) / C;
            k->reduce_rows(in + begin * es, rows, C, C, a.mn, a.mx, a.nz, a.pz, a.nn,
                           qdq_tuning_of(p));
            begin += rows * C;
        }
        for (; begin < end; begin += C < end - begin ? C : end - begin)
            k->reduce_lanes(in + begin * es, C < end - begin ? C : end - begin, a.mn, a.mx, a.nz,
                            a.pz, a.nn);
    } else {
        uint64_t i = begin % p->inner, c = (begin / p->inner) % C;
        while (begin < end) {
            uint64_t runs = i == 0 ? (end - begin) / p->inner : 0;
            ac = acc_at(p, acc, c);
            if (runs >= 2) { /* whole runs of consecutive channels */
                runs = runs < C - c ? runs : C - c;
                k->reduce_cols(in + begin * es, runs, p->inner, ac.mn, ac.mx, ac.nz, ac.pz,
                               ac.nn);
                begin += runs * p->inner;
                c = c + runs == C ? 0 : c + runs;
                continue;
            }
            uint64_t n = p->inner - i < end - begin ? p->inner - i : end - begin;
            k->reduce_run(in + begin * es, n, ac.mn, ac.mx, ac.nz, ac.pz, ac.nn);
            begin += n, i = 0;
            c = c + 1 == C ? 0 : c + 1;
        }
    }
}

void qdq_acc_merge_channels(const qdq_plan *p, void *dst, const void *src, uint64_t c0,
                            uint64_t c1)
{
    c1 = c1 < p->channels ? c1 : p->channels;
    if (c0 >= c1)
        return;
    kernels(p)->merge(p->channels, dst, src, c0, c1);
}

void qdq_acc_merge(const qdq_plan *p, void *dst, const void *src)
{
    qdq_acc_merge_channels(p, dst, src, 0, p->channels);
}

/* The scale, inverse scale and adjusted range of channels [c0, c1) from their ranges in params
 * (scale.h). */
static void scales(const qdq_plan *p, void *params, uint64_t c0, uint64_t c1)
{
    double qd[2] = { (double)p->qmin, (double)p->qmax };
    float qf[2] = { (float)p->qmin, (float)p->qmax };
    kernels(p)->scales(c1 - c0, p->dtype == QDQ_FLOAT64 ? (const void *)qd : (const void *)qf,
                       par_at(p, params, QDQ_PAR_IN_MIN, c0), par_at(p, params, QDQ_PAR_IN_MAX, c0),
                       par_at(p, params, QDQ_PAR_LO, c0), par_at(p, params, QDQ_PAR_HI, c0),
                       par_at(p, params, QDQ_PAR_SCALE, c0), par_at(p, params, QDQ_PAR_INV, c0));
}

/*
 * The range of channels [c0, c1) from a complete reduction, into the parameter block's in_min,
 * in_max.
 * NaN-free channels whose zero extremes have one sign are order-independent: the kernels'
 * result is exact, with the zero's sign from the flags. Otherwise Eigen's order decides
 * (exact.c).
 */
#define DEFINE_RANGES(name, T, F)                                                              \
    static void name(const qdq_plan *p, const void *acc, const void *data, void *params,       \
                     uint64_t c0, uint64_t c1)                                                 \
    {                                                                                          \
        qdq_acc_ptrs a = acc_at(p, acc, 0);                                                    \
        const T *mn = a.mn, *mx = a.mx;                                                        \
        const F *nz = a.nz, *pz = a.pz, *nn = a.nn;                                            \
        T *lo = par_at(p, params, QDQ_PAR_IN_MIN, 0);                                          \
        T *hi = par_at(p, params, QDQ_PAR_IN_MAX, 0);                                          \
        for (uint64_t c = c0; c < c1; c++) {                                                   \
            T l = mn[c], h = mx[c];                                                            \
            if ((nn[c] != 0) | ((nz[c] != 0) & (pz[c] != 0) & ((l == 0) | (h == 0)))) {       \
                double el, eh;                                                                 \
                qdq_exact_range(p, data, c, &el, &eh);                                         \
                lo[c] = (T)el, hi[c] = (T)eh;                                                  \
                continue;                                                                      \
            }                                                                                  \
            T zero = nz[c] ? -(T)0 : (T)0;                                                     \
            lo[c] = l == 0 ? zero : l;                                                         \
            hi[c] = h == 0 ? zero : h;                                                         \
        }                                                                                      \
    }
DEFINE_RANGES(ranges_scalar_f, float, int32_t)
DEFINE_RANGES(ranges_d, double, int64_t)

/*
 * bfloat16's transform narrows each product y * inv (y: the element scaled and rounded) from
 * float32 to nearest even. The AVX2 kernels have a cheaper narrowing that agrees unless a
 * product's lower half is exactly 0x8000 (a tie). When every element x lies in [l, h] (the data's
 * range, or the clamp's), y lies between the y of l and the y of h, each step from x to y being
 * monotonic (scale >= 0): if those integers are few (at most 1 per noties_per elements, fewer
 * than noties_max: the plan's tuning), each one's product is looked at here, once per tensor.
 * False when any is a tie, or when the bounds are not finite, small integers.
 */
static bool bf16_noties(const qdq_plan *p, float l, float h, float s, float inv)
{
    const qdq_tuning *t = qdq_tuning_of(p);
    bool up = p->attrs.round_mode == QDQ_HALF_UP;
    float yl = l * s, yh = h * s;
    yl = up ? floorf(yl + 0.5f) : rintf(yl);
    yh = up ? floorf(yh + 0.5f) : rintf(yh);
    if (!(yl <= yh && yl > -0x1p23f && yh < 0x1p23f && yh - yl < (float)t->noties_max &&
          (uint64_t)(yh - yl) * t->noties_per < p->count))
        return false;
    v4f y = { yl, yl + 1, yl + 2, yl + 3 }, top = { yh, yh, yh, yh }, four = { 4, 4, 4, 4 };
    v4f vi = { inv, inv, inv, inv };
    const v4i low = { 0xffff, 0xffff, 0xffff, 0xffff }, tie = { 0x8000, 0x8000, 0x8000, 0x8000 };
    v4i any = { 0, 0, 0, 0 };
    for (float k = yl; k <= yh; k += 4, y += four) {
        v4i yb, tb, in = y <= top, b; /* lanes past yh take yh */
        v4f q;
        memcpy(&yb, &y, sizeof yb), memcpy(&tb, &top, sizeof tb);
        yb = (in & yb) | (~in & tb);
        memcpy(&q, &yb, sizeof q);
        q *= vi;
        memcpy(&b, &q, sizeof b);
        any |= (b & low) == tie;
    }
    return (any[0] | any[1] | any[2] | any[3]) == 0;
}

/* The parameter block's no-tie word (per tensor only), past its six arrays: set by the
 * parameters' makers, read by qdq_apply. */
static bool noties_get(const qdq_plan *p, const void *params)
{
    uint64_t w;
    memcpy(&w, par_at(p, params, QDQ_PAR_ARRAYS, 0), sizeof w);
    return w != 0;
}

/* Sets the word: per tensor, bfloat16, with every element within [l, h] (`bounded`; parameter
 * arrays il and ih: QDQ_PAR_IN_MIN and _MAX for the data's range, QDQ_PAR_LO and _HI for the
 * clamp's), whether the transform has no tie. Otherwise (and per channel) it is clear. */
static void noties_from(const qdq_plan *p, void *params, bool bounded, int il, int ih)
{
    uint64_t w = bounded && p->channels == 1 && p->dtype == QDQ_BFLOAT16 &&
                 bf16_noties(p, *(const float *)par_at(p, params, il, 0),
                             *(const float *)par_at(p, params, ih, 0),
                             *(const float *)par_at(p, params, QDQ_PAR_SCALE, 0),
                             *(const float *)par_at(p, params, QDQ_PAR_INV, 0));
    memcpy(par_at(p, params, QDQ_PAR_ARRAYS, 0), &w, sizeof w); /* whole: blocks compare equal */
}

void qdq_params_from_acc_channels(const qdq_plan *p, const void *acc, const void *data,
                                  void *params, uint64_t c0, uint64_t c1)
{
    c1 = c1 < p->channels ? c1 : p->channels;
    if (c0 >= c1)
        return;
    const qdq_kernels *k = kernels(p);
    int exact = 0;
    uint64_t c = k->ranges ? k->ranges(p->channels, acc, params, c0, c1, &exact) : c0;
    /* The channels past the kernel's (all of them without one: float64, the portable family);
     * or all again when one needs Eigen's order (rare). */
    c = exact ? c0 : c;
    if (p->dtype == QDQ_FLOAT64)
        ranges_d(p, acc, data, params, c, c1);
    else
        ranges_scalar_f(p, acc, data, params, c, c1);
    scales(p, params, c0, c1);
    /* The word is written by the worker with channel 0 alone. With a NaN the range is Eigen's,
     * which need not hold every element: no bounds then (channel 0's nn flag; the flags of the
     * float32-computing dtypes are int32). */
    if (c0 == 0)
        noties_from(p, params,
                    p->dtype != QDQ_FLOAT64 && *(const int32_t *)acc_at(p, acc, 0).nn == 0,
                    QDQ_PAR_IN_MIN, QDQ_PAR_IN_MAX);
}

void qdq_params_from_acc(const qdq_plan *p, const void *acc, const void *data, void *params)
{
    qdq_params_from_acc_channels(p, acc, data, params, 0, p->channels);
}

/* A bound as text for messages: shortest form that identifies it. */
static const char *bound_str(char *buf, size_t n, double v, bool is_double)
{
    if (isnan(v))
        return "NaN";
    snprintf(buf, n, "%.*g", is_double ? 17 : 9, v);
    return buf;
}

int qdq_params_given(const qdq_plan *p, const void *min, size_t n_min, const void *max,
                     size_t n_max, void *params, qdq_error *err)
{
    uint64_t C = p->channels;
    bool dbl = p->dtype == QDQ_FLOAT64;
    if (p->attrs.axis < 0) {
        if (n_min != 1)
            return qdq_fail(err, QDQ_EINVAL, "input_min must be a scalar when axis is -1 (got %zu values)", n_min);
        if (n_max != 1)
            return qdq_fail(err, QDQ_EINVAL, "input_max must be a scalar when axis is -1 (got %zu values)", n_max);
    } else {
        if (n_min != C)
            return qdq_fail(err, QDQ_EINVAL, "input_min_tensor has incorrect size, was %zu expected %" PRIu64
                        " to match dim %" PRId64 " of the input", n_min, C, p->attrs.axis);
        if (n_max != C)
            return qdq_fail(err, QDQ_EINVAL, "input_max_tensor has incorrect size, was %zu expected %" PRIu64
                        " to match dim %" PRId64 " of the input", n_max, C, p->attrs.axis);
    }
    /* The bounds, widened to T (exact), go to the block's in_min and in_max and are checked
     * there: T's comparison is the dtype's. */
    void *lo = par_at(p, params, QDQ_PAR_IN_MIN, 0), *hi = par_at(p, params, QDQ_PAR_IN_MAX, 0);
    switch (p->dtype) {
    case QDQ_FLOAT32:
    case QDQ_FLOAT64:
        memcpy(lo, min, C * tsize(p));
        memcpy(hi, max, C * tsize(p));
        break;
    case QDQ_FLOAT16:
        for (uint64_t c = 0; c < C; c++) {
            ((float *)lo)[c] = qdq_f16_to_f32(((const uint16_t *)min)[c]);
            ((float *)hi)[c] = qdq_f16_to_f32(((const uint16_t *)max)[c]);
        }
        break;
    case QDQ_BFLOAT16:
        for (uint64_t c = 0; c < C; c++) {
            ((float *)lo)[c] = qdq_bf16_to_f32(((const uint16_t *)min)[c]);
            ((float *)hi)[c] = qdq_bf16_to_f32(((const uint16_t *)max)[c]);
        }
        break;
    }
    for (uint64_t c = 0; c < C; c++) {
        double l = dbl ? ((const double *)lo)[c] : ((const float *)lo)[c];
        double h = dbl ? ((const double *)hi)[c] : ((const float *)hi)[c];
        if (!(l <= h)) {
            char a[40], b[40], where[48] = "";
            if (p->attrs.axis >= 0)
                snprintf(where, sizeof where, " at channel %" PRIu64, c);
            return qdq_fail(err, QDQ_EINVAL, "Invalid range: input_min %s > input_max %s%s",
                        bound_str(a, sizeof a, l, dbl), bound_str(b, sizeof b, h, dbl), where);
        }
    }
    scales(p, params, 0, C);
    noties_from(p, params, true, QDQ_PAR_LO, QDQ_PAR_HI); /* the clamp's bounds */
    return QDQ_OK;
}

/*
 * A channel whose inverse scale is NaN (its range held a NaN in Eigen's order) outputs that NaN
 * for every element. The multiply would give it too, except for NaN elements: NaN times NaN keeps
 * either operand's payload, whichever the compiler put first, and that differs between kernels
 * (and so between splits). The inverse scale's own NaN makes the answer one.
 */
/* Whether any of n values is NaN: four lanes a step (the check runs on every applied range). */
static bool any_nan_f(const float *v, uint64_t n)
{
    uint64_t k = 0;
    v4i bad = { 0, 0, 0, 0 };
    for (; k + 4 <= n; k += 4) {
        v4f x;
        memcpy(&x, v + k, sizeof x);
        bad |= x != x;
    }
    bool nan = (bad[0] | bad[1] | bad[2] | bad[3]) != 0;
    for (; k < n; k++)
        nan |= v[k] != v[k];
    return nan;
}

static bool any_nan_d(const double *v, uint64_t n)
{
    bool nan = false;
    for (uint64_t k = 0; k < n; k++)
        nan |= v[k] != v[k];
    return nan;
}

/* Whether a channel that elements [begin, end) (begin < end) belong to has a NaN inverse scale.
 * Only those channels are looked at: the cost follows the range, not the channel count, since
 * a server applies a tensor in many small ranges as its body arrives. */
static bool any_nan_inv(const qdq_plan *p, const void *params, uint64_t begin, uint64_t end)
{
    uint64_t C = p->channels, c = 0, count = 1;
    if (C > 1) { /* the runs of `inner` elements the range touches, one channel each */
        uint64_t u0 = begin / p->inner, u1 = (end - 1) / p->inner;
        c = u0 % C, count = u1 - u0 + 1 < C ? u1 - u0 + 1 : C;
    }
    /* Channels [c, c + count), wrapping past the last: at most two runs. */
    uint64_t n1 = count < C - c ? count : C - c;
    const void *iv = par_at(p, params, QDQ_PAR_INV, 0);
    if (p->dtype == QDQ_FLOAT64)
        return any_nan_d((const double *)iv + c, n1) || any_nan_d(iv, count - n1);
    return any_nan_f((const float *)iv + c, n1) || any_nan_f(iv, count - n1);
}

/* Element i := the NaN inverse scale of its channel c, in the storage type, when it is NaN. */
static void nan_put(const qdq_plan *p, const void *params, void *out, uint64_t i, uint64_t c)
{
    if (p->dtype == QDQ_FLOAT64) {
        double v = *(const double *)par_at(p, params, QDQ_PAR_INV, c);
        if (v != v)
            ((double *)out)[i] = v;
        return;
    }
    float v = *(const float *)par_at(p, params, QDQ_PAR_INV, c);
    if (v == v)
        return;
    switch (p->dtype) {
    case QDQ_FLOAT32: ((float *)out)[i] = v; break;
    case QDQ_FLOAT16: ((uint16_t *)out)[i] = qdq_f32_to_f16(v); break;
    case QDQ_BFLOAT16: ((uint16_t *)out)[i] = qdq_f32_to_bf16(v); break;
    default: break;
    }
}

/* The elements [begin, end) of channels with a NaN inverse scale, made that NaN. */
static void nan_channels(const qdq_plan *p, const void *params, void *out, uint64_t begin,
                         uint64_t end)
{
    uint64_t C = p->channels, inner = p->inner;
    uint64_t i = C == 1 ? 0 : begin % inner, c = C == 1 ? 0 : (begin / inner) % C;
    for (uint64_t k = begin; k < end; k++) {
        nan_put(p, params, out, k, c);
        if (C > 1 && ++i == inner)
            i = 0, c = c + 1 == C ? 0 : c + 1;
    }
}

/* The kernels on each per-channel piece of [begin, end), as qdq_reduce walks; with st, the stats
 * kernels (whole rows one by one, runs of a channel one by one), the statistics into st. */
static void apply_kernels(const qdq_plan *p, const void *params, const void *data, void *out,
                          uint64_t begin, uint64_t end, qdq_stats *st)
{
    const qdq_kernels *k = kernels(p);
    size_t es = qdq_dtype_size(p->dtype), ts = tsize(p);
    uint64_t C = p->channels;
    qdq_apply_ptrs a = qdq_apply_at(params, C, ts, 0), ac;
    const char *in = data;
    char *o = out;
    int clamp = p->attrs.range_given, up = p->attrs.round_mode == QDQ_HALF_UP;
    if (begin >= end)
        return;
    if (C == 1) {
        if (st)
            k->apply_run_stats(in + begin * es, o + begin * es, end - begin, a.lo, a.hi, a.scale,
                               a.inv, clamp, up, st);
        else if (k->apply_run_noties && noties_get(p, params))
            k->apply_run_noties(in + begin * es, o + begin * es, end - begin, a.lo, a.hi,
                                a.scale, a.inv, clamp, up);
        else
            k->apply_run(in + begin * es, o + begin * es, end - begin, a.lo, a.hi, a.scale,
                         a.inv, clamp, up);
    } else if (p->inner == 1) { /* last axis: rows of C channels */
        uint64_t c = begin % C;
        if (c != 0) { /* the rest of a row */
            uint64_t n = C - c < end - begin ? C - c : end - begin;
            ac = qdq_apply_at(params, C, ts, c);
            if (st)
                k->apply_lanes_stats(in + begin * es, o + begin * es, n, ac.lo, ac.hi, ac.scale,
                                     ac.inv, clamp, up, st);
            else
                k->apply_lanes(in + begin * es, o + begin * es, n, ac.lo, ac.hi, ac.scale,
                               ac.inv, clamp, up);
            begin += n;
        }
        uint64_t rows = (end - begin) / C;
        if (rows > 0) {
            if (st)
                k->apply_rows_stats(in + begin * es, o + begin * es, rows, C, C, a.lo, a.hi,
                                    a.scale, a.inv, clamp, up, st);
            else
                k->apply_rows(in + begin * es, o + begin * es, rows, C, C, a.lo, a.hi, a.scale,
                              a.inv, clamp, up, qdq_tuning_of(p));
            begin += rows * C;
        }
        if (begin < end && st)
            k->apply_lanes_stats(in + begin * es, o + begin * es, end - begin, a.lo, a.hi,
                                 a.scale, a.inv, clamp, up, st);
        else if (begin < end)
            k->apply_lanes(in + begin * es, o + begin * es, end - begin, a.lo, a.hi, a.scale,
                           a.inv, clamp, up);
    } else {
        uint64_t i = begin % p->inner, c = (begin / p->inner) % C;
        while (begin < end) {
            uint64_t runs = i == 0 && !st ? (end - begin) / p->inner : 0;
            ac = qdq_apply_at(params, C, ts, c);
            if (runs >= 2) { /* whole runs of consecutive channels */
                runs = runs < C - c ? runs : C - c;
                k->apply_cols(in + begin * es, o + begin * es, runs, p->inner, ac.lo, ac.hi,
                              ac.scale, ac.inv, clamp, up);
                begin += runs * p->inner;
                c = c + runs == C ? 0 : c + runs;
                continue;
            }
            uint64_t n = p->inner - i < end - begin ? p->inner - i : end - begin;
            if (st)
                k->apply_run_stats(in + begin * es, o + begin * es, n, ac.lo, ac.hi, ac.scale,
                                   ac.inv, clamp, up, st);
            else
                k->apply_run(in + begin * es, o + begin * es, n, ac.lo, ac.hi, ac.scale, ac.inv,
                             clamp, up);
            begin += n, i = 0;
            c = c + 1 == C ? 0 : c + 1;
        }
    }
}

/* A NaN inverse scale makes every output of its channel NaN, whichever payload: the statistics
 * the stats kernels took before nan_channels are the same. */
void qdq_apply_stats(const qdq_plan *p, const void *params, const void *data, void *out,
                     uint64_t begin, uint64_t end, qdq_stats *st)
{
    apply_kernels(p, params, data, out, begin, end, st);
    if (begin < end && any_nan_inv(p, params, begin, end)) /* rare */
        nan_channels(p, params, out, begin, end);
}

void qdq_apply(const qdq_plan *p, const void *params, const void *data, void *out,
               uint64_t begin, uint64_t end)
{
    qdq_apply_stats(p, params, data, out, begin, end, NULL);
}

/*
 * The elements of [begin, end) whose channel is in [c0, c1) (c0 < c1 <= C, begin < end): per
 * outer index they are one contiguous piece, given to piece(); on the last axis the pieces of
 * whole rows between the first and the last go to rows() at once (first piece's start, count).
 */
static void channel_walk(const qdq_plan *p, uint64_t begin, uint64_t end, uint64_t c0,
                         uint64_t c1, void (*piece)(void *ctx, uint64_t b, uint64_t e),
                         void (*rows)(void *ctx, uint64_t b, uint64_t n), void *ctx)
{
    if (c0 == 0 && c1 == p->channels) { /* all channels: every element of the range */
        piece(ctx, begin, end);
        return;
    }
    uint64_t unit = p->channels * p->inner, o0 = begin / unit, o1 = (end - 1) / unit;
    uint64_t lo = c0 * p->inner, hi = c1 * p->inner; /* the piece within an outer index */
    for (uint64_t o = o0; o <= o1; o++) {
        uint64_t b = o * unit + lo, e = o * unit + hi;
        if (p->inner == 1 && p->channels > 1 && b >= begin && o < o1) { /* whole row pieces */
            uint64_t n = o1 - o + (o1 * unit + hi <= end);
            rows(ctx, b, n);
            o += n - 1;
            continue;
        }
        b = b > begin ? b : begin, e = e < end ? e : end;
        if (b < e)
            piece(ctx, b, e);
    }
}

typedef struct channel_job {
    const qdq_plan *p;
    void *acc;
    const void *params, *in;
    void *out;
    uint64_t c0, c1;
    qdq_stats *st; /* the transform's statistics, or NULL */
} channel_job;

static void reduce_piece(void *ctx, uint64_t b, uint64_t e)
{
    channel_job *j = ctx;
    qdq_reduce(j->p, j->acc, j->in, b, e);
}

static void reduce_rows_at(void *ctx, uint64_t b, uint64_t n)
{
    channel_job *j = ctx;
    const qdq_plan *p = j->p;
    qdq_acc_ptrs a = acc_at(p, j->acc, j->c0);
    kernels(p)->reduce_rows((const char *)j->in + b * qdq_dtype_size(p->dtype), n, p->channels,
                            j->c1 - j->c0, a.mn, a.mx, a.nz, a.pz, a.nn, qdq_tuning_of(p));
}

void qdq_reduce_channels(const qdq_plan *p, void *acc, const void *data, uint64_t begin,
                         uint64_t end, uint64_t c0, uint64_t c1)
{
    channel_job j = { p, acc, NULL, data, NULL, c0, c1 < p->channels ? c1 : p->channels, NULL };
    if (begin < end && j.c0 < j.c1)
        channel_walk(p, begin, end, j.c0, j.c1, reduce_piece, reduce_rows_at, &j);
}

static void apply_piece(void *ctx, uint64_t b, uint64_t e)
{
    channel_job *j = ctx;
    qdq_apply_stats(j->p, j->params, j->in, j->out, b, e, j->st);
}

static void apply_rows_at(void *ctx, uint64_t b, uint64_t n)
{
    channel_job *j = ctx;
    const qdq_plan *p = j->p;
    uint64_t C = p->channels, w = j->c1 - j->c0;
    size_t es = qdq_dtype_size(p->dtype);
    qdq_apply_ptrs a = qdq_apply_at(j->params, C, tsize(p), j->c0);
    int clamp = p->attrs.range_given, up = p->attrs.round_mode == QDQ_HALF_UP;
    const char *in = (const char *)j->in + b * es;
    char *out = (char *)j->out + b * es;
    if (j->st)
        kernels(p)->apply_rows_stats(in, out, n, C, w, a.lo, a.hi, a.scale, a.inv, clamp, up,
                                     j->st);
    else
        kernels(p)->apply_rows(in, out, n, C, w, a.lo, a.hi, a.scale, a.inv, clamp, up,
                               qdq_tuning_of(p));
    if (any_nan_inv(p, j->params, b, b + w)) /* rare */
        for (uint64_t r = 0; r < n; r++)
            nan_channels(p, j->params, j->out, b + r * C, b + r * C + w);
}

static void apply_channels(const qdq_plan *p, const void *params, const void *in, void *out,
                           uint64_t begin, uint64_t end, uint64_t c0, uint64_t c1,
                           qdq_stats *st)
{
    channel_job j = { p, NULL, params, in, out, c0, c1 < p->channels ? c1 : p->channels, st };
    if (begin < end && j.c0 < j.c1)
        channel_walk(p, begin, end, j.c0, j.c1, apply_piece, apply_rows_at, &j);
}

void qdq_apply_channels(const qdq_plan *p, const void *params, const void *in, void *out,
                        uint64_t begin, uint64_t end, uint64_t c0, uint64_t c1)
{
    apply_channels(p, params, in, out, begin, end, c0, c1, NULL);
}

static void run_channels(const qdq_plan *p, const void *in, void *out, void *acc, void *params,
                         uint64_t c0, uint64_t c1, qdq_stats *st)
{
    c1 = c1 < p->channels ? c1 : p->channels;
    if (c0 >= c1)
        return;
    if (p->attrs.range_given) {
        apply_channels(p, params, in, out, 0, p->count, c0, c1, st);
        return;
    }
    /* The channels taken together hold at most the tuning's fuse_bytes (at least one channel):
     * the transform then reads what the reduction has just brought into L2. On the last axis a
     * range of channels is a column of rows: nothing stays in cache. */
    uint64_t bytes = p->count / p->channels * qdq_dtype_size(p->dtype), step = c1 - c0;
    uint64_t fuse = qdq_tuning_of(p)->fuse_bytes;
    if (p->inner > 1 && bytes > 0)
        step = fuse / bytes > 0 ? fuse / bytes : 1;
    for (uint64_t b0 = c0; b0 < c1; b0 += step) {
        uint64_t b1 = c1 - b0 > step ? b0 + step : c1;
        qdq_reduce_channels(p, acc, in, 0, p->count, b0, b1);
        qdq_params_from_acc_channels(p, acc, in, params, b0, b1);
        apply_channels(p, params, in, out, 0, p->count, b0, b1, st);
    }
}

void qdq_run_channels(const qdq_plan *p, const void *in, void *out, void *acc, void *params,
                      uint64_t c0, uint64_t c1)
{
    run_channels(p, in, out, acc, params, c0, c1, NULL);
}

void qdq_params_get(const qdq_plan *p, const void *params, uint64_t c, qdq_range *r)
{
    double v[QDQ_PAR_ARRAYS];
    for (int j = 0; j < QDQ_PAR_ARRAYS; j++)
        v[j] = p->dtype == QDQ_FLOAT64 ? *(const double *)par_at(p, params, j, c)
                                       : *(const float *)par_at(p, params, j, c);
    r->input_min = v[QDQ_PAR_IN_MIN], r->input_max = v[QDQ_PAR_IN_MAX];
    r->output_min = v[QDQ_PAR_LO], r->output_max = v[QDQ_PAR_HI];
    r->scale = v[QDQ_PAR_SCALE], r->inverse_scale = v[QDQ_PAR_INV];
}

int qdq_run_stats(const qdq_plan *p, const void *in, void *out, const void *min, size_t n_min,
                  const void *max, size_t n_max, void *acc, void *params, qdq_stats *st,
                  qdq_error *err)
{
    if (p->attrs.range_given) {
        int rc = qdq_params_given(p, min, n_min, max, n_max, params, err);
        if (rc)
            return rc;
    } else if (p->channels > 1) {
        qdq_acc_init(p, acc);
        run_channels(p, in, out, acc, params, 0, p->channels, st);
        return QDQ_OK;
    } else {
        qdq_acc_init(p, acc);
        qdq_reduce(p, acc, in, 0, p->count);
        qdq_params_from_acc(p, acc, in, params);
    }
    qdq_apply_stats(p, params, in, out, 0, p->count, st);
    return QDQ_OK;
}

int qdq_run(const qdq_plan *p, const void *in, void *out, const void *min, size_t n_min,
            const void *max, size_t n_max, void *acc, void *params, qdq_error *err)
{
    return qdq_run_stats(p, in, out, min, n_min, max, n_max, acc, params, NULL, err);
}

void qdq_stats_init(qdq_stats *s) { memset(s, 0, sizeof *s); }

void qdq_stats_merge(qdq_stats *dst, const qdq_stats *src)
{
    /* NaN differences are skipped in the greatest (qdq.h): src's is never NaN. */
    dst->max_abs_error = src->max_abs_error > dst->max_abs_error ? src->max_abs_error
                                                                 : dst->max_abs_error;
    dst->sum_sq_error += src->sum_sq_error, dst->sum_sq_input += src->sum_sq_input;
    dst->finite += src->finite, dst->nonfinite += src->nonfinite;
}

void qdq_stats_summarize(const qdq_stats *s, qdq_stats_summary *out)
{
    memset(out, 0, sizeof *out);
    out->nonfinite = s->nonfinite;
    out->sqnr_null = !(s->sum_sq_error != 0 && s->sum_sq_input != 0);
    if (s->finite == 0)
        return;
    bool nan = isnan(s->sum_sq_error); /* some difference was NaN */
    out->max_abs_error = nan ? NAN : s->max_abs_error;
    out->rmse = sqrt(s->sum_sq_error / (double)s->finite);
    if (!out->sqnr_null) /* as two logarithms: the quotient could overflow */
        out->sqnr_db = 10 * (log10(s->sum_sq_input) - log10(s->sum_sq_error));
}
