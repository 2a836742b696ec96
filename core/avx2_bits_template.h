/*
 * AVX2 reductions on the bits, for the dtypes that compute in float32 (float32, float16,
 * bfloat16). Instantiated by kernels_avx2.c with SUF, BITS_WIDTH (32 or 16), BINF (the bits of
 * +inf) and KIND (fold8's conversion to float); it undefines them at its end.
 *
 * A sign-magnitude float's order is not its bits' order, but three integer reductions of the
 * bits (signed max, unsigned max, unsigned min) give what the accumulator needs (kernels.h):
 *   some value is negative (sign bit set) <=> the unsigned max has the sign bit, and then that max
 *   is the least value; otherwise the unsigned min is. Some value has the sign bit clear <=> the
 *   signed max is >= 0, and then it is the greatest value; otherwise the unsigned min is.
 *   +0.0 (all bits clear: the least unsigned value) was seen <=> the unsigned min is 0;
 *   a NaN was seen <=> the signed max is above +inf's bits or the unsigned max above -inf's.
 *   -0.0 (the sign bit alone) was seen: when the unsigned max is -0.0 (the only negative), or when
 *   no value has the sign bit clear and the unsigned min is -0.0 (the negative nearest zero).
 *   Otherwise both signs were seen, some value below -0.0: if one above +0.0 was seen too, no
 *   extreme can be a zero and the flag is never read (qdq.c), so it is left alone; if the values
 *   with the sign bit clear are all +0.0 (signed max 0: rare), the caller looks for -0.0 itself.
 * When a NaN was seen the extremes are not used (qdq.c replays the channel in Eigen's order).
 * Three integer operations a vector replace two float compares, three flag compares and their
 * ORs, and a float16 or bfloat16 vector needs no conversion: twice the elements a vector.
 */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

/* B: the storage bits; BL: elements a vector; signed / unsigned max / min of vectors of B; HRED:
 * a vector's horizontal reduction; WIDEN: a vector of B as 8-lane halves in 32-bit form. */
#if BITS_WIDTH == 32
#define B uint32_t
#define BL 8
#define BMAXS _mm256_max_epi32
#define BMAXU _mm256_max_epu32
#define BMINU _mm256_min_epu32
#define BSET1 _mm256_set1_epi32
#define BSMIN INT32_MIN
#define HRED HRED32
#define WIDEN WIDEN32
#else
#define B uint16_t
#define BL 16
#define BMAXS _mm256_max_epi16
#define BMAXU _mm256_max_epu16
#define BMINU _mm256_min_epu16
#define BSET1 _mm256_set1_epi16
#define BSMIN ((short)0x8000)
#define HRED HRED16
#define WIDEN WIDEN16
#endif
#define NEG_ZERO ((B)1 << (8 * sizeof(B) - 1)) /* the bits of -0.0 */

/* The three reductions' starting values: smax, umax, umin. */
#define RED_INIT(a, c, d)                                                                      \
    ((a) = BSET1(BSMIN), (c) = _mm256_setzero_si256(), (d) = _mm256_set1_epi32(-1))
#define RED_STEP(x, a, c, d) ((a) = BMAXS(x, a), (c) = BMAXU(x, c), (d) = BMINU(x, d))

/* Whether -0.0 is among n elements `stride` apart (the rare case the reductions leave open). */
static inline bool CAT(has_neg_zero, SUF)(const B *in, size_t n, size_t stride)
{
    for (size_t k = 0; k < n; k++)
        if (in[k * stride] == NEG_ZERO)
            return true;
    return false;
}

/* Folds one channel's reductions, given in 32-bit form, into its accumulator. Returns true when
 * the -0.0 flag is left to the caller (see the top of the file). */
