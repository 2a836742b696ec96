/*
 * AVX2 element kernels, instantiated once per dtype by kernels_avx2.c with:
 *   SUF, DT (the qdq_dtype), S (storage), T (compute), F (flag), LANES, VT (vector of T),
 *   LOADV(p) / STOREV(p, v)   LANES elements of S <-> VT
 *   LOADV2(p, a, b) / STOREV2(p, a, b)   2 * LANES elements <-> two VT, in any order the pair
 *                             restores (defaults: two LOADV / STOREV)
 *   VLOADT(p) / VSTORET(p, v) LANES values of T
 *   VSET1, VMIN, VMAX, VMUL, VADD, VRINT, VFLOOR, VCMPEQ_I (on the bits), VSIGN_I (the -0.0 bits),
 *   S_NAN (a NaN of S, to pad partial vectors).
 * With BITS_REDUCE defined, reduce_run and reduce_rows come from avx2_bits_template.h instead.
 * Each operation is the single IEEE operation of docs/semantics.md; a partial vector at the end is
 * padded in a local buffer and goes through the same instructions.
 */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define AI static inline __attribute__((always_inline))
#ifndef LOADV2
#define LOADV2(p, a, b) ((a) = LOADV(p), (b) = LOADV((p) + LANES))
#define STOREV2(p, a, b) (STOREV(p, a), STOREV((p) + LANES, b))
#define DEFAULT_V2
#endif

#ifndef BITS_REDUCE
static void CAT(reduce_run, SUF)(const void *in_, size_t n, void *mn_, void *mx_, void *nz_,
                                 void *pz_, void *nn_)
{
    const S *in = in_;
    VT mn0 = VSET1((T)INFINITY), mn1 = mn0, mx0 = VSET1(-(T)INFINITY), mx1 = mx0;
    __m256i nz = _mm256_setzero_si256(), pz = nz, nn = nz, zero = nz, sign = VSIGN_I;
    size_t k = 0;
    /* _mm256_min_ps(x, acc) returns acc when x is NaN: NaN is ignored. */
    for (; k + 2 * LANES <= n; k += 2 * LANES) {
        VT x0 = LOADV(in + k), x1 = LOADV(in + k + LANES);
        mn0 = VMIN(x0, mn0), mx0 = VMAX(x0, mx0);
        mn1 = VMIN(x1, mn1), mx1 = VMAX(x1, mx1);
        __m256i b0 = VCAST_I(x0), b1 = VCAST_I(x1);
        nz = _mm256_or_si256(nz, _mm256_or_si256(VCMPEQ_I(b0, sign), VCMPEQ_I(b1, sign)));
        pz = _mm256_or_si256(pz, _mm256_or_si256(VCMPEQ_I(b0, zero), VCMPEQ_I(b1, zero)));
        nn = _mm256_or_si256(nn, VCAST_I(VOR(VUNORD(x0), VUNORD(x1))));
    }
    for (; k < n; k += LANES) {
        VT x;
        if (k + LANES <= n) {
            x = LOADV(in + k);
        } else {
            S buf[LANES];
            for (size_t j = 0; j < LANES; j++)
                buf[j] = k + j < n ? in[k + j] : S_NAN;
            x = LOADV(buf);
        }
        mn0 = VMIN(x, mn0), mx0 = VMAX(x, mx0);
        __m256i b = VCAST_I(x);
        nz = _mm256_or_si256(nz, VCMPEQ_I(b, sign));
        pz = _mm256_or_si256(pz, VCMPEQ_I(b, zero));
        if (k + LANES <= n) /* the padding is NaN */
            nn = _mm256_or_si256(nn, VCAST_I(VUNORD(x)));
        else
            for (size_t j = 0; k + j < n; j++)
                if (in[k + j] != in[k + j] || S_ISNAN(in[k + j]))
                    *(F *)nn_ = -1;
    }
    mn0 = VMIN(mn0, mn1), mx0 = VMAX(mx0, mx1);
    T a[LANES], b[LANES];
    VSTORET(a, mn0), VSTORET(b, mx0);
    T mn = *(T *)mn_, mx = *(T *)mx_;
    for (size_t j = 0; j < LANES; j++) {
        mn = a[j] < mn ? a[j] : mn;
        mx = b[j] > mx ? b[j] : mx;
    }
    *(T *)mn_ = mn, *(T *)mx_ = mx;
    if (!_mm256_testz_si256(nz, nz))
        *(F *)nz_ = -1;
    if (!_mm256_testz_si256(pz, pz))
        *(F *)pz_ = -1;
    if (!_mm256_testz_si256(nn, nn))
        *(F *)nn_ = -1;
}

