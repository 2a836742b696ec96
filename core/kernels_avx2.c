/*
 * The AVX2 + F16C kernel family (built with -mavx2 -mf16c; used only when the CPU has both).
 * See avx2_template.h. float16 and bfloat16 are widened to float32 in registers and narrowed
 * with round-to-nearest-even, as the portable family does one element at a time.
 */
#include "kernels.h"
#include "scale.h"

#ifdef QDQ_HAVE_AVX2
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- Support for the reductions on the bits (avx2_bits_template.h) ---- */

/* The 32-bit form of a reduction (a 16-bit value sits in the upper half) as a float. */
enum { KIND_F32 = 0, KIND_F16 = 1 }; /* bfloat16's 32-bit form is its float32: KIND_F32 */

static inline float fold_to_float(uint32_t b, int kind)
{
    if (kind == KIND_F16)
        return _cvtsh_ss((unsigned short)(b >> 16));
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline __m256 fold_vec_to_float(__m256i b, int kind)
{
    if (kind == KIND_F16) {
        __m256i h = _mm256_srli_epi32(b, 16);
        return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(h),
                                                _mm256_extracti128_si256(h, 1)));
    }
    return _mm256_castsi256_ps(b);
}

/* Eight channels' three reductions, in 32-bit form, into their accumulators (as fold1). Returns
 * the mask of channels whose -0.0 flag is left to the caller (bit j: channel j). */
static inline unsigned fold8(__m256i smax, __m256i umax, __m256i umin, int32_t inf, int kind,
                             float *mn, float *mx, int32_t *nz, int32_t *pz, int32_t *nn)
{
    __m256i zero = _mm256_setzero_si256(), sign = _mm256_set1_epi32(INT32_MIN);
    __m256i vinf = _mm256_set1_epi32(inf);
    __m256i neg = _mm256_cmpgt_epi32(zero, umax), nopos = _mm256_cmpgt_epi32(zero, smax);
    __m256 lo = fold_vec_to_float(_mm256_blendv_epi8(umin, umax, neg), kind);
    __m256 hi = fold_vec_to_float(_mm256_blendv_epi8(smax, umin, nopos), kind);
    __m256i fnn = _mm256_or_si256(_mm256_cmpgt_epi32(smax, vinf),
                                  _mm256_cmpgt_epi32(_mm256_xor_si256(umax, sign), vinf));
    __m256i umax_nz = _mm256_cmpeq_epi32(umax, sign), smax_pz = _mm256_cmpeq_epi32(smax, zero);
    __m256i fnz = _mm256_or_si256(umax_nz, _mm256_and_si256(nopos, _mm256_cmpeq_epi32(umin, sign)));
    __m256i open = _mm256_andnot_si256(umax_nz, _mm256_and_si256(neg, smax_pz));
    _mm256_storeu_ps(mn, _mm256_min_ps(lo, _mm256_loadu_ps(mn)));
    _mm256_storeu_ps(mx, _mm256_max_ps(hi, _mm256_loadu_ps(mx)));
    __m256i *z0 = (__m256i *)nz, *z1 = (__m256i *)pz, *z2 = (__m256i *)nn;
    _mm256_storeu_si256(z0, _mm256_or_si256(_mm256_loadu_si256(z0), fnz));
    __m256i fpz = _mm256_cmpeq_epi32(umin, zero);
    _mm256_storeu_si256(z1, _mm256_or_si256(_mm256_loadu_si256(z1), fpz));
    _mm256_storeu_si256(z2, _mm256_or_si256(_mm256_loadu_si256(z2), fnn));
    return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(open));
}

/* A vector's horizontal reduction with op, as the lane-0 value (32 or 16-bit lanes). */
#define HRED32(v, op)                                                                         \
    ({                                                                                        \
        __m256i h_ = op(v, _mm256_permute2x128_si256(v, v, 1));                              \
        h_ = op(h_, _mm256_shuffle_epi32(h_, 0x4e));                                          \
        h_ = op(h_, _mm256_shuffle_epi32(h_, 0xb1));                                          \
        (uint32_t)_mm256_cvtsi256_si32(h_);                                                   \
    })
#define HRED16(v, op)                                                                         \
    ({                                                                                        \
        __m256i h_ = op(v, _mm256_permute2x128_si256(v, v, 1));                              \
        h_ = op(h_, _mm256_shuffle_epi32(h_, 0x4e));                                          \
        h_ = op(h_, _mm256_shuffle_epi32(h_, 0xb1));                                          \
        h_ = op(h_, _mm256_srli_epi32(h_, 16));                                               \
        (uint16_t)_mm256_cvtsi256_si32(h_);                                                   \
    })