static inline bool CAT(fold1, SUF)(uint32_t smax, uint32_t umax, uint32_t umin, float *mn,
                                   float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    uint32_t inf = (uint32_t)BINF << (32 - 8 * sizeof(B)), sign = 0x80000000u;
    uint32_t lob = umax >> 31 ? umax : umin;
    uint32_t hib = smax >> 31 ? umin : smax;
    if (umax == sign || (smax >> 31 && umin == sign))
        *nz = -1;
    if (umin == 0)
        *pz = -1;
    if ((!(smax >> 31) && smax > inf) || umax > (inf | sign))
        *nn = -1;
    float lo = fold_to_float(lob, KIND), hi = fold_to_float(hib, KIND);
    *mn = lo < *mn ? lo : *mn;
    *mx = hi > *mx ? hi : *mx;
    return umax > sign && smax == 0;
}

/* Elements k.. of n (k < n) as a vector, padded with a copy of element k: padding changes none
 * of the three reductions. */
static inline __m256i CAT(tail_vec, SUF)(const B *in, size_t k, size_t n)
{
    B buf[BL];
    for (size_t j = 0; j < BL; j++)
        buf[j] = in[k + j < n ? k + j : k];
    return _mm256_loadu_si256((const __m256i *)buf);
}

/* The three reductions of n >= 1 elements, as vectors (r[0..2]: smax, umax, umin). */
static inline __attribute__((always_inline)) void CAT(reduce_vec, SUF)(const B *in, size_t n,
                                                                        __m256i r[3])
{
    __m256i smax0, umax0, umin0, smax1, umax1, umin1;
    RED_INIT(smax0, umax0, umin0);
    RED_INIT(smax1, umax1, umin1);
    size_t k = 0;
    for (; k + 2 * BL <= n; k += 2 * BL) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(in + k));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(in + k + BL));
        RED_STEP(x0, smax0, umax0, umin0);
        RED_STEP(x1, smax1, umax1, umin1);
        /* Keeps each reduction in one register (GCC 12 otherwise copies them all a turn). */
        __asm__("" : "+x"(smax0), "+x"(umax0), "+x"(umin0), "+x"(smax1), "+x"(umax1),
                "+x"(umin1));
    }
    for (; k < n; k += BL) {
        __m256i x = k + BL <= n ? _mm256_loadu_si256((const __m256i *)(in + k))
                                : CAT(tail_vec, SUF)(in, k, n);
        RED_STEP(x, smax0, umax0, umin0);
    }
    r[0] = BMAXS(smax0, smax1), r[1] = BMAXU(umax0, umax1), r[2] = BMINU(umin0, umin1);
}

/* The same for four channels of n >= 1 elements, `stride` apart, side by side (fewer loop
 * starts and exits for short channels): channel i's reductions go to v[0..2][i]. */
static inline __attribute__((always_inline)) void CAT(reduce_vec4, SUF)(const B *in, size_t n,
                                                                         size_t stride,
                                                                         __m256i *v[3])
{
    __m256i a0, c0, d0, a1, c1, d1, a2, c2, d2, a3, c3, d3;
    RED_INIT(a0, c0, d0), RED_INIT(a1, c1, d1), RED_INIT(a2, c2, d2), RED_INIT(a3, c3, d3);
    const B *p0 = in, *p1 = in + stride, *p2 = in + 2 * stride, *p3 = in + 3 * stride;
    size_t k = 0;
    for (; k + BL <= n; k += BL) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(p0 + k));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(p1 + k));
        __m256i x2 = _mm256_loadu_si256((const __m256i *)(p2 + k));
        __m256i x3 = _mm256_loadu_si256((const __m256i *)(p3 + k));
        RED_STEP(x0, a0, c0, d0);
        RED_STEP(x1, a1, c1, d1);
        RED_STEP(x2, a2, c2, d2);
        RED_STEP(x3, a3, c3, d3);
        __asm__("" : "+x"(a0), "+x"(c0), "+x"(d0), "+x"(a1), "+x"(c1), "+x"(d1), "+x"(a2),
                "+x"(c2), "+x"(d2), "+x"(a3), "+x"(c3), "+x"(d3));
    }
    if (k < n) {
        __m256i x0 = CAT(tail_vec, SUF)(p0, k, n), x1 = CAT(tail_vec, SUF)(p1, k, n);
        __m256i x2 = CAT(tail_vec, SUF)(p2, k, n), x3 = CAT(tail_vec, SUF)(p3, k, n);
        RED_STEP(x0, a0, c0, d0);
        RED_STEP(x1, a1, c1, d1);
        RED_STEP(x2, a2, c2, d2);
        RED_STEP(x3, a3, c3, d3);
    }
    v[0][0] = a0, v[1][0] = c0, v[2][0] = d0, v[0][1] = a1, v[1][1] = c1, v[2][1] = d1;
    v[0][2] = a2, v[1][2] = c2, v[2][2] = d2, v[0][3] = a3, v[1][3] = c3, v[2][3] = d3;
}