#endif

static void CAT(reduce_lanes, SUF)(const void *in_, size_t n, void *mn_, void *mx_, void *nz_,
                                   void *pz_, void *nn_)
{
    const S *in = in_;
    T *mn = mn_, *mx = mx_;
    F *nz = nz_, *pz = pz_, *nn = nn_;
    __m256i zero = _mm256_setzero_si256(), sign = VSIGN_I;
    size_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        VT x = LOADV(in + k);
        __m256i bits = VCAST_I(x);
        VSTORET(mn + k, VMIN(x, VLOADT(mn + k)));
        VSTORET(mx + k, VMAX(x, VLOADT(mx + k)));
        _mm256_storeu_si256((__m256i *)(nz + k),
                            _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(nz + k)),
                                            VCMPEQ_I(bits, sign)));
        _mm256_storeu_si256((__m256i *)(pz + k),
                            _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(pz + k)),
                                            VCMPEQ_I(bits, zero)));
        _mm256_storeu_si256((__m256i *)(nn + k),
                            _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(nn + k)),
                                            VCAST_I(VUNORD(x))));
    }
    /* The last channels: the same comparisons, one element at a time (no vector may read past
     * the accumulators). NaN compares false, so it is skipped as by VMIN(x, acc). */
    for (; k < n; k++) {
        S one[LANES] = { 0 };
        one[0] = in[k];
        T x[LANES];
        VSTORET(x, LOADV(one));
        mn[k] = x[0] < mn[k] ? x[0] : mn[k];
        mx[k] = x[0] > mx[k] ? x[0] : mx[k];
        if (x[0] == 0) {
            if (signbit(x[0]))
                nz[k] = -1;
            else
                pz[k] = -1;
        }
        if (x[0] != x[0])
            nn[k] = -1;
    }
}

#ifndef BITS_REDUCE
/*
 * Whole rows of C channels: for a block of rows (kept in cache; the tuning's near_rows), each
 * vector of channels keeps its accumulators in registers down the block, so the accumulator
 * arrays are read and written once a block instead of once a row. The channels past the last
 * whole vector go through reduce_lanes. The comparisons are those of reduce_lanes, in the same
 * order per channel. (One way: float64's reduce_rows is always QDQ_REDUCE_BLOCKED.)
 */
static void CAT(reduce_rows, SUF)(const void *in_, size_t rows, size_t stride, size_t C,
                                  void *mn_, void *mx_, void *nz_, void *pz_, void *nn_,
                                  const qdq_tuning *t)
{
    const S *in = in_;
    T *mn = mn_, *mx = mx_;
    F *nz = nz_, *pz = pz_, *nn = nn_;
    __m256i zero = _mm256_setzero_si256(), sign = VSIGN_I;
    size_t cv = C / LANES * LANES, block = t->near_rows ? t->near_rows : 1;
    for (size_t r0 = 0; r0 < rows; r0 += block) {
        size_t r1 = r0 + block < rows ? r0 + block : rows;
        for (size_t c = 0; c < cv; c += LANES) {
            VT a = VLOADT(mn + c), b = VLOADT(mx + c);
            __m256i z0 = _mm256_loadu_si256((const __m256i *)(nz + c));
            __m256i z1 = _mm256_loadu_si256((const __m256i *)(pz + c));
            __m256i z2 = _mm256_loadu_si256((const __m256i *)(nn + c));
            for (size_t r = r0; r < r1; r++) {
                VT x = LOADV(in + r * stride + c);
                __m256i bits = VCAST_I(x);
                a = VMIN(x, a), b = VMAX(x, b);
                z0 = _mm256_or_si256(z0, VCMPEQ_I(bits, sign));
                z1 = _mm256_or_si256(z1, VCMPEQ_I(bits, zero));
                z2 = _mm256_or_si256(z2, VCAST_I(VUNORD(x)));
            }
            VSTORET(mn + c, a), VSTORET(mx + c, b);
            _mm256_storeu_si256((__m256i *)(nz + c), z0);
            _mm256_storeu_si256((__m256i *)(pz + c), z1);
            _mm256_storeu_si256((__m256i *)(nn + c), z2);
        }
        if (cv < C)
            for (size_t r = r0; r < r1; r++)
                CAT(reduce_lanes, SUF)(in + r * stride + cv, C - cv, mn + cv, mx + cv, nz + cv,
                                       pz + cv, nn + cv);
    }
}
#endif

