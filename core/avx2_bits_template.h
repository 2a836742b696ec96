/*
 * AVX2 reductions on the bits, for the dtypes that compute in float32 (float32, float16,
 * bfloat16). Instantiated by kernels_avx2.c with SUF, BITS_WIDTH (32 or 16), BINF (the bits of
 * +inf) and KIND (fold8's conversion to float); it undefines them at its end.
 *
 * A sign-magnitude float's order is not its bits' order, but four integer reductions of the bits
 * give everything the accumulator holds (kernels.h), exactly as the float comparisons do:
 *   some value is negative (sign bit set) <=> the unsigned max has the sign bit, and then that max
 *   is the least value; otherwise the unsigned min is. Some value has the sign bit clear <=> the
 *   signed max is >= 0, and then it is the greatest value; otherwise the unsigned min is.
 *   -0.0 (the sign bit alone: the least signed value) was seen <=> the signed min is it;
 *   +0.0 (all bits clear: the least unsigned value) was seen <=> the unsigned min is 0;
 *   a NaN was seen <=> the signed max is above +inf's bits or the unsigned max above -inf's.
 * When a NaN was seen the extremes are not used (qdq.c replays the channel in Eigen's order).
 * Four integer operations a vector replace two float compares, three flag compares and their
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
#define BMINS _mm256_min_epi32
#define BMAXU _mm256_max_epu32
#define BMINU _mm256_min_epu32
#define BSET1 _mm256_set1_epi32
#define BSMIN INT32_MIN
#define BSMAX INT32_MAX
#define HRED HRED32
#define WIDEN WIDEN32
#else
#define B uint16_t
#define BL 16
#define BMAXS _mm256_max_epi16
#define BMINS _mm256_min_epi16
#define BMAXU _mm256_max_epu16
#define BMINU _mm256_min_epu16
#define BSET1 _mm256_set1_epi16
#define BSMIN ((short)0x8000)
#define BSMAX ((short)0x7fff)
#define HRED HRED16
#define WIDEN WIDEN16
#endif

/* Folds one channel's reductions, given in 32-bit form, into its accumulator. */
static inline void CAT(fold1, SUF)(uint32_t smax, uint32_t smin, uint32_t umax, uint32_t umin,
                                   float *mn, float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    uint32_t inf = (uint32_t)BINF << (32 - 8 * sizeof(B));
    uint32_t lob = umax >> 31 ? umax : umin;
    uint32_t hib = smax >> 31 ? umin : smax;
    if (smin == 0x80000000u)
        *nz = -1;
    if (umin == 0)
        *pz = -1;
    if ((!(smax >> 31) && smax > inf) || umax > (inf | 0x80000000u))
        *nn = -1;
    float lo = fold_to_float(lob, KIND), hi = fold_to_float(hib, KIND);
    *mn = lo < *mn ? lo : *mn;
    *mx = hi > *mx ? hi : *mx;
}

/* The four reductions of n >= 1 elements, as vectors (r[0..3]: smax, smin, umax, umin). */
static inline __attribute__((always_inline)) void CAT(reduce_vec, SUF)(const B *in, size_t n,
                                                                        __m256i r[4])
{
    __m256i smax0 = BSET1(BSMIN), smin0 = BSET1(BSMAX), umax0 = _mm256_setzero_si256();
    __m256i umin0 = _mm256_set1_epi32(-1);
    __m256i smax1 = smax0, smin1 = smin0, umax1 = umax0, umin1 = umin0;
    size_t k = 0;
    for (; k + 2 * BL <= n; k += 2 * BL) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(in + k));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(in + k + BL));
        smax0 = BMAXS(x0, smax0), smin0 = BMINS(x0, smin0);
        umax0 = BMAXU(x0, umax0), umin0 = BMINU(x0, umin0);
        smax1 = BMAXS(x1, smax1), smin1 = BMINS(x1, smin1);
        umax1 = BMAXU(x1, umax1), umin1 = BMINU(x1, umin1);
        /* Keeps each accumulator in one register (GCC 12 otherwise copies all eight a turn). */
        __asm__("" : "+x"(smax0), "+x"(smin0), "+x"(umax0), "+x"(umin0), "+x"(smax1),
                "+x"(smin1), "+x"(umax1), "+x"(umin1));
    }
    for (; k < n; k += BL) {
        __m256i x;
        if (k + BL <= n) {
            x = _mm256_loadu_si256((const __m256i *)(in + k));
        } else { /* pad with a copy of an element: it changes none of the four */
            B buf[BL];
            for (size_t j = 0; j < BL; j++)
                buf[j] = in[k + j < n ? k + j : k];
            x = _mm256_loadu_si256((const __m256i *)buf);
        }
        smax0 = BMAXS(x, smax0), smin0 = BMINS(x, smin0);
        umax0 = BMAXU(x, umax0), umin0 = BMINU(x, umin0);
    }
    r[0] = BMAXS(smax0, smax1), r[1] = BMINS(smin0, smin1);
    r[2] = BMAXU(umax0, umax1), r[3] = BMINU(umin0, umin1);
}

