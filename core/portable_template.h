/*
 * Portable element kernels, instantiated once per dtype by kernels_portable.c with:
 *   SUF (name suffix), S (storage type), T (compute type), F (flag type), LOAD(p), STORE(p, v),
 *   RINT, FLOOR.
 * The arithmetic is docs/semantics.md's, one IEEE operation at a time, in T. One way for each
 * kernel: the rows kernels take no strategy from the tuning (the reference the AVX2 family's
 * strategies are tested against).
 */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

static void CAT(reduce_run, SUF)(const void *in_, size_t n, void *mn_, void *mx_, void *nz_,
                                 void *pz_, void *nn_)
{
    const S *in = in_;
    T mn = *(T *)mn_, mx = *(T *)mx_;
    F nz = *(F *)nz_, pz = *(F *)pz_, nn = *(F *)nn_;
    for (size_t k = 0; k < n; k++) {
        T x = LOAD(in + k);
        mn = x < mn ? x : mn; /* NaN compares false: ignored */
        mx = x > mx ? x : mx;
        if (x == 0) {
            if (signbit(x))
                nz = -1;
            else
                pz = -1;
        }
        if (x != x)
            nn = -1;
    }
    *(T *)mn_ = mn, *(T *)mx_ = mx, *(F *)nz_ = nz, *(F *)pz_ = pz, *(F *)nn_ = nn;
}

static void CAT(reduce_lanes, SUF)(const void *in_, size_t n, void *mn_, void *mx_, void *nz_,
                                   void *pz_, void *nn_)
{
    const S *in = in_;
    T *mn = mn_, *mx = mx_;
    F *nz = nz_, *pz = pz_, *nn = nn_;
    for (size_t k = 0; k < n; k++) {
        T x = LOAD(in + k);
        mn[k] = x < mn[k] ? x : mn[k];
        mx[k] = x > mx[k] ? x : mx[k];
        if (x == 0) {
            if (signbit(x))
                nz[k] = -1;
            else
                pz[k] = -1;
        }
        if (x != x)
            nn[k] = -1;
    }
}

static void CAT(reduce_rows, SUF)(const void *in_, size_t rows, size_t stride, size_t C,
                                  void *mn, void *mx, void *nz, void *pz, void *nn,
                                  const qdq_tuning *t)
{
    const S *in = in_;
    for (size_t r = 0; r < rows; r++)
        CAT(reduce_lanes, SUF)(in + r * stride, C, mn, mx, nz, pz, nn);
}

/* One element: clamp (std::min then std::max semantics: a NaN x stays NaN), scale, round,
 * scale back. */
static inline T CAT(element, SUF)(T x, T lo, T hi, T scale, T inv, int clamp, int half_up)
{
    if (clamp) {
        x = hi < x ? hi : x;
        x = x < lo ? lo : x;
    }
    T y = x * scale;
    y = half_up ? FLOOR(y + (T)0.5) : RINT(y);
    return y * inv;
}

static void CAT(apply_run, SUF)(const void *in_, void *out_, size_t n, const void *lo,
                                const void *hi, const void *scale, const void *inv, int clamp,
                                int half_up)
{
    const S *in = in_;
    S *out = out_;
    T l = *(const T *)lo, h = *(const T *)hi, s = *(const T *)scale, v = *(const T *)inv;
    for (size_t k = 0; k < n; k++)
        STORE(out + k, CAT(element, SUF)(LOAD(in + k), l, h, s, v, clamp, half_up));
}

static void CAT(apply_lanes, SUF)(const void *in_, void *out_, size_t n, const void *lo,
                                  const void *hi, const void *scale, const void *inv, int clamp,
                                  int half_up)
{
    const S *in = in_;
    S *out = out_;
    const T *l = lo, *h = hi, *s = scale, *v = inv;
    for (size_t k = 0; k < n; k++)
        STORE(out + k, CAT(element, SUF)(LOAD(in + k), l[k], h[k], s[k], v[k], clamp, half_up));
}