/* One vector: clamp with std::min / std::max semantics (VMIN(hi, x) returns x when x is NaN or
 * when both are zeros), scale, round, scale back. */
AI VT CAT(vec, SUF)(VT x, VT lo, VT hi, VT scale, VT inv, int clamp, int half_up)
{
    if (clamp)
        x = VMAX(lo, VMIN(hi, x));
    VT y = VMUL(x, scale);
    y = half_up ? VFLOOR(VADD(y, VSET1((T)0.5))) : VRINT(y);
    return VMUL(y, inv);
}

/* Four vectors: LOADV2 may order the elements in any way STOREV2 undoes. */
AI void CAT(step4, SUF)(const S *in, S *out, VT lo, VT hi, VT s, VT v, int clamp, int half_up)
{
    VT a, b, c, d;
    LOADV2(in, a, b);
    LOADV2(in + 2 * LANES, c, d);
    STOREV2(out, CAT(vec, SUF)(a, lo, hi, s, v, clamp, half_up),
            CAT(vec, SUF)(b, lo, hi, s, v, clamp, half_up));
    STOREV2(out + 2 * LANES, CAT(vec, SUF)(c, lo, hi, s, v, clamp, half_up),
            CAT(vec, SUF)(d, lo, hi, s, v, clamp, half_up));
}

AI void CAT(run_loop, SUF)(const S *in, S *out, size_t n, VT lo, VT hi, VT s, VT v, int clamp,
                           int half_up)
{
    size_t k = 0;
    /* Four vectors a step, then two. */
    for (; k + 4 * LANES <= n; k += 4 * LANES)
        CAT(step4, SUF)(in + k, out + k, lo, hi, s, v, clamp, half_up);
    for (; k + 2 * LANES <= n; k += 2 * LANES) {
        VT a, b;
        LOADV2(in + k, a, b);
        STOREV2(out + k, CAT(vec, SUF)(a, lo, hi, s, v, clamp, half_up),
                CAT(vec, SUF)(b, lo, hi, s, v, clamp, half_up));
    }
    for (; k + LANES <= n; k += LANES)
        STOREV(out + k, CAT(vec, SUF)(LOADV(in + k), lo, hi, s, v, clamp, half_up));
    if (k < n) {
        S buf[LANES] = { 0 };
        for (size_t j = 0; k + j < n; j++)
            buf[j] = in[k + j];
        STOREV(buf, CAT(vec, SUF)(LOADV(buf), lo, hi, s, v, clamp, half_up));
        for (size_t j = 0; k + j < n; j++)
            out[k + j] = buf[j];
    }
}

static void CAT(apply_run, SUF)(const void *in, void *out, size_t n, const void *lo,
                                const void *hi, const void *scale, const void *inv, int clamp,
                                int half_up)
{
    VT l = VSET1(*(const T *)lo), h = VSET1(*(const T *)hi);
    VT s = VSET1(*(const T *)scale), v = VSET1(*(const T *)inv);
    /* Constant flags let the compiler emit four branch-free loops. */
    switch (clamp * 2 + half_up) {
    case 0: CAT(run_loop, SUF)(in, out, n, l, h, s, v, 0, 0); break;
    case 1: CAT(run_loop, SUF)(in, out, n, l, h, s, v, 0, 1); break;
    case 2: CAT(run_loop, SUF)(in, out, n, l, h, s, v, 1, 0); break;
    default: CAT(run_loop, SUF)(in, out, n, l, h, s, v, 1, 1); break;
    }
}

