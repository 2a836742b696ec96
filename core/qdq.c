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

static int fail(qdq_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = QDQ_EINVAL;
    }
    return QDQ_EINVAL;
}

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

int qdq_plan_init(qdq_plan *plan, qdq_dtype dtype, const int64_t *dims, int rank,
                  const qdq_attrs *a, qdq_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (qdq_dtype_size(dtype) == 0)
        return fail(err, "dtype is not supported: %d", (int)dtype);
    if (a->num_bits < 1 || a->num_bits > (a->signed_input ? 61 : 62))
        return fail(err, "num_bits is out of range: %d with signed_input_ %d (allowed: 1..%d)",
                    a->num_bits, a->signed_input ? 1 : 0, a->signed_input ? 61 : 62);
    if (a->round_mode != QDQ_HALF_TO_EVEN && a->round_mode != QDQ_HALF_UP)
        return fail(err, "round_mode must be HALF_TO_EVEN or HALF_UP (got %d)", a->round_mode);
    if (a->axis < -1)
        return fail(err, "axis must be at least -1. Found %" PRId64, a->axis);
    if (rank < 0)
        return fail(err, "rank must be at least 0 (got %d)", rank);
    if (a->axis >= rank)
        return fail(err, "Shape must be at least rank %llu but is rank %d",
                    (unsigned long long)a->axis + 1, rank);
    uint64_t count = 1, outer = 1, inner = 1, channels = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return fail(err, "dims[%d] must be at least 0 (got %" PRId64 ")", i, dims[i]);
        uint64_t d = (uint64_t)dims[i];
        if (d != 0 && count > UINT64_MAX / d)
            return fail(err, "element count overflows 64 bits at dims[%d] = %" PRId64, i, dims[i]);
        count *= d;
    }
    if (a->axis >= 0) {
        for (int i = 0; i < a->axis; i++)
            outer *= (uint64_t)dims[i];
        channels = (uint64_t)dims[a->axis];
        if (channels > SIZE_MAX / 64) /* the accumulator and parameter blocks must be sizable */
            return fail(err, "dims[%" PRId64 "] = %" PRIu64 " channels is too many for axis %"
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

/* Accumulator: mn[C], mx[C] of T, then nz[C], pz[C], nn[C] flags of T's width (kernels.h). */
size_t qdq_acc_size(const qdq_plan *p) { return 5 * p->channels * tsize(p); }
/* Parameters: in_min, in_max, lo (output_min), hi (output_max), scale, inv; C values of T each. */
size_t qdq_params_size(const qdq_plan *p) { return 6 * p->channels * tsize(p); }

void qdq_acc_init(const qdq_plan *p, void *acc)
{
    uint64_t C = p->channels;
    if (p->dtype == QDQ_FLOAT64) {
        double *a = acc;
        for (uint64_t c = 0; c < C; c++)
            a[c] = INFINITY, a[C + c] = -INFINITY;
    } else {
        float *a = acc;
        for (uint64_t c = 0; c < C; c++)
            a[c] = INFINITY, a[C + c] = -INFINITY;
    }
    memset((char *)acc + 2 * C * tsize(p), 0, 3 * C * tsize(p));
}

/* Calls the kernel on each per-channel piece of [begin, end). */
void qdq_reduce(const qdq_plan *p, void *acc, const void *data, uint64_t begin, uint64_t end)
{
    const qdq_kernels *k = kernels(p);
    size_t es = qdq_dtype_size(p->dtype), ts = tsize(p);
    uint64_t C = p->channels;
    char *mn = acc, *mx = mn + C * ts, *nz = mx + C * ts, *pz = nz + C * ts, *nn = pz + C * ts;
    const char *in = data;
    while (begin < end) {
        uint64_t n, c;
        if (C == 1) {
            c = 0, n = end - begin;
            k->reduce_run(in + begin * es, n, mn, mx, nz, pz, nn);
        } else if (p->inner == 1) { /* last axis: consecutive elements are consecutive channels */
            c = begin % C;
            n = C - c < end - begin ? C - c : end - begin;
            if (c == 0 && end - begin >= 2 * C) { /* whole rows */
                uint64_t rows = (end - begin) / C;
                n = rows * C;
                k->reduce_rows(in + begin * es, rows, C, mn, mx, nz, pz, nn);
            } else {
                k->reduce_lanes(in + begin * es, n, mn + c * ts, mx + c * ts, nz + c * ts,
                                pz + c * ts, nn + c * ts);
            }
        } else {
            uint64_t i = begin % p->inner;
            c = (begin / p->inner) % C;
            n = p->inner - i < end - begin ? p->inner - i : end - begin;
            k->reduce_run(in + begin * es, n, mn + c * ts, mx + c * ts, nz + c * ts,
                          pz + c * ts, nn + c * ts);
        }
        begin += n;
    }
}

void qdq_acc_merge(const qdq_plan *p, void *dst, const void *src)
{
    uint64_t C = p->channels;
    if (p->dtype == QDQ_FLOAT64) {
        double *d = dst;
        const double *s = src;
        int64_t *df = (int64_t *)(d + 2 * C);
        const int64_t *sf = (const int64_t *)(s + 2 * C);
        for (uint64_t c = 0; c < C; c++) {
            d[c] = s[c] < d[c] ? s[c] : d[c];
            d[C + c] = s[C + c] > d[C + c] ? s[C + c] : d[C + c];
            df[c] |= sf[c], df[C + c] |= sf[C + c], df[2 * C + c] |= sf[2 * C + c];
        }
    } else {
        float *d = dst;
        const float *s = src;
        int32_t *df = (int32_t *)(d + 2 * C);
        const int32_t *sf = (const int32_t *)(s + 2 * C);
        for (uint64_t c = 0; c < C; c++) {
            d[c] = s[c] < d[c] ? s[c] : d[c];
            d[C + c] = s[C + c] > d[C + c] ? s[C + c] : d[C + c];
            df[c] |= sf[c], df[C + c] |= sf[C + c], df[2 * C + c] |= sf[2 * C + c];
        }
    }
}

/*
 * Scale, inverse scale and adjusted range from [lo, hi], all in T, exactly as TensorFlow's
 * ComputeQuantizationRange: qmin and qmax convert to T at each use.
 */
#define DEFINE_SCALE(name, T, T_MAX)                                                            \
    static void name(int64_t qmin, int64_t qmax, T lo, T hi, T out[6])                          \
    {                                                                                          \
        out[0] = lo, out[1] = hi;                                                              \
        T s_min = ((T)qmin * lo > 0) ? (T)qmin / lo : T_MAX;                                   \
        T s_max = ((T)qmax * hi > 0) ? (T)qmax / hi : T_MAX;                                   \
        T scale, inv;                                                                          \
        if (s_min < s_max) {                                                                   \
            scale = s_min, inv = lo / (T)qmin, hi = (T)qmax * inv;                             \
        } else {                                                                               \
            scale = s_max, inv = hi / (T)qmax, lo = (T)qmin * inv;                             \
        }                                                                                      \
        out[2] = lo, out[3] = hi, out[4] = scale, out[5] = inv;                                \
    }
DEFINE_SCALE(scale_f, float, FLT_MAX)
DEFINE_SCALE(scale_d, double, DBL_MAX)

/* Stores the six values of channel c into the parameter block's arrays. */
static void params_put(const qdq_plan *p, void *params, uint64_t c, const void *six)
{
    uint64_t C = p->channels;
    for (int j = 0; j < 6; j++) {
        if (p->dtype == QDQ_FLOAT64)
            ((double *)params)[j * C + c] = ((const double *)six)[j];
        else
            ((float *)params)[j * C + c] = ((const float *)six)[j];
    }
}

/*
 * The extremes of channel c. NaN-free channels whose zero extremes have one sign are
 * order-independent: the kernels' result is exact. Otherwise Eigen's order decides (exact.c).
 */
static void extremes(const qdq_plan *p, const void *acc, const void *data, uint64_t c,
                     double *lo, double *hi)
{
    uint64_t C = p->channels;
    bool dbl = p->dtype == QDQ_FLOAT64;
    const char *flags = (const char *)acc + 2 * C * tsize(p);
    bool nz, pz, nn;
    if (dbl) {
        const int64_t *f = (const int64_t *)flags;
        *lo = ((const double *)acc)[c], *hi = ((const double *)acc)[C + c];
        nz = f[c], pz = f[C + c], nn = f[2 * C + c];
    } else {
        const int32_t *f = (const int32_t *)flags;
        *lo = ((const float *)acc)[c], *hi = ((const float *)acc)[C + c];
        nz = f[c], pz = f[C + c], nn = f[2 * C + c];
    }
    if (nn || (nz && pz && (*lo == 0 || *hi == 0))) {
        qdq_exact_range(p, data, c, lo, hi);
        return;
    }
    if (*lo == 0)
        *lo = nz ? -0.0 : 0.0;
    if (*hi == 0)
        *hi = nz ? -0.0 : 0.0;
}

void qdq_params_from_acc(const qdq_plan *p, const void *acc, const void *data, void *params)
{
    for (uint64_t c = 0; c < p->channels; c++) {
        double lo, hi;
        extremes(p, acc, data, c, &lo, &hi);
        if (p->dtype == QDQ_FLOAT64) {
            double six[6];
            scale_d(p->qmin, p->qmax, lo, hi, six);
            params_put(p, params, c, six);
        } else {
            float six[6];
            scale_f(p->qmin, p->qmax, (float)lo, (float)hi, six);
            params_put(p, params, c, six);
        }
    }
}

/* Element i of an array of dtype values, widened to double (exact). */
static double widen(qdq_dtype dtype, const void *v, size_t i)
{
    switch (dtype) {
    case QDQ_FLOAT32: return ((const float *)v)[i];
    case QDQ_FLOAT64: return ((const double *)v)[i];
    case QDQ_FLOAT16: return qdq_f16_to_f32(((const uint16_t *)v)[i]);
    case QDQ_BFLOAT16: return qdq_bf16_to_f32(((const uint16_t *)v)[i]);
    }
    return NAN;
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
            return fail(err, "input_min must be a scalar when axis is -1 (got %zu values)", n_min);
        if (n_max != 1)
            return fail(err, "input_max must be a scalar when axis is -1 (got %zu values)", n_max);
    } else {
        if (n_min != C)
            return fail(err, "input_min_tensor has incorrect size, was %zu expected %" PRIu64
                        " to match dim %" PRId64 " of the input", n_min, C, p->attrs.axis);
        if (n_max != C)
            return fail(err, "input_max_tensor has incorrect size, was %zu expected %" PRIu64
                        " to match dim %" PRId64 " of the input", n_max, C, p->attrs.axis);
    }
    for (uint64_t c = 0; c < C; c++) {
        double lo = widen(p->dtype, min, c), hi = widen(p->dtype, max, c);
        if (!(lo <= hi)) {
            char a[40], b[40], where[48] = "";
            if (p->attrs.axis >= 0)
                snprintf(where, sizeof where, " at channel %" PRIu64, c);
            return fail(err, "Invalid range: input_min %s > input_max %s%s",
                        bound_str(a, sizeof a, lo, dbl), bound_str(b, sizeof b, hi, dbl), where);
        }
    }
    for (uint64_t c = 0; c < C; c++) {
        double lo = widen(p->dtype, min, c), hi = widen(p->dtype, max, c);
        if (dbl) {
            double six[6];
            scale_d(p->qmin, p->qmax, lo, hi, six);
            params_put(p, params, c, six);
        } else {
            float six[6];
            scale_f(p->qmin, p->qmax, (float)lo, (float)hi, six);
            params_put(p, params, c, six);
        }
    }
    return QDQ_OK;
}

void qdq_apply(const qdq_plan *p, const void *params, const void *data, void *out,
               uint64_t begin, uint64_t end)
{
    const qdq_kernels *k = kernels(p);
    size_t es = qdq_dtype_size(p->dtype), ts = tsize(p);
    uint64_t C = p->channels;
    const char *lo = (const char *)params + 2 * C * ts, *hi = lo + C * ts;
    const char *sc = hi + C * ts, *iv = sc + C * ts;
    const char *in = data;
    char *o = out;
    int clamp = p->attrs.range_given, up = p->attrs.round_mode == QDQ_HALF_UP;
    while (begin < end) {
        uint64_t n, c;
        if (C == 1) {
            c = 0, n = end - begin;
            k->apply_run(in + begin * es, o + begin * es, n, lo, hi, sc, iv, clamp, up);
        } else if (p->inner == 1) {
            c = begin % C;
            n = C - c < end - begin ? C - c : end - begin;
            k->apply_lanes(in + begin * es, o + begin * es, n, lo + c * ts, hi + c * ts,
                           sc + c * ts, iv + c * ts, clamp, up);
        } else {
            uint64_t i = begin % p->inner;
            c = (begin / p->inner) % C;
            n = p->inner - i < end - begin ? p->inner - i : end - begin;
            k->apply_run(in + begin * es, o + begin * es, n, lo + c * ts, hi + c * ts,
                         sc + c * ts, iv + c * ts, clamp, up);
        }
        begin += n;
    }
}

void qdq_params_get(const qdq_plan *p, const void *params, uint64_t c, qdq_range *r)
{
    uint64_t C = p->channels;
    double v[6];
    for (int j = 0; j < 6; j++)
        v[j] = p->dtype == QDQ_FLOAT64 ? ((const double *)params)[j * C + c]
                                       : ((const float *)params)[j * C + c];
    r->input_min = v[0], r->input_max = v[1], r->output_min = v[2], r->output_max = v[3];
    r->scale = v[4], r->inverse_scale = v[5];
}

int qdq_run(const qdq_plan *p, const void *in, void *out, const void *min, size_t n_min,
            const void *max, size_t n_max, void *acc, void *params, qdq_error *err)
{
    if (p->attrs.range_given) {
        int rc = qdq_params_given(p, min, n_min, max, n_max, params, err);
        if (rc)
            return rc;
    } else {
        qdq_acc_init(p, acc);
        qdq_reduce(p, acc, in, 0, p->count);
        qdq_params_from_acc(p, acc, in, params);
    }
    qdq_apply(p, params, in, out, 0, p->count);
    return QDQ_OK;
}