/* A vector of B as eight-lane halves in 32-bit form, in channel order. */
#define WIDEN32(v, o) ((o)[0] = (v))
#define WIDEN16(v, o)                                                                         \
    ((o)[0] = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)), 16),        \
     (o)[1] = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)), 16))

/* Prefetches the lines of some rows of a panel (row_lines lines each, stride bytes apart), in
 * address order, spread evenly over the nv vector steps that reduce other rows meanwhile: after
 * k calls of fetch_step, lines * k / nv have been fetched, counted without division (a division
 * a step costs more than the reduction it hides). */
typedef struct fetch_cursor {
    const char *row, *p;
    size_t col, row_lines, stride, lines, nv, due;
} fetch_cursor;

static inline void fetch_begin(fetch_cursor *f, const void *first, size_t row_lines, size_t rows,
                               size_t stride, size_t nv)
{
    f->row = f->p = first;
    f->col = 0, f->row_lines = row_lines, f->stride = stride;
    f->lines = row_lines * rows, f->nv = nv, f->due = 0;
}

static inline __attribute__((always_inline)) void fetch_step(fetch_cursor *f)
{
    for (f->due += f->lines; f->due >= f->nv; f->due -= f->nv) {
        _mm_prefetch(f->p, _MM_HINT_T0);
        f->p += 64;
        if (++f->col == f->row_lines)
            f->col = 0, f->row += f->stride, f->p = f->row;
    }
}

/* The strategies' thresholds and blocks are the plan's qdq_tuning (kernels.h; the defaults and
 * why: tuning.c). A panel is at least a vector of channels and at most the arrays' size, in
 * whole vectors of BL. */
static inline size_t panel_of(size_t want, size_t max, size_t bl)
{
    want = want < max ? want : max;
    return want < bl ? bl : want / bl * bl;
}

/*
 * The error statistics of a stats kernel's call (qdq.h, qdq_stats), in float64 vectors: per
 * vector of elements, the inputs and outputs whose input is finite (the others zeroed: they add
 * nothing) widened to double, their differences' squares and the inputs' squares summed, the
 * greatest |difference| kept (max_pd(d, acc) keeps acc when d is NaN: skipped, as qdq.h says),
 * the finite lanes counted. For the float32-computing dtypes the greatest square is kept instead,
 * one operation fewer: a difference of two float32 values squares without overflow or underflow
 * in double, where sqrt(fl(e * e)) is exactly |e| and fl(e * e) grows strictly with |e|, so the
 * root of the greatest square is the greatest |e|. Sums over blocks of STATS_BLOCK vectors are
 * added to the totals a block at a time: the rounding grows with the block and the number of
 * blocks, not with the element count. Every accumulator stays in a register (all inlined).
 */
#define STATS_BLOCK 4096
#define STATS_AHEAD 4096 /* bytes of input the stats kernels fetch ahead (avx2_template.h) */
#define ALWAYS static inline __attribute__((always_inline))

typedef struct sacc {
    __m256d se0, se1, sx0, sx1, mx, tse, tsx;
    __m256i cnt; /* finite lanes, as the sum of -1 masks (32-bit lanes; 64-bit for float64) */
    uint64_t finite;
    unsigned left;
} sacc;

ALWAYS void sacc_init(sacc *a)
{
    a->se0 = a->se1 = a->sx0 = a->sx1 = a->mx = a->tse = a->tsx = _mm256_setzero_pd();
    a->cnt = _mm256_setzero_si256(), a->finite = 0, a->left = STATS_BLOCK;
}

ALWAYS void sacc_fold(sacc *a, int wide)
{
    a->tse = _mm256_add_pd(a->tse, _mm256_add_pd(a->se0, a->se1));
    a->tsx = _mm256_add_pd(a->tsx, _mm256_add_pd(a->sx0, a->sx1));
    a->se0 = a->se1 = a->sx0 = a->sx1 = _mm256_setzero_pd();
    int64_t c[4];
    __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(a->cnt));
    __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(a->cnt, 1));
    _mm256_storeu_si256((__m256i *)c, wide ? a->cnt : _mm256_add_epi64(lo, hi));
    a->finite += (uint64_t)(c[0] + c[1] + c[2] + c[3]);
    a->cnt = _mm256_setzero_si256(), a->left = STATS_BLOCK;
}