AI void CAT(lanes_loop, SUF)(const S *in, S *out, size_t n, const T *lo, const T *hi,
                             const T *s, const T *v, int clamp, int half_up)
{
    size_t k = 0;
    for (; k + 2 * LANES <= n; k += 2 * LANES) {
        VT x0 = LOADV(in + k), x1 = LOADV(in + k + LANES);
        STOREV(out + k, CAT(vec, SUF)(x0, VLOADT(lo + k), VLOADT(hi + k), VLOADT(s + k),
                                      VLOADT(v + k), clamp, half_up));
        STOREV(out + k + LANES, CAT(vec, SUF)(x1, VLOADT(lo + k + LANES), VLOADT(hi + k + LANES),
                                              VLOADT(s + k + LANES), VLOADT(v + k + LANES), clamp,
                                              half_up));
    }
    for (; k + LANES <= n; k += LANES)
        STOREV(out + k, CAT(vec, SUF)(LOADV(in + k), VLOADT(lo + k), VLOADT(hi + k),
                                      VLOADT(s + k), VLOADT(v + k), clamp, half_up));
    if (k < n) {
        S buf[LANES] = { 0 };
        T bl[LANES] = { 0 }, bh[LANES] = { 0 }, bs[LANES] = { 0 }, bv[LANES] = { 0 };
        for (size_t j = 0; k + j < n; j++)
            buf[j] = in[k + j], bl[j] = lo[k + j], bh[j] = hi[k + j], bs[j] = s[k + j],
            bv[j] = v[k + j];
        STOREV(buf, CAT(vec, SUF)(LOADV(buf), VLOADT(bl), VLOADT(bh), VLOADT(bs), VLOADT(bv),
                                  clamp, half_up));
        for (size_t j = 0; k + j < n; j++)
            out[k + j] = buf[j];
    }
}

static void CAT(apply_lanes, SUF)(const void *in, void *out, size_t n, const void *lo,
                                  const void *hi, const void *scale, const void *inv, int clamp,
                                  int half_up)
{
    switch (clamp * 2 + half_up) {
    case 0: CAT(lanes_loop, SUF)(in, out, n, lo, hi, scale, inv, 0, 0); break;
    case 1: CAT(lanes_loop, SUF)(in, out, n, lo, hi, scale, inv, 0, 1); break;
    case 2: CAT(lanes_loop, SUF)(in, out, n, lo, hi, scale, inv, 1, 0); break;
    default: CAT(lanes_loop, SUF)(in, out, n, lo, hi, scale, inv, 1, 1); break;
    }
}

/* Whole rows (QDQ_APPLY_BLOCK). Each pair of vectors of channels (a line of float32), or four
 * without a clamp, keeps its parameters in registers down a block of rows: the tuning's
 * span_bytes of rows, at least block_rows and at most block_rows_max (and at least one). */