static void CAT(reduce_run, SUF)(const void *in, size_t n, void *mn, void *mx, void *nz,
                                 void *pz, void *nn)
{
    if (n == 0)
        return;
    __m256i r[3];
    CAT(reduce_vec, SUF)(in, n, r);
    const unsigned up = 32 - 8 * sizeof(B);
    if (CAT(fold1, SUF)((uint32_t)HRED(r[0], BMAXS) << up, (uint32_t)HRED(r[1], BMAXU) << up,
                        (uint32_t)HRED(r[2], BMINU) << up, mn, mx, nz, pz, nn) &&
        CAT(has_neg_zero, SUF)(in, n, 1))
        *(int32_t *)nz = -1;
}

/* Folds the reductions of BL channels (vectors of B) into their accumulators. Returns the mask
 * of channels whose -0.0 flag is left to the caller (bit j: channel j). */
static inline unsigned CAT(fold, SUF)(__m256i smax, __m256i umax, __m256i umin, float *mn,
                                      float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    __m256i s0[2], u0[2], u1[2];
    unsigned open = 0;
    WIDEN(smax, s0), WIDEN(umax, u0), WIDEN(umin, u1);
    for (int h = 0; h < (int)(BL / 8); h++)
        open |= fold8(s0[h], u0[h], u1[h], (int32_t)((uint32_t)BINF << (32 - 8 * sizeof(B))),
                      KIND, mn + 8 * h, mx + 8 * h, nz + 8 * h, pz + 8 * h, nn + 8 * h)
                << (8 * h);
    return open;
}

/* The -0.0 flags fold left open: for each channel j of `open`, its n elements (from in + j * step,
 * `stride` apart) are looked at. */
static inline void CAT(settle, SUF)(unsigned open, const B *in, size_t step, size_t n,
                                    size_t stride, int32_t *nz)
{
    for (; open; open &= open - 1) {
        unsigned j = (unsigned)__builtin_ctz(open);
        if (CAT(has_neg_zero, SUF)(in + j * step, n, stride))
            nz[j] = -1;
    }
}

/* Vectors of channels a kernel takes down the rows together: twelve reductions in registers. */
#define GROUP 4

/*
 * Rows of channels in cache, stride elements apart (QDQ_REDUCE_BLOCKED): cv channels (whole
 * vectors) a panel of up to `panel` at a time. Down a block of `block` rows, GROUP vectors of
 * channels (two lines of float32) keep their reductions in registers; between blocks they wait in
 * a local array. A short block lets the next-line prefetch of the rows' lines survive in L1 until
 * the next group reads them (a row stride of 1 KiB maps a column to 4 of L1's sets).
 */