/* The inputs x and outputs o (as stored) of eight float32-computing elements. */
ALWAYS void stats_f(__m256 x, __m256 o, sacc *a)
{
    __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 fin = _mm256_cmp_ps(_mm256_and_ps(x, abs), _mm256_set1_ps(INFINITY), _CMP_LT_OQ);
    __m256 xm = _mm256_and_ps(x, fin), om = _mm256_and_ps(o, fin);
    __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xm));
    __m256d x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(xm, 1));
    __m256d e0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(om)), x0);
    __m256d e1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(om, 1)), x1);
    __m256d q0 = _mm256_mul_pd(e0, e0), q1 = _mm256_mul_pd(e1, e1);
    a->se0 = _mm256_add_pd(a->se0, q0), a->se1 = _mm256_add_pd(a->se1, q1);
    a->sx0 = _mm256_add_pd(a->sx0, _mm256_mul_pd(x0, x0));
    a->sx1 = _mm256_add_pd(a->sx1, _mm256_mul_pd(x1, x1));
    a->mx = _mm256_max_pd(_mm256_max_pd(q0, q1), a->mx); /* squares */
    a->cnt = _mm256_sub_epi32(a->cnt, _mm256_castps_si256(fin));
    if (__builtin_expect(--a->left == 0, 0))
        sacc_fold(a, 0);
}

/* The same for four float64 elements. */
ALWAYS void stats_d(__m256d x, __m256d o, sacc *a)
{
    __m256d absd = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffll));
    __m256d fin = _mm256_cmp_pd(_mm256_and_pd(x, absd), _mm256_set1_pd(INFINITY), _CMP_LT_OQ);
    __m256d xm = _mm256_and_pd(x, fin), e = _mm256_sub_pd(_mm256_and_pd(o, fin), xm);
    a->se0 = _mm256_add_pd(a->se0, _mm256_mul_pd(e, e));
    a->sx0 = _mm256_add_pd(a->sx0, _mm256_mul_pd(xm, xm));
    a->mx = _mm256_max_pd(_mm256_and_pd(e, absd), a->mx);
    a->cnt = _mm256_sub_epi64(a->cnt, _mm256_castpd_si256(fin));
    if (__builtin_expect(--a->left == 0, 0))
        sacc_fold(a, 1);
}

/* The call's n elements into st. */
ALWAYS void sacc_done(sacc *a, size_t n, qdq_stats *st, int wide)
{
    sacc_fold(a, wide);
    double se[4], sx[4], mx[4];
    _mm256_storeu_pd(se, a->tse), _mm256_storeu_pd(sx, a->tsx), _mm256_storeu_pd(mx, a->mx);
    st->sum_sq_error += (se[0] + se[1]) + (se[2] + se[3]);
    st->sum_sq_input += (sx[0] + sx[1]) + (sx[2] + sx[3]);
    for (int j = 0; j < 4; j++) {
        double m = wide ? mx[j] : sqrt(mx[j]); /* stats_f keeps squares */
        st->max_abs_error = m > st->max_abs_error ? m : st->max_abs_error;
    }
    st->finite += a->finite, st->nonfinite += n - a->finite;
}

/* A vector stored, and returned as the values stored (widened exactly): what the statistics
 * compare with the input. */
ALWAYS __m256 store_get_f32(float *p, __m256 v)
{
    _mm256_storeu_ps(p, v);
    return v;
}

ALWAYS __m256d store_get_f64(double *p, __m256d v)
{
    _mm256_storeu_pd(p, v);
    return v;
}

#define BITS_REDUCE

/* Common to the three float32-computing dtypes. */
#define T float
#define F int32_t
#define LANES 8
#define VT __m256
#define VLOADT(p) _mm256_loadu_ps(p)
#define VSTORET(p, v) _mm256_storeu_ps(p, v)
#define VSET1 _mm256_set1_ps
#define VMIN _mm256_min_ps
#define VMAX _mm256_max_ps
#define VMUL _mm256_mul_ps
#define VADD _mm256_add_ps
#define VRINT(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VFLOOR(x) _mm256_round_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VCAST_I _mm256_castps_si256
#define VOR _mm256_or_ps
#define VUNORD(x) _mm256_cmp_ps(x, x, _CMP_UNORD_Q)
#define VCMPEQ_I _mm256_cmpeq_epi32
#define VSIGN_I _mm256_set1_epi32((int)0x80000000u)
#define STATS_VEC stats_f
#define STATS_WIDE 0

