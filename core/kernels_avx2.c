/*
 * The AVX2 + F16C kernel family (built with -mavx2 -mf16c; used only when the CPU has both).
 * See avx2_template.h. float16 and bfloat16 are widened to float32 in registers and narrowed
 * with round-to-nearest-even, as the portable family does one element at a time.
 */
#include "kernels.h"

#ifdef QDQ_HAVE_AVX2
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

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

#define SUF f32
#define S float
#define S_NAN NAN
#define S_ISNAN(v) 0
#define LOADV(p) _mm256_loadu_ps(p)
#define STOREV(p, v) _mm256_storeu_ps(p, v)
#include "avx2_template.h"
#undef SUF
#undef S
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV

#define SUF f16
#define S uint16_t
#define S_NAN 0x7e00
#define S_ISNAN(v) (((v) & 0x7fff) > 0x7c00)
#define LOADV(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define STOREV(p, v) \
    _mm_storeu_si128((__m128i *)(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#include "avx2_template.h"
#undef SUF
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV

/* bfloat16 -> float32 is a shift; back is a rounding add (NaN kept quiet, as qdq_f32_to_bf16). */
static inline __m256 bf16_load(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline void bf16_store(uint16_t *p, __m256 v)
{
    __m256i x = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    r = _mm256_srli_epi32(r, 16);
    __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, qnan, isnan);
    /* Pack the eight 32-bit lanes (each < 65536) into 16-bit words, in order. */
    __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(lo, hi));
}

#define SUF bf16
#define S_NAN 0x7fc0
#define S_ISNAN(v) (((v) & 0x7fff) > 0x7f80)
#define LOADV(p) bf16_load(p)
#define STOREV(p, v) bf16_store(p, v)
#include "avx2_template.h"
#undef SUF
#undef S
#undef S_NAN
#undef S_ISNAN
#undef LOADV
#undef STOREV

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
#include "avx2_template.h"

#define FAMILY(suf) { reduce_run_##suf, reduce_lanes_##suf, reduce_rows_##suf, apply_run_##suf, \
                      apply_lanes_##suf }

const qdq_kernels qdq_kernels_avx2[4] = {
    FAMILY(f32), FAMILY(f64), FAMILY(f16), FAMILY(bf16),
};
#endif