static inline __attribute__((always_inline)) void
    CAT(rows_blocked, SUF)(const B *in, size_t rows, size_t stride, size_t cv, size_t block,
                           size_t panel, float *mn, float *mx, int32_t *nz, int32_t *pz,
                           int32_t *nn)
{
    __m256i red[3 * QDQ_PANEL_MAX / BL];
    for (size_t p0 = 0; p0 < cv; p0 += panel) {
        size_t nv = (cv - p0 < panel ? cv - p0 : panel) / BL;
        for (size_t v = 0; v < nv; v++)
            RED_INIT(red[3 * v], red[3 * v + 1], red[3 * v + 2]);
        for (size_t r0 = 0; r0 < rows; r0 += block) {
            size_t r1 = r0 + block < rows ? r0 + block : rows;
            size_t v = 0;
            for (; v + GROUP <= nv; v += GROUP) {
                __m256i *q = red + 3 * v;
                __m256i a0 = q[0], c0 = q[1], d0 = q[2], a1 = q[3], c1 = q[4], d1 = q[5];
                __m256i a2 = q[6], c2 = q[7], d2 = q[8], a3 = q[9], c3 = q[10], d3 = q[11];
                const B *col = in + p0 + v * BL;
                for (size_t r = r0; r < r1; r++) {
                    const __m256i *x = (const __m256i *)(col + r * stride);
                    __m256i x0 = _mm256_loadu_si256(x), x1 = _mm256_loadu_si256(x + 1);
                    __m256i x2 = _mm256_loadu_si256(x + 2), x3 = _mm256_loadu_si256(x + 3);
                    RED_STEP(x0, a0, c0, d0);
                    RED_STEP(x1, a1, c1, d1);
                    RED_STEP(x2, a2, c2, d2);
                    RED_STEP(x3, a3, c3, d3);
                    __asm__("" : "+x"(a0), "+x"(c0), "+x"(d0), "+x"(a1), "+x"(c1), "+x"(d1),
                            "+x"(a2), "+x"(c2), "+x"(d2), "+x"(a3), "+x"(c3), "+x"(d3));
                }
                q[0] = a0, q[1] = c0, q[2] = d0, q[3] = a1, q[4] = c1, q[5] = d1;
                q[6] = a2, q[7] = c2, q[8] = d2, q[9] = a3, q[10] = c3, q[11] = d3;
            }
            for (; v < nv; v++) { /* the last vectors, one at a time */
                __m256i a = red[3 * v], c = red[3 * v + 1], d = red[3 * v + 2];
                const B *col = in + p0 + v * BL;
                for (size_t r = r0; r < r1; r++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *)(col + r * stride));
                    RED_STEP(x, a, c, d);
                }
                red[3 * v] = a, red[3 * v + 1] = c, red[3 * v + 2] = d;
            }
        }
        for (size_t v = 0; v < nv; v++) {
            size_t c = p0 + v * BL;
            unsigned open = CAT(fold, SUF)(red[3 * v], red[3 * v + 1], red[3 * v + 2], mn + c,
                                           mx + c, nz + c, pz + c, nn + c);
            CAT(settle, SUF)(open, in + c, 1, rows, stride, nz + c);
        }
    }
}

/* The three reductions of eight vectors, as a tree (three operations a vector, as RED_STEP). */
#define RED8(x, a, c, d)                                                                       \
    ((a) = BMAXS(BMAXS(BMAXS(x[0], x[1]), BMAXS(x[2], x[3])),                                  \
                 BMAXS(BMAXS(x[4], x[5]), BMAXS(x[6], x[7]))),                                 \
     (c) = BMAXU(BMAXU(BMAXU(x[0], x[1]), BMAXU(x[2], x[3])),                                  \
                 BMAXU(BMAXU(x[4], x[5]), BMAXU(x[6], x[7]))),                                 \
     (d) = BMINU(BMINU(BMINU(x[0], x[1]), BMINU(x[2], x[3])),                                  \
                 BMINU(BMINU(x[4], x[5]), BMINU(x[6], x[7]))))

/* One vector of channels of eight rows, `stride` elements apart, into its reductions q[0..2]. */
static inline __attribute__((always_inline)) void CAT(along8, SUF)(const B *y, size_t stride,
                                                                    __m256i *q)
{
    __m256i x[8], a, c, d;
    for (int k = 0; k < 8; k++)
        x[k] = _mm256_loadu_si256((const __m256i *)(y + (size_t)k * stride));
    RED8(x, a, c, d);
    q[0] = BMAXS(q[0], a), q[1] = BMAXU(q[1], c), q[2] = BMINU(q[2], d);
}