static void CAT(reduce_run, SUF)(const void *in, size_t n, void *mn, void *mx, void *nz,
                                 void *pz, void *nn)
{
    if (n == 0)
        return;
    __m256i r[4];
    CAT(reduce_vec, SUF)(in, n, r);
    const unsigned up = 32 - 8 * sizeof(B);
    CAT(fold1, SUF)((uint32_t)HRED(r[0], BMAXS) << up, (uint32_t)HRED(r[1], BMINS) << up,
                    (uint32_t)HRED(r[2], BMAXU) << up, (uint32_t)HRED(r[3], BMINU) << up,
                    mn, mx, nz, pz, nn);
}

/* Folds the reductions of BL channels (vectors of B) into their accumulators. */
static inline void CAT(fold, SUF)(__m256i smax, __m256i smin, __m256i umax, __m256i umin,
                                  float *mn, float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    __m256i s0[2], s1[2], u0[2], u1[2];
    WIDEN(smax, s0), WIDEN(smin, s1), WIDEN(umax, u0), WIDEN(umin, u1);
    for (int h = 0; h < (int)(BL / 8); h++)
        fold8(s0[h], s1[h], u0[h], u1[h], (int32_t)((uint32_t)BINF << (32 - 8 * sizeof(B))),
              KIND, mn + 8 * h, mx + 8 * h, nz + 8 * h, pz + 8 * h, nn + 8 * h);
}

/* In cache: cv channels (whole vectors), a line's two vectors at a time down every row. */
static inline void CAT(rows_near, SUF)(const B *in, size_t rows, size_t C, size_t cv, float *mn,
                                       float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    size_t c = 0;
    for (; c + 2 * BL <= cv; c += 2 * BL) {
        __m256i a0 = BSET1(BSMIN), b0 = BSET1(BSMAX), c0 = _mm256_setzero_si256();
        __m256i d0 = _mm256_set1_epi32(-1), a1 = a0, b1 = b0, c1 = c0, d1 = d0;
        for (size_t r = 0; r < rows; r++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(in + r * C + c));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(in + r * C + c + BL));
            a0 = BMAXS(x0, a0), b0 = BMINS(x0, b0), c0 = BMAXU(x0, c0), d0 = BMINU(x0, d0);
            a1 = BMAXS(x1, a1), b1 = BMINS(x1, b1), c1 = BMAXU(x1, c1), d1 = BMINU(x1, d1);
            __asm__("" : "+x"(a0), "+x"(b0), "+x"(c0), "+x"(d0), "+x"(a1), "+x"(b1), "+x"(c1),
                    "+x"(d1));
        }
        CAT(fold, SUF)(a0, b0, c0, d0, mn + c, mx + c, nz + c, pz + c, nn + c);
        CAT(fold, SUF)(a1, b1, c1, d1, mn + c + BL, mx + c + BL, nz + c + BL, pz + c + BL,
                       nn + c + BL);
    }
    if (c < cv) { /* an odd vector */
        __m256i a0 = BSET1(BSMIN), b0 = BSET1(BSMAX), c0 = _mm256_setzero_si256();
        __m256i d0 = _mm256_set1_epi32(-1);
        for (size_t r = 0; r < rows; r++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(in + r * C + c));
            a0 = BMAXS(x0, a0), b0 = BMINS(x0, b0), c0 = BMAXU(x0, c0), d0 = BMINU(x0, d0);
        }
        CAT(fold, SUF)(a0, b0, c0, d0, mn + c, mx + c, nz + c, pz + c, nn + c);
    }
}

/* From memory: cv channels (whole vectors), a panel of up to PANEL at a time, ROWS_BLOCK rows
 * down each vector's column before the next, the block after fetched ahead. */