AI void CAT(rows_block, SUF)(const S *in, S *out, size_t rows, size_t stride, size_t C,
                             const T *lo, const T *hi, const T *s, const T *v, int clamp,
                             int half_up, const qdq_tuning *t)
{
    size_t cv = C / LANES * LANES, rb = stride ? t->span_bytes / (stride * sizeof(S)) : 1;
    rb = rb < t->block_rows ? t->block_rows : rb > t->block_rows_max ? t->block_rows_max : rb;
    rb = rb ? rb : 1;
    for (size_t r0 = 0; r0 < rows; r0 += rb) {
        size_t r1 = r0 + rb < rows ? r0 + rb : rows, c = 0;
        if (!clamp) /* no bounds to hold: four vectors of channels fit in the registers */
            for (; c + 4 * LANES <= cv; c += 4 * LANES) {
                VT s0 = VLOADT(s + c), s1 = VLOADT(s + c + LANES);
                VT s2 = VLOADT(s + c + 2 * LANES), s3 = VLOADT(s + c + 3 * LANES);
                VT v0 = VLOADT(v + c), v1 = VLOADT(v + c + LANES);
                VT v2 = VLOADT(v + c + 2 * LANES), v3 = VLOADT(v + c + 3 * LANES);
                for (size_t r = r0; r < r1; r++) {
                    const S *x = in + r * stride + c;
                    S *y = out + r * stride + c;
                    VT x0 = LOADV(x), x1 = LOADV(x + LANES);
                    VT x2 = LOADV(x + 2 * LANES), x3 = LOADV(x + 3 * LANES);
                    STOREV(y, CAT(vec, SUF)(x0, s0, s0, s0, v0, 0, half_up));
                    STOREV(y + LANES, CAT(vec, SUF)(x1, s1, s1, s1, v1, 0, half_up));
                    STOREV(y + 2 * LANES, CAT(vec, SUF)(x2, s2, s2, s2, v2, 0, half_up));
                    STOREV(y + 3 * LANES, CAT(vec, SUF)(x3, s3, s3, s3, v3, 0, half_up));
                }
            }
        for (; c + 2 * LANES <= cv; c += 2 * LANES) {
            VT l0 = VLOADT(lo + c), h0 = VLOADT(hi + c), s0 = VLOADT(s + c), v0 = VLOADT(v + c);
            VT l1 = VLOADT(lo + c + LANES), h1 = VLOADT(hi + c + LANES);
            VT s1 = VLOADT(s + c + LANES), v1 = VLOADT(v + c + LANES);
            for (size_t r = r0; r < r1; r++) {
                const S *x = in + r * stride + c;
                S *y = out + r * stride + c;
                VT x0 = LOADV(x), x1 = LOADV(x + LANES);
                STOREV(y, CAT(vec, SUF)(x0, l0, h0, s0, v0, clamp, half_up));
                STOREV(y + LANES, CAT(vec, SUF)(x1, l1, h1, s1, v1, clamp, half_up));
            }
        }
        if (c < cv) { /* an odd vector */
            VT l = VLOADT(lo + c), h = VLOADT(hi + c), sc = VLOADT(s + c), iv = VLOADT(v + c);
            for (size_t r = r0; r < r1; r++)
                STOREV(out + r * stride + c, CAT(vec, SUF)(LOADV(in + r * stride + c), l, h, sc,
                                                           iv, clamp, half_up));
        }
        if (cv < C)
            for (size_t r = r0; r < r1; r++)
                CAT(lanes_loop, SUF)(in + r * stride + cv, out + r * stride + cv, C - cv, lo + cv,
                                     hi + cv, s + cv, v + cv, clamp, half_up);
    }
}

/* Long rows in cache (QDQ_APPLY_QUAD): four rows at a time, along the rows, each vector of
 * channels' parameters loaded once for the four; the rows past the last four one by one. */
AI void CAT(rows_quad, SUF)(const S *in, S *out, size_t rows, size_t stride, size_t C,
                            const T *lo, const T *hi, const T *s, const T *v, int clamp,
                            int half_up)
{
    size_t cv = C / LANES * LANES, r = 0;
    for (; r + 4 <= rows; r += 4) {
        const S *x = in + r * stride;
        S *y = out + r * stride;
        for (size_t c = 0; c < cv; c += LANES) {
            VT l = VLOADT(lo + c), h = VLOADT(hi + c), sc = VLOADT(s + c), iv = VLOADT(v + c);
            VT x0 = LOADV(x + c), x1 = LOADV(x + stride + c);
            VT x2 = LOADV(x + 2 * stride + c), x3 = LOADV(x + 3 * stride + c);
            STOREV(y + c, CAT(vec, SUF)(x0, l, h, sc, iv, clamp, half_up));
            STOREV(y + stride + c, CAT(vec, SUF)(x1, l, h, sc, iv, clamp, half_up));
            STOREV(y + 2 * stride + c, CAT(vec, SUF)(x2, l, h, sc, iv, clamp, half_up));
            STOREV(y + 3 * stride + c, CAT(vec, SUF)(x3, l, h, sc, iv, clamp, half_up));
        }
        if (cv < C)
            for (size_t k = 0; k < 4; k++)
                CAT(lanes_loop, SUF)(x + k * stride + cv, y + k * stride + cv, C - cv, lo + cv,
                                     hi + cv, s + cv, v + cv, clamp, half_up);
    }
    for (; r < rows; r++)
        CAT(lanes_loop, SUF)(in + r * stride, out + r * stride, C, lo, hi, s, v, clamp, half_up);
}

