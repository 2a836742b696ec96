/* The portable kernel family: plain C, any CPU. See portable_template.h. */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* Vector extensions (any target): the accumulators' merge and ranges four float32 channels (two
 * float64) a step. */
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v4f __attribute__((vector_size(16)));
typedef int64_t v2l __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

#define DEFINE_MERGE(name, T, F, VT, VF)                                                        \
    static void name(size_t C, void *dst, const void *src, size_t c0, size_t c1)               \
    {                                                                                          \
        const size_t L = sizeof(VT) / sizeof(T);                                               \
        T *d = dst;                                                                            \
        const T *s = src;                                                                      \
        size_t c = c0;                                                                         \
        for (; c + L <= c1; c += L) {                                                          \
            VT dn, sn, dx, sx;                                                                 \
            VF a, b, fd[3], fs[3];                                                             \
            memcpy(&dn, d + c, sizeof dn), memcpy(&sn, s + c, sizeof sn);                      \
            memcpy(&dx, d + C + c, sizeof dx), memcpy(&sx, s + C + c, sizeof sx);              \
            VF lt = sn < dn, gt = sx > dx;                                                     \
            memcpy(&a, &dn, sizeof a), memcpy(&b, &sn, sizeof b);                              \
            a = (lt & b) | (~lt & a);                                                          \
            memcpy(d + c, &a, sizeof a);                                                       \
            memcpy(&a, &dx, sizeof a), memcpy(&b, &sx, sizeof b);                              \
            a = (gt & b) | (~gt & a);                                                          \
            memcpy(d + C + c, &a, sizeof a);                                                   \
            for (int k = 0; k < 3; k++) {                                                      \
                memcpy(&fd[k], (F *)(d + 2 * C) + k * C + c, sizeof fd[k]);                    \
                memcpy(&fs[k], (const F *)(s + 2 * C) + k * C + c, sizeof fs[k]);              \
                fd[k] |= fs[k];                                                                \
                memcpy((F *)(d + 2 * C) + k * C + c, &fd[k], sizeof fd[k]);                    \
            }                                                                                  \
        }                                                                                      \
        F *df = (F *)(d + 2 * C);                                                              \
        const F *sf = (const F *)(s + 2 * C);                                                  \
        for (; c < c1; c++) {                                                                  \
            d[c] = s[c] < d[c] ? s[c] : d[c];                                                  \
            d[C + c] = s[C + c] > d[C + c] ? s[C + c] : d[C + c];                              \
            df[c] |= sf[c], df[C + c] |= sf[C + c], df[2 * C + c] |= sf[2 * C + c];            \
        }                                                                                      \
    }
DEFINE_MERGE(merge_f, float, int32_t, v4f, v4i)
DEFINE_MERGE(merge_d, double, int64_t, v2d, v2l)

static size_t ranges_f(size_t C, const void *acc, void *params, size_t c0, size_t c1, int *exact)
{
    size_t c = c0;
    const float *mn = acc, *mx = mn + C;
    const int32_t *nz = (const int32_t *)(mx + C), *pz = nz + C, *nn = pz + C;
    float *lo = params, *hi = lo + C;
    const v4i sign = { INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN };
    v4i bad = { 0, 0, 0, 0 };
    for (; c + 4 <= c1; c += 4) {
        v4f l, h;
        v4i z, q, n, lb, hb;
        memcpy(&l, mn + c, sizeof l), memcpy(&h, mx + c, sizeof h);
        memcpy(&z, nz + c, sizeof z), memcpy(&q, pz + c, sizeof q), memcpy(&n, nn + c, sizeof n);
        v4i zl = l == 0, zh = h == 0; /* comparisons give 0 or -1 lanes */
        z = z != 0, q = q != 0, n = n != 0;
        bad |= n | (z & q & (zl | zh));
        memcpy(&lb, &l, sizeof lb), memcpy(&hb, &h, sizeof hb);
        lb = (zl & z & sign) | (~zl & lb);
        hb = (zh & z & sign) | (~zh & hb);
        memcpy(lo + c, &lb, sizeof lb), memcpy(hi + c, &hb, sizeof hb);
    }
    *exact = (bad[0] | bad[1] | bad[2] | bad[3]) != 0;
    return c;
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
    QDQ_FAMILY(f32, f, ranges_f), QDQ_FAMILY(f64, d, NULL), QDQ_FAMILY(f16, f, ranges_f),
    QDQ_FAMILY(bf16, f, ranges_f),
};