#define SUF f32
#define S float
#define S_NAN NAN
#define S_ISNAN(v) 0
#define LOADV(p) _mm256_loadu_ps(p)
#define STOREV(p, v) _mm256_storeu_ps(p, v)
#define STORE_GET store_get_f32
#define DT QDQ_FLOAT32
#include "avx2_template.h"
#define BITS_WIDTH 32
#define BINF 0x7f800000u
#define KIND KIND_F32
#include "avx2_bits_template.h"
#undef SUF
#undef DT
#undef S
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV
#undef STORE_GET

/* float32 -> float16 in a register, then stored: the store form of vcvtps2ph is slower on AMD
 * Zen, and GCC folds the two when it can. */
static inline void f16_store(uint16_t *p, __m256 v)
{
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __asm__("" : "+x"(h));
    _mm_storeu_si128((__m128i *)p, h);
}

static inline __m256 f16_store_get(uint16_t *p, __m256 v)
{
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __asm__("" : "+x"(h));
    _mm_storeu_si128((__m128i *)p, h);
    return _mm256_cvtph_ps(h);
}

#define SUF f16
#define S uint16_t
#define S_NAN 0x7e00
#define S_ISNAN(v) (((v) & 0x7fff) > 0x7c00)
#define LOADV(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define STOREV(p, v) f16_store(p, v)
#define STORE_GET f16_store_get
#define DT QDQ_FLOAT16
#include "avx2_template.h"
#define BITS_WIDTH 16
#define BINF 0x7c00u
#define KIND KIND_F16
#include "avx2_bits_template.h"
#undef SUF
#undef DT
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV
#undef STORE_GET

/*
 * bfloat16 -> float32 is a shift; back is a rounding add. The add needs no NaN case here: every
 * value stored is a product (vec's last multiply), and a NaN product is the default NaN or
 * carries, quieted, the payload of a NaN operand: the input element (widened from bfloat16; the
 * clamp returns it when it is NaN) or a scale (NaN only in a channel whose range is NaN, which
 * qdq.c rewrites afterwards). The low 16 bits of such a NaN are zero, so the add cannot carry
 * out of them and leaves (bits >> 16), with the quiet bit set: what qdq_f32_to_bf16 gives.
 */
static inline __m256 bf16_load(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* float32 bits plus the rounding to nearest even at bit 16: the bfloat16 is the upper half. */
static inline __m256i bf16_round_up(__m256 v)
{
    __m256i x = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    return _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
}

static inline void bf16_store(uint16_t *p, __m256 v)
{
    __m256i r = _mm256_srli_epi32(bf16_round_up(v), 16);
    /* Pack the eight 32-bit lanes (each < 65536) into 16-bit words, in order. */
    __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(lo, hi));
}

static inline __m256 bf16_store_get(uint16_t *p, __m256 v)
{
    __m256i u = bf16_round_up(v), r = _mm256_srli_epi32(u, 16);
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(_mm256_castsi256_si128(r),
                                                     _mm256_extracti128_si256(r, 1)));
    return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32((int)0xffff0000u)));
}

/* Sixteen bfloat16 at once: the even elements shifted into the upper halves of a's float32 lanes,
 * the odd ones masked in place in b's; the store blends the two back. */
#define BF16_LOAD2(p, a, b)                                                                    \
    do {                                                                                       \
        __m256i x_ = _mm256_loadu_si256((const __m256i *)(p));                                  \
        (a) = _mm256_castsi256_ps(_mm256_slli_epi32(x_, 16));                                  \
        (b) = _mm256_castsi256_ps(_mm256_and_si256(x_, _mm256_set1_epi32((int)0xffff0000u))); \
    } while (0)

/* The pair rounds in 16-bit halves, one operation fewer than bf16_round_up twice: each float32
 * plus 0x8000 is rounded half up, and its upper half is the answer except on a tie (the lower
 * half was 0x8000, now zero), where half up gave the odd or the even neighbour and clearing the
 * last bit gives the even one. A NaN's lower half is zero (above): no carry, no tie. */