/* Rows of 1-2 KiB in cache, without a clamp (QDQ_APPLY_OCT): eight rows at a time, a line of
 * channels (two vectors) at a time, each row's two computed and stored before the next row's;
 * the rows past the last eight go to rows_quad. */
AI void CAT(rows_oct, SUF)(const S *in, S *out, size_t rows, size_t stride, size_t C,
                           const T *lo, const T *hi, const T *s, const T *v, int half_up)
{
    size_t cv = C / LANES * LANES, r = 0;
    for (; r + 8 <= rows; r += 8) {
        const S *x = in + r * stride;
        S *y = out + r * stride;
        size_t c = 0;
        for (; c + 2 * LANES <= cv; c += 2 * LANES) {
            VT s0 = VLOADT(s + c), s1 = VLOADT(s + c + LANES);
            VT v0 = VLOADT(v + c), v1 = VLOADT(v + c + LANES);
            for (size_t k = 0; k < 8; k++) {
                const S *xk = x + k * stride + c;
                S *yk = y + k * stride + c;
                STOREV(yk, CAT(vec, SUF)(LOADV(xk), s0, s0, s0, v0, 0, half_up));
                STOREV(yk + LANES, CAT(vec, SUF)(LOADV(xk + LANES), s1, s1, s1, v1, 0, half_up));
            }
        }
        if (c < cv) { /* an odd vector */
            VT s0 = VLOADT(s + c), v0 = VLOADT(v + c);
            for (size_t k = 0; k < 8; k++)
                STOREV(y + k * stride + c,
                       CAT(vec, SUF)(LOADV(x + k * stride + c), s0, s0, s0, v0, 0, half_up));
        }
        if (cv < C)
            for (size_t k = 0; k < 8; k++)
                CAT(lanes_loop, SUF)(x + k * stride + cv, y + k * stride + cv, C - cv, lo + cv,
                                     hi + cv, s + cv, v + cv, 0, half_up);
    }
    CAT(rows_quad, SUF)(in + r * stride, out + r * stride, rows - r, stride, C, lo, hi, s, v, 0,
                        half_up);
}

/* Whole rows, the way the tuning gives (kernels.h, qdq_apply_rows_way): in cache, down blocks
 * of rows, or four or eight rows at a time on long rows; from memory, row after row (the order
 * the data streams in), or four rows at a time on long rows. */
static void CAT(apply_rows, SUF)(const void *in_, void *out_, size_t rows, size_t stride,
                                 size_t C, const void *lo, const void *hi, const void *scale,
                                 const void *inv, int clamp, int half_up, const qdq_tuning *t)
{
    const S *in = in_;
    S *out = out_;
    qdq_apply_way way = qdq_apply_rows_way(t, DT, rows, stride, C, clamp);
#define ROWS(cl, up)                                                                           \
    if (way == QDQ_APPLY_BY_ROW)                                                               \
        for (size_t r = 0; r < rows; r++)                                                      \
            CAT(lanes_loop, SUF)(in + r * stride, out + r * stride, C, lo, hi, scale, inv, cl,   \
                                 up);                                                          \
    else if (way == QDQ_APPLY_OCT && !cl)                                                      \
        CAT(rows_oct, SUF)(in, out, rows, stride, C, lo, hi, scale, inv, up);                  \
    else if (way == QDQ_APPLY_QUAD || way == QDQ_APPLY_OCT)                                    \
        CAT(rows_quad, SUF)(in, out, rows, stride, C, lo, hi, scale, inv, cl, up);             \
    else                                                                                       \
        CAT(rows_block, SUF)(in, out, rows, stride, C, lo, hi, scale, inv, cl, up, t)
    switch (clamp * 2 + half_up) {
    case 0: ROWS(0, 0); break;
    case 1: ROWS(0, 1); break;
    case 2: ROWS(1, 0); break;
    default: ROWS(1, 1); break;
    }
#undef ROWS
}