/*
 * Rows of channels along the rows, eight rows at a time (QDQ_REDUCE_ALONG): each vector of
 * channels of the eight is reduced in registers and folded into the panel's reductions, which
 * wait in a local array (up to `panel` channels: in L1 or L2). Rows are read in address order, so
 * the TLB and the hardware prefetchers stay on a page or two at a time, where rows_blocked's walk
 * down a column of 4 KiB rows takes a new page every line. From memory (`far`:
 * QDQ_REDUCE_ALONG_FAR), the lines of the next eight rows are fetched meanwhile, in address
 * order, spread evenly over the vectors.
 */
static inline __attribute__((always_inline)) void
    CAT(rows_along, SUF)(const B *in, size_t rows, size_t stride, size_t cv, bool far,
                         size_t panel, float *mn, float *mx, int32_t *nz, int32_t *pz,
                         int32_t *nn)
{
    __m256i red[3 * QDQ_PANEL_ALONG_MAX / BL];
    for (size_t p0 = 0; p0 < cv; p0 += panel) {
        size_t nv = (cv - p0 < panel ? cv - p0 : panel) / BL, r = 0;
        size_t row_lines = (nv * BL * sizeof(B) + 63) / 64;
        for (size_t v = 0; v < nv; v++)
            RED_INIT(red[3 * v], red[3 * v + 1], red[3 * v + 2]);
        for (; r + 8 <= rows; r += 8) {
            const B *p = in + r * stride + p0;
            if (far && r + 16 <= rows) {
                fetch_cursor f;
                fetch_begin(&f, p + 8 * stride, row_lines, 8, stride * sizeof(B), nv);
                for (size_t v = 0; v < nv; v++) {
                    fetch_step(&f);
                    CAT(along8, SUF)(p + v * BL, stride, red + 3 * v);
                }
            } else {
                for (size_t v = 0; v < nv; v++)
                    CAT(along8, SUF)(p + v * BL, stride, red + 3 * v);
            }
        }
        for (; r < rows; r++) /* the rows past the last eight */
            for (size_t v = 0; v < nv; v++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(in + r * stride + p0 + v * BL));
                RED_STEP(x, red[3 * v], red[3 * v + 1], red[3 * v + 2]);
            }
        for (size_t v = 0; v < nv; v++) {
            size_t c = p0 + v * BL;
            unsigned open = CAT(fold, SUF)(red[3 * v], red[3 * v + 1], red[3 * v + 2], mn + c,
                                           mx + c, nz + c, pz + c, nn + c);
            CAT(settle, SUF)(open, in + c, 1, rows, stride, nz + c);
        }
    }
}

/* Rows of C channels, stride elements apart: as reduce_lanes on each row, the channels'
 * reductions folded into the accumulators once, at the end; the way the tuning gives (kernels.h,
 * qdq_reduce_rows_way). */
static void CAT(reduce_rows, SUF)(const void *in_, size_t rows, size_t stride, size_t C,
                                  void *mn_, void *mx_, void *nz_, void *pz_, void *nn_,
                                  const qdq_tuning *t)
{
    const B *in = in_;
    float *mn = mn_, *mx = mx_;
    int32_t *nz = nz_, *pz = pz_, *nn = nn_;
    size_t cv = C / BL * BL;
    if (rows == 0)
        return;
    qdq_reduce_way way = qdq_reduce_rows_way(t, DT, rows, stride, C);
    size_t along = panel_of(t->panel_along, QDQ_PANEL_ALONG_MAX, BL);
    if (way == QDQ_REDUCE_ALONG_FAR) /* two calls: each inlined with its own constant `far` */
        CAT(rows_along, SUF)(in, rows, stride, cv, true, along, mn, mx, nz, pz, nn);
    else if (way == QDQ_REDUCE_ALONG)
        CAT(rows_along, SUF)(in, rows, stride, cv, false, along, mn, mx, nz, pz, nn);
    else
        CAT(rows_blocked, SUF)(in, rows, stride, cv, t->near_rows ? t->near_rows : 1,
                               panel_of(t->panel, QDQ_PANEL_MAX, BL), mn, mx, nz, pz, nn);
    if (cv < C) /* the channels past the last whole vector */
        for (size_t r = 0; r < rows; r++)
            CAT(reduce_lanes, SUF)(in + r * stride + cv, C - cv, mn + cv, mx + cv, nz + cv,
                                   pz + cv, nn + cv);
}