static inline void bf16_store2(uint16_t *p, __m256 a, __m256 b)
{
    __m256i half = _mm256_set1_epi32(0x8000);
    __m256i ea = _mm256_add_epi32(_mm256_castps_si256(a), half);
    __m256i ob = _mm256_add_epi32(_mm256_castps_si256(b), half);
    __m256i up = _mm256_blend_epi16(_mm256_srli_epi32(ea, 16), ob, 0xaa);
    __m256i low = _mm256_blend_epi16(ea, _mm256_slli_epi32(ob, 16), 0xaa);
    __m256i keep = _mm256_add_epi16(_mm256_cmpeq_epi16(low, _mm256_setzero_si256()),
                                    _mm256_set1_epi16(-1)); /* 0xfffe on a tie, else 0xffff */
    _mm256_storeu_si256((__m256i *)p, _mm256_and_si256(up, keep));
}

#define SUF bf16
#define LOADV2 BF16_LOAD2
#define STOREV2(p, a, b) bf16_store2(p, a, b)
#define S_NAN 0x7fc0
#define S_ISNAN(v) (((v) & 0x7fff) > 0x7f80)
#define LOADV(p) bf16_load(p)
#define STOREV(p, v) bf16_store(p, v)
#define STORE_GET bf16_store_get
#define DT QDQ_BFLOAT16
#include "avx2_template.h"
#define BITS_WIDTH 16
#define BINF 0x7f80u
#define KIND KIND_F32
#include "avx2_bits_template.h"

/* bf16_store2 without the tie fix: (bits + 0x8000) >> 16 rounds to nearest, and so to nearest
 * even unless the lower half is exactly 0x8000. Four operations a pair instead of nine. */
static inline void bf16_store2_noties(uint16_t *p, __m256 a, __m256 b)
{
    __m256i half = _mm256_set1_epi32(0x8000);
    __m256i ea = _mm256_add_epi32(_mm256_castps_si256(a), half);
    __m256i ob = _mm256_add_epi32(_mm256_castps_si256(b), half);
    _mm256_storeu_si256((__m256i *)p, _mm256_blend_epi16(_mm256_srli_epi32(ea, 16), ob, 0xaa));
}

/* The elements of whole 16-element pairs, two pairs a step; returns how many were done. */
static inline __attribute__((always_inline)) size_t
    noties_loop(const uint16_t *in, uint16_t *out, size_t n, __m256 l, __m256 h, __m256 s,
                __m256 v, int clamp, int half_up)
{
    size_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256 a, b, c, d;
        BF16_LOAD2(in + k, a, b);
        BF16_LOAD2(in + k + 16, c, d);
        bf16_store2_noties(out + k, vec_bf16(a, l, h, s, v, clamp, half_up),
                           vec_bf16(b, l, h, s, v, clamp, half_up));
        bf16_store2_noties(out + k + 16, vec_bf16(c, l, h, s, v, clamp, half_up),
                           vec_bf16(d, l, h, s, v, clamp, half_up));
    }
    for (; k + 16 <= n; k += 16) {
        __m256 a, b;
        BF16_LOAD2(in + k, a, b);
        bf16_store2_noties(out + k, vec_bf16(a, l, h, s, v, clamp, half_up),
                           vec_bf16(b, l, h, s, v, clamp, half_up));
    }
    return k;
}

/* apply_run_bf16 when no product is a tie (kernels.h); the last elements take apply_run_bf16. */
static void apply_run_noties_bf16(const void *in_, void *out_, size_t n, const void *lo,
                                  const void *hi, const void *scale, const void *inv, int clamp,
                                  int half_up)
{
    const uint16_t *in = in_;
    uint16_t *out = out_;
    __m256 l = VSET1(*(const float *)lo), h = VSET1(*(const float *)hi);
    __m256 s = VSET1(*(const float *)scale), v = VSET1(*(const float *)inv);
    size_t k;
    switch (clamp * 2 + half_up) {
    case 0: k = noties_loop(in, out, n, l, h, s, v, 0, 0); break;
    case 1: k = noties_loop(in, out, n, l, h, s, v, 0, 1); break;
    case 2: k = noties_loop(in, out, n, l, h, s, v, 1, 0); break;
    default: k = noties_loop(in, out, n, l, h, s, v, 1, 1); break;
    }
    if (k < n)
        apply_run_bf16(in + k, out + k, n - k, lo, hi, scale, inv, clamp, half_up);
}
#undef BITS_REDUCE
#undef LOADV2
#undef STOREV2
#undef SUF
#undef DT
#undef S
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV
#undef STORE_GET
#undef STATS_VEC
#undef STATS_WIDE

