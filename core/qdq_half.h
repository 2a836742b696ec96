/*
 * float16 and bfloat16 conversions, exact and identical to the F16C instructions (the op's
 * float16 and bfloat16 are docs/semantics.md's: widened exactly, computed in float32, narrowed
 * to nearest even).
 *
 * Widening is exact. Narrowing rounds to nearest, ties to even; a value too large becomes
 * infinity; a NaN stays a NaN (quiet, sign and top payload bits kept). Converting from double
 * rounds once, so qdq_f64_to_f16((double)f) == qdq_f32_to_f16(f).
 */
#ifndef QDQ_HALF_H
#define QDQ_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t qdq_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float qdq_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t qdq_f64_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/*
 * Rounds d to a binary format with mbits stored mantissa bits, exponent bias ebias and the
 * all-ones exponent emax (31 for float16, 255 for bfloat16). Returns the 16-bit pattern.
 */
static inline uint16_t qdq_round_to_small(double d, int mbits, int ebias, int emax)
{
    uint64_t u = qdq_f64_bits(d);
    uint16_t sign = (uint16_t)((u >> 48) & 0x8000);
    uint64_t a = u & 0x7fffffffffffffffULL;
    uint16_t inf = (uint16_t)(emax << mbits);
    if (a >= 0x7ff0000000000000ULL) {
        if (a == 0x7ff0000000000000ULL)
            return sign | inf;
        return sign | inf | (uint16_t)(1u << (mbits - 1)) |
               (uint16_t)((a >> (52 - mbits)) & ((1u << mbits) - 1));
    }
    int e = (int)(a >> 52);
    if (e == 0)
        return sign; /* double subnormals are far below the smallest subnormal here */
    int E = e - 1023;
    uint64_t m = (a & 0xfffffffffffffULL) | (1ULL << 52);
    int normal = E >= 1 - ebias;
    int ulp_exp = normal ? E - mbits : 1 - ebias - mbits;
    int drop = ulp_exp - (E - 52);
    if (drop > 63)
        return sign;
    uint64_t q = m >> drop, rem = m & ((1ULL << drop) - 1), half = 1ULL << (drop - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    if (!normal)
        return sign | (uint16_t)q; /* q == 1 << mbits is the smallest normal: still right */
    uint64_t r = ((uint64_t)(E + ebias - 1) << mbits) + q;
    if (r >= inf)
        return sign | inf;
    return sign | (uint16_t)r;
}

static inline uint16_t qdq_f64_to_f16(double d) { return qdq_round_to_small(d, 10, 15, 31); }
static inline uint16_t qdq_f32_to_f16(float f) { return qdq_f64_to_f16((double)f); }
static inline uint16_t qdq_f64_to_bf16(double d) { return qdq_round_to_small(d, 7, 127, 255); }

static inline float qdq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f)
        return qdq_f32_from_bits(sign | 0x7f800000 | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return qdq_f32_from_bits(sign | qdq_f32_bits(v));
    }
    return qdq_f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

static inline float qdq_bf16_to_f32(uint16_t h) { return qdq_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t qdq_f32_to_bf16(float f)
{
    uint32_t x = qdq_f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

#endif