static void CAT(reduce_cols, SUF)(const void *in_, size_t n, size_t inner, void *mn, void *mx,
                                  void *nz, void *pz, void *nn)
{
    const S *in = in_;
    for (size_t c = 0; c < n; c++)
        CAT(reduce_run, SUF)(in + c * inner, inner, (T *)mn + c, (T *)mx + c, (F *)nz + c,
                             (F *)pz + c, (F *)nn + c);
}

static void CAT(apply_rows, SUF)(const void *in_, void *out_, size_t rows, size_t stride,
                                 size_t C, const void *lo, const void *hi, const void *scale,
                                 const void *inv, int clamp, int half_up, const qdq_tuning *t)
{
    const S *in = in_;
    S *out = out_;
    for (size_t r = 0; r < rows; r++)
        CAT(apply_lanes, SUF)(in + r * stride, out + r * stride, C, lo, hi, scale, inv, clamp,
                              half_up);
}

static void CAT(apply_cols, SUF)(const void *in_, void *out_, size_t n, size_t inner,
                                 const void *lo, const void *hi, const void *scale,
                                 const void *inv, int clamp, int half_up)
{
    const S *in = in_;
    S *out = out_;
    for (size_t c = 0; c < n; c++)
        CAT(apply_run, SUF)(in + c * inner, out + c * inner, inner, (const T *)lo + c,
                            (const T *)hi + c, (const T *)scale + c, (const T *)inv + c, clamp,
                            half_up);
}

/* The stats kernels (kernels.h): the plain ones, each element's input and stored output (read
 * back: the value of the storage type) folded into the call's statistics. */
static void CAT(apply_run_stats, SUF)(const void *in_, void *out_, size_t n, const void *lo,
                                      const void *hi, const void *scale, const void *inv,
                                      int clamp, int half_up, qdq_stats *st)
{
    const S *in = in_;
    S *out = out_;
    T l = *(const T *)lo, h = *(const T *)hi, s = *(const T *)scale, v = *(const T *)inv;
    pstats a;
    pstats_init(&a);
    for (size_t k = 0; k < n; k++) {
        T x = LOAD(in + k);
        STORE(out + k, CAT(element, SUF)(x, l, h, s, v, clamp, half_up));
        pstats_add(&a, x, LOAD(out + k));
    }
    pstats_done(&a, n, st);
}

static inline void CAT(lanes_stats, SUF)(const S *in, S *out, size_t n, const T *l, const T *h,
                                         const T *s, const T *v, int clamp, int half_up,
                                         pstats *a)
{
    for (size_t k = 0; k < n; k++) {
        T x = LOAD(in + k);
        STORE(out + k, CAT(element, SUF)(x, l[k], h[k], s[k], v[k], clamp, half_up));
        pstats_add(a, x, LOAD(out + k));
    }
}

static void CAT(apply_lanes_stats, SUF)(const void *in, void *out, size_t n, const void *lo,
                                        const void *hi, const void *scale, const void *inv,
                                        int clamp, int half_up, qdq_stats *st)
{
    pstats a;
    pstats_init(&a);
    CAT(lanes_stats, SUF)(in, out, n, lo, hi, scale, inv, clamp, half_up, &a);
    pstats_done(&a, n, st);
}

static void CAT(apply_rows_stats, SUF)(const void *in_, void *out_, size_t rows, size_t stride,
                                       size_t C, const void *lo, const void *hi,
                                       const void *scale, const void *inv, int clamp,
                                       int half_up, qdq_stats *st)
{
    const S *in = in_;
    S *out = out_;
    pstats a;
    pstats_init(&a);
    for (size_t r = 0; r < rows; r++)
        CAT(lanes_stats, SUF)(in + r * stride, out + r * stride, C, lo, hi, scale, inv, clamp,
                              half_up, &a);
    pstats_done(&a, rows * C, st);
}

#undef CAT
#undef CAT_