static void CAT(apply_cols, SUF)(const void *in_, void *out_, size_t n, size_t inner,
                                 const void *lo_, const void *hi_, const void *scale_,
                                 const void *inv_, int clamp, int half_up)
{
    const S *in = in_;
    S *out = out_;
    const T *lo = lo_, *hi = hi_, *sc = scale_, *iv = inv_;
    /* Runs of whole steps (the usual shapes) need no tail code between them: a short run then
     * costs its vectors and a few instructions. */
    bool steps = inner % (4 * LANES) == 0;
#define COLS(cl, up)                                                                           \
    for (size_t c = 0; c < n; c++) {                                                           \
        VT l_ = VSET1(lo[c]), h_ = VSET1(hi[c]), s_ = VSET1(sc[c]), v_ = VSET1(iv[c]);         \
        if (steps)                                                                             \
            for (size_t k = c * inner; k < (c + 1) * inner; k += 4 * LANES)                    \
                CAT(step4, SUF)(in + k, out + k, l_, h_, s_, v_, cl, up);                      \
        else                                                                                   \
            CAT(run_loop, SUF)(in + c * inner, out + c * inner, inner, l_, h_, s_, v_, cl, up); \
    }
    switch (clamp * 2 + half_up) {
    case 0: COLS(0, 0); break;
    case 1: COLS(0, 1); break;
    case 2: COLS(1, 0); break;
    default: COLS(1, 1); break;
    }
#undef COLS
}

/*
 * The stats kernels (kernels.h): vec on each vector as the plain kernels, the vector stored and
 * its stored values (STORE_GET) folded with the inputs into the statistics (STATS_VEC,
 * kernels_avx2.c). A partial vector at the end is padded with NaN inputs, which are not finite
 * and so count nowhere. One way on rows: row after row. The input STATS_AHEAD bytes ahead is
 * fetched meanwhile: the hardware's prefetch alone kept these loops, with four times the plain
 * ones' arithmetic, waiting on memory (64 MiB of float32: 4.6x the plain apply's time; fetched
 * 1-8 KiB ahead 1.2-1.35x).
 */
AI void CAT(run_stats_loop, SUF)(const S *in, S *out, size_t n, VT lo, VT hi, VT s, VT v,
                                 int clamp, int half_up, sacc *a)
{
    size_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        _mm_prefetch((const char *)(in + k) + STATS_AHEAD, _MM_HINT_T0);
        VT x = LOADV(in + k);
        STATS_VEC(x, STORE_GET(out + k, CAT(vec, SUF)(x, lo, hi, s, v, clamp, half_up)), a);
    }
    if (k < n) {
        S buf[LANES];
        for (size_t j = 0; j < LANES; j++)
            buf[j] = k + j < n ? in[k + j] : S_NAN;
        VT x = LOADV(buf);
        STATS_VEC(x, STORE_GET(buf, CAT(vec, SUF)(x, lo, hi, s, v, clamp, half_up)), a);
        for (size_t j = 0; k + j < n; j++)
            out[k + j] = buf[j];
    }
}

