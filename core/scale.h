/*
 * The scale, inverse scale and adjusted range of one channel from its range [lo, hi], in the
 * compute type T, exactly as TensorFlow's ComputeQuantizationRange (docs/semantics.md, the scale
 * and the adjusted range): qmin and qmax are converted to T once (by the caller) and every
 * operation is one IEEE operation in T.
 * The kernels' vector versions (kernels.h, scales) perform the same operations lane by lane.
 */
#ifndef QDQ_SCALE_H
#define QDQ_SCALE_H

#include <float.h>

#define QDQ_DEFINE_SCALE(name, T, T_MAX)                                                       \
    static inline void name(T qmin, T qmax, T lo, T hi, T *olo, T *ohi, T *sc, T *inv)         \
    {                                                                                          \
        T s_min = (qmin * lo > 0) ? qmin / lo : T_MAX;                                         \
        T s_max = (qmax * hi > 0) ? qmax / hi : T_MAX;                                         \
        if (s_min < s_max) {                                                                   \
            *sc = s_min, *inv = lo / qmin, *ohi = qmax * *inv, *olo = lo;                      \
        } else {                                                                               \
            *sc = s_max, *inv = hi / qmax, *olo = qmin * *inv, *ohi = hi;                      \
        }                                                                                      \
    }
QDQ_DEFINE_SCALE(qdq_scale_f, float, FLT_MAX)
QDQ_DEFINE_SCALE(qdq_scale_d, double, DBL_MAX)

#endif