/*
 * BL vectors of one reduction (v[j]: channel j's) to one vector whose lane j is channel j's
 * value: pairs of vectors are interleaved and reduced at 16 (when BL is 16), 32 and 64-bit
 * granularity, then across the 128-bit halves. Ends in v[0].
 */
#define TRED(v, OP)                                                                            \
    do {                                                                                       \
        size_t m_ = BL;                                                                        \
        if (BL == 16) {                                                                        \
            for (size_t j = 0; j < m_ / 2; j++)                                                \
                v[j] = OP(_mm256_unpacklo_epi16(v[2 * j], v[2 * j + 1]),                       \
                          _mm256_unpackhi_epi16(v[2 * j], v[2 * j + 1]));                      \
            m_ /= 2;                                                                           \
        }                                                                                      \
        for (size_t j = 0; j < m_ / 2; j++)                                                    \
            v[j] = OP(_mm256_unpacklo_epi32(v[2 * j], v[2 * j + 1]),                           \
                      _mm256_unpackhi_epi32(v[2 * j], v[2 * j + 1]));                          \
        m_ /= 2;                                                                               \
        for (size_t j = 0; j < m_ / 2; j++)                                                    \
            v[j] = OP(_mm256_unpacklo_epi64(v[2 * j], v[2 * j + 1]),                           \
                      _mm256_unpackhi_epi64(v[2 * j], v[2 * j + 1]));                          \
        v[0] = OP(_mm256_permute2x128_si256(v[0], v[1], 0x20),                                 \
                  _mm256_permute2x128_si256(v[0], v[1], 0x31));                                \
    } while (0)

/* n channels of inner elements each: BL channels at a time, their reductions transposed into
 * vectors of channels and folded together; the rest one by one. */
static void CAT(reduce_cols, SUF)(const void *in_, size_t n, size_t inner, void *mn_, void *mx_,
                                  void *nz_, void *pz_, void *nn_)
{
    const B *in = in_;
    float *mn = mn_, *mx = mx_;
    int32_t *nz = nz_, *pz = pz_, *nn = nn_;
    size_t c = 0;
    if (inner > 0)
        for (; c + BL <= n; c += BL) {
            __m256i v[3][BL];
            for (size_t j = 0; j < BL; j += 4)
                CAT(reduce_vec4, SUF)(in + (c + j) * inner, inner, inner,
                                      (__m256i *[3]){ v[0] + j, v[1] + j, v[2] + j });
            TRED(v[0], BMAXS);
            TRED(v[1], BMAXU);
            TRED(v[2], BMINU);
            unsigned open = CAT(fold, SUF)(v[0][0], v[1][0], v[2][0], mn + c, mx + c, nz + c,
                                           pz + c, nn + c);
            CAT(settle, SUF)(open, in + c * inner, inner, inner, 1, nz + c);
        }
    for (; c < n; c++)
        CAT(reduce_run, SUF)(in + c * inner, inner, mn + c, mx + c, nz + c, pz + c, nn + c);
}
#undef TRED

#undef B
#undef BL
#undef BMAXS
#undef BMAXU
#undef BMINU
#undef BSET1
#undef BSMIN
#undef NEG_ZERO
#undef RED_INIT
#undef RED_STEP
#undef RED8
#undef GROUP
#undef HRED
#undef WIDEN
#undef BITS_WIDTH
#undef BINF
#undef KIND
#undef CAT
#undef CAT_