AI void CAT(lanes_stats_loop, SUF)(const S *in, S *out, size_t n, const T *lo, const T *hi,
                                   const T *s, const T *v, int clamp, int half_up, sacc *a)
{
    size_t k = 0;
    for (; k + LANES <= n; k += LANES) {
        _mm_prefetch((const char *)(in + k) + STATS_AHEAD, _MM_HINT_T0);
        VT x = LOADV(in + k);
        STATS_VEC(x, STORE_GET(out + k, CAT(vec, SUF)(x, VLOADT(lo + k), VLOADT(hi + k),
                                                      VLOADT(s + k), VLOADT(v + k), clamp,
                                                      half_up)), a);
    }
    if (k < n) {
        S buf[LANES];
        T bl[LANES] = { 0 }, bh[LANES] = { 0 }, bs[LANES] = { 0 }, bv[LANES] = { 0 };
        for (size_t j = 0; j < LANES; j++)
            buf[j] = S_NAN;
        for (size_t j = 0; k + j < n; j++)
            buf[j] = in[k + j], bl[j] = lo[k + j], bh[j] = hi[k + j], bs[j] = s[k + j],
            bv[j] = v[k + j];
        VT x = LOADV(buf);
        STATS_VEC(x, STORE_GET(buf, CAT(vec, SUF)(x, VLOADT(bl), VLOADT(bh), VLOADT(bs),
                                                  VLOADT(bv), clamp, half_up)), a);
        for (size_t j = 0; k + j < n; j++)
            out[k + j] = buf[j];
    }
}

static void CAT(apply_run_stats, SUF)(const void *in, void *out, size_t n, const void *lo,
                                      const void *hi, const void *scale, const void *inv,
                                      int clamp, int half_up, qdq_stats *st)
{
    VT l = VSET1(*(const T *)lo), h = VSET1(*(const T *)hi);
    VT s = VSET1(*(const T *)scale), v = VSET1(*(const T *)inv);
    sacc a;
    sacc_init(&a);
    switch (clamp * 2 + half_up) {
    case 0: CAT(run_stats_loop, SUF)(in, out, n, l, h, s, v, 0, 0, &a); break;
    case 1: CAT(run_stats_loop, SUF)(in, out, n, l, h, s, v, 0, 1, &a); break;
    case 2: CAT(run_stats_loop, SUF)(in, out, n, l, h, s, v, 1, 0, &a); break;
    default: CAT(run_stats_loop, SUF)(in, out, n, l, h, s, v, 1, 1, &a); break;
    }
    sacc_done(&a, n, st, STATS_WIDE);
}

static void CAT(apply_rows_stats, SUF)(const void *in_, void *out_, size_t rows, size_t stride,
                                       size_t C, const void *lo, const void *hi,
                                       const void *scale, const void *inv, int clamp,
                                       int half_up, qdq_stats *st)
{
    const S *in = in_;
    S *out = out_;
    sacc a;
    sacc_init(&a);
#define ROWS_STATS(cl, up)                                                                     \
    for (size_t r = 0; r < rows; r++)                                                          \
        CAT(lanes_stats_loop, SUF)(in + r * stride, out + r * stride, C, lo, hi, scale, inv, cl, \
                                   up, &a)
    switch (clamp * 2 + half_up) {
    case 0: ROWS_STATS(0, 0); break;
    case 1: ROWS_STATS(0, 1); break;
    case 2: ROWS_STATS(1, 0); break;
    default: ROWS_STATS(1, 1); break;
    }
#undef ROWS_STATS
    sacc_done(&a, rows * C, st, STATS_WIDE);
}

static void CAT(apply_lanes_stats, SUF)(const void *in, void *out, size_t n, const void *lo,
                                        const void *hi, const void *scale, const void *inv,
                                        int clamp, int half_up, qdq_stats *st)
{
    CAT(apply_rows_stats, SUF)(in, out, 1, n, n, lo, hi, scale, inv, clamp, half_up, st);
}

#ifndef BITS_REDUCE
static void CAT(reduce_cols, SUF)(const void *in_, size_t n, size_t inner, void *mn, void *mx,
                                  void *nz, void *pz, void *nn)
{
    const S *in = in_;
    for (size_t c = 0; c < n; c++)
        CAT(reduce_run, SUF)(in + c * inner, inner, (T *)mn + c, (T *)mx + c, (F *)nz + c,
                             (F *)pz + c, (F *)nn + c);
}
#endif

#ifdef DEFAULT_V2
#undef LOADV2
#undef STOREV2
#undef DEFAULT_V2
#endif
#undef AI
#undef CAT
#undef CAT_