#undef T
#undef F
#undef LANES
#undef VT
#undef VLOADT
#undef VSTORET
#undef VSET1
#undef VMIN
#undef VMAX
#undef VMUL
#undef VADD
#undef VRINT
#undef VFLOOR
#undef VCAST_I
#undef VOR
#undef VUNORD
#undef VCMPEQ_I
#undef VSIGN_I

#define SUF f64
#define S double
#define T double
#define F int64_t
#define S_NAN NAN
#define S_ISNAN(v) 0
#define LANES 4
#define VT __m256d
#define LOADV(p) _mm256_loadu_pd(p)
#define STOREV(p, v) _mm256_storeu_pd(p, v)
#define VLOADT(p) _mm256_loadu_pd(p)
#define VSTORET(p, v) _mm256_storeu_pd(p, v)
#define VSET1 _mm256_set1_pd
#define VMIN _mm256_min_pd
#define VMAX _mm256_max_pd
#define VMUL _mm256_mul_pd
#define VADD _mm256_add_pd
#define VRINT(x) _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VFLOOR(x) _mm256_round_pd(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VCAST_I _mm256_castpd_si256
#define VOR _mm256_or_pd
#define VUNORD(x) _mm256_cmp_pd(x, x, _CMP_UNORD_Q)
#define VCMPEQ_I _mm256_cmpeq_epi64
#define VSIGN_I _mm256_set1_epi64x((long long)0x8000000000000000ull)
#define STORE_GET store_get_f64
#define STATS_VEC stats_d
#define STATS_WIDE 1
#define DT QDQ_FLOAT64
#include "avx2_template.h"

/* scale.h's formula on a vector of channels: both branches computed, the same one chosen (the
 * inverse scale divides the chosen operands). */
#define DEFINE_SCALES(name, T, V, L, SET1, LOADU, STOREU, MUL, DIV, CMP, BLEND, TMAX, scalar)       \
    static void name(size_t n, const void *q, const void *lo_, const void *hi_, void *olo_,     \
                     void *ohi_, void *sc_, void *inv_)                                       \
    {                                                                                          \
        const T *qq = q, *lo = lo_, *hi = hi_;                                                 \
        T *olo = olo_, *ohi = ohi_, *sc = sc_, *inv = inv_;                                    \
        V qmin = SET1(qq[0]), qmax = SET1(qq[1]), zero = SET1(0), big = SET1(TMAX);             \
        size_t c = 0;                                                                          \
        for (; c + L <= n; c += L) {                                                           \
            V l = LOADU(lo + c), h = LOADU(hi + c);                                            \
            V s_min = BLEND(big, DIV(qmin, l), CMP(MUL(qmin, l), zero, _CMP_GT_OQ));           \
            V s_max = BLEND(big, DIV(qmax, h), CMP(MUL(qmax, h), zero, _CMP_GT_OQ));           \
            V pick = CMP(s_min, s_max, _CMP_LT_OQ);                                            \
            V iv = DIV(BLEND(h, l, pick), BLEND(qmax, qmin, pick));                            \
            STOREU(sc + c, BLEND(s_max, s_min, pick));                                         \
            STOREU(inv + c, iv);                                                               \
            STOREU(ohi + c, BLEND(h, MUL(qmax, iv), pick));                                    \
            STOREU(olo + c, BLEND(MUL(qmin, iv), l, pick));                                    \
        }                                                                                      \
        for (; c < n; c++)                                                                     \
            scalar(qq[0], qq[1], lo[c], hi[c], olo + c, ohi + c, sc + c, inv + c);             \
    }
DEFINE_SCALES(scales_f, float, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
              _mm256_mul_ps, _mm256_div_ps, _mm256_cmp_ps, _mm256_blendv_ps, FLT_MAX, qdq_scale_f)
DEFINE_SCALES(scales_d, double, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
              _mm256_mul_pd, _mm256_div_pd, _mm256_cmp_pd, _mm256_blendv_pd, DBL_MAX, qdq_scale_d)

/* The accumulators' merge (kernels.h) a vector of channels a step: MIN(s, d) is s < d ? s : d,
 * MAX(s, d) s > d ? s : d, so a NaN in either leaves d's; the flags OR-ed as integers. The last
 * channels take the portable family's merge (entry `dt` of its table: 0 float32, 1 float64). */