static inline void CAT(rows_far, SUF)(const B *in, size_t rows, size_t C, size_t cv, float *mn,
                                      float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    __m256i red[4 * PANEL / BL];
    for (size_t p0 = 0; p0 < cv; p0 += PANEL) {
        size_t nv = (cv - p0 < PANEL ? cv - p0 : PANEL) / BL;
        for (size_t v = 0; v < nv; v++) {
            red[4 * v] = BSET1(BSMIN), red[4 * v + 1] = BSET1(BSMAX);
            red[4 * v + 2] = _mm256_setzero_si256(), red[4 * v + 3] = _mm256_set1_epi32(-1);
        }
        for (size_t r0 = 0; r0 < rows; r0 += ROWS_BLOCK) {
            size_t r1 = r0 + ROWS_BLOCK < rows ? r0 + ROWS_BLOCK : rows;
            /* The block fetched ahead: a line every 64 bytes of columns. */
            size_t f0 = r0 + PREFETCH_BLOCKS * ROWS_BLOCK;
            size_t f1 = f0 < rows ? (f0 + ROWS_BLOCK < rows ? f0 + ROWS_BLOCK : rows) : f0;
            for (size_t v = 0; v < nv; v++) {
                __m256i a = red[4 * v], b = red[4 * v + 1], c = red[4 * v + 2];
                __m256i d = red[4 * v + 3];
                const B *col = in + p0 + v * BL;
                if (v % (64 / (BL * sizeof(B))) == 0)
                    for (size_t r = f0; r < f1; r++)
                        _mm_prefetch((const char *)(col + r * C), _MM_HINT_T0);
                for (size_t r = r0; r < r1; r++) {
                    __m256i x = _mm256_loadu_si256((const __m256i *)(col + r * C));
                    a = BMAXS(a, x), b = BMINS(b, x), c = BMAXU(c, x), d = BMINU(d, x);
                }
                red[4 * v] = a, red[4 * v + 1] = b, red[4 * v + 2] = c, red[4 * v + 3] = d;
            }
        }
        for (size_t v = 0; v < nv; v++) {
            size_t c = p0 + v * BL;
            CAT(fold, SUF)(red[4 * v], red[4 * v + 1], red[4 * v + 2], red[4 * v + 3], mn + c,
                           mx + c, nz + c, pz + c, nn + c);
        }
    }
}

/*
 * Whole rows of C channels. In cache, each line of channels (two vectors) is reduced down every
 * row with its reductions in registers. From memory, each vector of channels is reduced down a
 * short block of rows, its reductions kept between blocks in a local array for a panel of up to
 * PANEL channels; each block is fetched ahead while the one before is reduced (the hardware
 * prefetchers do not follow a column's stride over a few rows). Either way the reductions are
 * folded into the accumulators once, at the end.
 */
static void CAT(reduce_rows, SUF)(const void *in_, size_t rows, size_t C, void *mn_, void *mx_,
                                  void *nz_, void *pz_, void *nn_)
{
    const B *in = in_;
    float *mn = mn_, *mx = mx_;
    int32_t *nz = nz_, *pz = pz_, *nn = nn_;
    size_t cv = C / BL * BL;
    if (rows == 0)
        return;
    if (FAR(rows * C * sizeof(B)))
        CAT(rows_far, SUF)(in, rows, C, cv, mn, mx, nz, pz, nn);
    else
        CAT(rows_near, SUF)(in, rows, C, cv, mn, mx, nz, pz, nn);
    if (cv < C) /* the channels past the last whole vector */
        for (size_t r = 0; r < rows; r++)
            CAT(reduce_lanes, SUF)(in + r * C + cv, C - cv, mn + cv, mx + cv, nz + cv, pz + cv,
                                   nn + cv);
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
            __m256i v[4][BL], r[4];
            for (size_t j = 0; j < BL; j++) {
                CAT(reduce_vec, SUF)(in + (c + j) * inner, inner, r);
                v[0][j] = r[0], v[1][j] = r[1], v[2][j] = r[2], v[3][j] = r[3];
            }
            TRED(v[0], BMAXS);
            TRED(v[1], BMINS);
            TRED(v[2], BMAXU);
            TRED(v[3], BMINU);
            CAT(fold, SUF)(v[0][0], v[1][0], v[2][0], v[3][0], mn + c, mx + c, nz + c, pz + c,
                           nn + c);
        }
    for (; c < n; c++)
        CAT(reduce_run, SUF)(in + c * inner, inner, mn + c, mx + c, nz + c, pz + c, nn + c);
}
#undef TRED

#undef B
#undef BL
#undef BMAXS
#undef BMINS
#undef BMAXU
#undef BMINU
#undef BSET1
#undef BSMIN
#undef BSMAX
#undef HRED
#undef WIDEN
#undef BITS_WIDTH
#undef BINF
#undef KIND
#undef CAT
#undef CAT_