#define DEFINE_MERGE(name, T, F, L, LOADU, STOREU, MIN, MAX, dt)                                \
    static void name(size_t C, void *dst, const void *src, size_t c0, size_t c1)               \
    {                                                                                          \
        qdq_acc_ptrs d = qdq_acc_at(dst, C, sizeof(T), 0);                                     \
        qdq_acc_ptrs s = qdq_acc_at((void *)src, C, sizeof(T), 0);                             \
        F *df[3] = { d.nz, d.pz, d.nn }, *sf[3] = { s.nz, s.pz, s.nn };                        \
        size_t c = c0;                                                                         \
        for (; c + L <= c1; c += L) {                                                          \
            T *dn = (T *)d.mn + c, *dx = (T *)d.mx + c;                                        \
            STOREU(dn, MIN(LOADU((const T *)s.mn + c), LOADU(dn)));                            \
            STOREU(dx, MAX(LOADU((const T *)s.mx + c), LOADU(dx)));                            \
            for (size_t k = 0; k < 3; k++) {                                                   \
                __m256i *q = (__m256i *)(df[k] + c);                                           \
                __m256i f = _mm256_loadu_si256((const __m256i *)(sf[k] + c));                  \
                _mm256_storeu_si256(q, _mm256_or_si256(_mm256_loadu_si256(q), f));             \
            }                                                                                  \
        }                                                                                      \
        if (c < c1)                                                                            \
            qdq_kernels_portable[dt].merge(C, dst, src, c, c1);                                \
    }
DEFINE_MERGE(merge_f, float, int32_t, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_min_ps,
             _mm256_max_ps, 0)
DEFINE_MERGE(merge_d, double, int64_t, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_min_pd,
             _mm256_max_pd, 1)

/* The ranges (kernels.h) of the float32-computing dtypes, eight channels a step. */
static size_t ranges_f(size_t C, const void *acc, void *params, size_t c0, size_t c1, int *exact)
{
    qdq_acc_ptrs a = qdq_acc_at((void *)acc, C, sizeof(float), 0);
    const float *mn = a.mn, *mx = a.mx;
    const int32_t *nz = a.nz, *pz = a.pz, *nn = a.nn;
    float *lo = qdq_block_at(params, C, sizeof(float), QDQ_PAR_IN_MIN, 0);
    float *hi = qdq_block_at(params, C, sizeof(float), QDQ_PAR_IN_MAX, 0);
    __m256i zero = _mm256_setzero_si256(), bad = zero, sign = _mm256_set1_epi32(INT32_MIN);
    size_t c = c0;
    for (; c + 8 <= c1; c += 8) {
        __m256 l = _mm256_loadu_ps(mn + c), h = _mm256_loadu_ps(mx + c);
        __m256i no_z = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(nz + c)), zero);
        __m256i no_p = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(pz + c)), zero);
        __m256i no_n = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(nn + c)), zero);
        __m256i zl = _mm256_castps_si256(_mm256_cmp_ps(l, _mm256_setzero_ps(), _CMP_EQ_OQ));
        __m256i zh = _mm256_castps_si256(_mm256_cmp_ps(h, _mm256_setzero_ps(), _CMP_EQ_OQ));
        /* bad: a NaN, or zeros of both signs and a zero extreme */
        __m256i both = _mm256_andnot_si256(_mm256_or_si256(no_z, no_p), _mm256_or_si256(zl, zh));
        bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_xor_si256(no_n, _mm256_set1_epi32(-1)),
                                                   both));
        __m256i zs = _mm256_andnot_si256(no_z, sign); /* the zero's bits: -0.0 if seen */
        __m256i lb = _mm256_blendv_epi8(_mm256_castps_si256(l), zs, zl);
        __m256i hb = _mm256_blendv_epi8(_mm256_castps_si256(h), zs, zh);
        _mm256_storeu_si256((__m256i *)(lo + c), lb), _mm256_storeu_si256((__m256i *)(hi + c), hb);
    }
    *exact = !_mm256_testz_si256(bad, bad);
    return c;
}

const qdq_kernels qdq_kernels_avx2[4] = {
    QDQ_FAMILY(f32, f, ranges_f), QDQ_FAMILY(f64, d, NULL), QDQ_FAMILY(f16, f, ranges_f),
    QDQ_FAMILY_NT(bf16, f, ranges_f, apply_run_noties_bf16),
};
#endif
