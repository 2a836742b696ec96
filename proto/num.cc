/*
 * Number text: fast_float to parse (correctly rounded), dragonbox to find the shortest
 * round-trip digits, and our own writer to lay them out.
 *
 * Output form (one rule for every type):
 *   fixed notation when the decimal exponent X of the first digit is in [-4, 16):
 *     0.1   1.0   -2.5   0.0001   1234567.0   (integers keep ".0" so JSON readers keep a float)
 *   otherwise scientific, with a plain exponent (no '+', no leading zeros):
 *     1e-5   1.5e-7   1e16   3.4028235e38
 *   zeros: 0.0 and -0.0; non-finite: NaN, Infinity, -Infinity (sign of a NaN is dropped).
 *
 * Input grammar: exactly JSON's number (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) plus
 * the tokens NaN, Infinity and -Infinity. No '+', no leading zeros ("01" is no number at all,
 * not "0" followed by "1"), no ".5" or "5.", no hex, no lowercase inf/nan. We scan the grammar
 * ourselves (fast_float alone is more lenient) and use fast_float's rounding step on the digits.
 *
 * Speed (about 35-50 ns a number each way): format() and parse() are flattened, because GCC
 * otherwise calls dragonbox's float routine out of line and returns its 12-byte result
 * through the stack with store-forwarding stalls (float printing took 75 ns instead of 45).
 */
#include <cstdint>
#include <cfenv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

/* Flattened into our functions, dragonbox's partly-filled result struct (its sign is set last)
 * draws false "maybe uninitialized" warnings in sanitizer builds. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <dragonbox/dragonbox.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <fast_float/fast_float.h>

extern "C" {
#include "proto.h"
#include "qdq_half.h"
}

namespace {

const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "num.cc builds digit strings in little-endian registers"
#endif

typedef unsigned __int128 u128;

/*
 * The 8 digits of v < 10^8 as ASCII bytes of a little-endian word (first digit in the lowest
 * byte), with SIMD-within-a-register arithmetic: no table, no loop, no memory round trip.
 * (Paul Khuong's method: split into 4-digit lanes, then 2-digit, then 1-digit lanes.)
 */
inline uint64_t digits8(uint32_t v)
{
    uint64_t merged = (uint64_t)(v / 10000) | ((uint64_t)(v % 10000) << 32);
    uint64_t top = ((merged * 10486ULL) >> 20) & ((0x7FULL << 32) | 0x7FULL); /* lanes / 100 */
    uint64_t bot = merged - 100ULL * top;
    uint64_t hundreds = (bot << 16) + top;
    uint64_t tens = (hundreds * 103ULL) >> 10; /* lanes / 10 */
    tens &= (0xFULL << 48) | (0xFULL << 32) | (0xFULL << 16) | 0xFULL;
    tens += (hundreds - 10ULL * tens) << 8;
    return tens | 0x3030303030303030ULL;
}

const uint64_t pow10_table[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL,
};

/* Decimal digits of v > 0, without a loop. */
inline int count_digits(uint64_t v)
{
    int t = (64 - __builtin_clzll(v)) * 1233 >> 12; /* about log10(2^bits) */
    return t + (v >= pow10_table[t]);
}

/* Writes a decimal exponent after 'e': "-5", "16", "308". */
inline char *write_exp(int x, char *o)
{
    if (x < 0) {
        *o++ = '-';
        x = -x;
    }
    if (x >= 100) {
        *o++ = (char)('0' + x / 100);
        x %= 100;
        std::memcpy(o, digit_pairs + 2 * x, 2);
        return o + 2;
    }
    if (x >= 10) {
        std::memcpy(o, digit_pairs + 2 * x, 2);
        return o + 2;
    }
    *o++ = (char)('0' + x);
    return o;
}

/* Stores 16 bytes from two general registers (a u128 memcpy makes GCC spill the pair and
 * reload it as one vector: a store-forwarding stall). */
inline void store16(char *o, u128 v)
{
    uint64_t lo = (uint64_t)v, hi = (uint64_t)(v >> 64);
    std::memcpy(o, &lo, 8);
    std::memcpy(o + 8, &hi, 8);
}

const u128 zeros16 = (u128)0x3030303030303030ULL << 64 | 0x3030303030303030ULL;

/* A significand's n digits as ASCII: digits 0..15 in d (first digit in the lowest byte), digit
 * 16 in last; '0' after the n digits. */
struct digit_field {
    u128 d;
    char last;
    int n;
};

/*
 * The digits are produced right-aligned in a fixed-width field while, independently, the digit
 * count is found; a shift then drops the leading zeros. Both chains run in parallel: the
 * obvious sequence (count, scale, split, convert) is a chain of dependent multiplies.
 */
inline digit_field digits_of(uint32_t sig) /* float: sig < 10^9 */
{
    int n = count_digits(sig);
    u128 f = (u128)('0' + sig / 100000000) | (u128)digits8(sig % 100000000) << 8;
    return { f >> (8 * (9 - n)) | zeros16 << (8 * n), '0', n };
}

inline digit_field digits_of(uint64_t sig) /* double: sig < 10^17 */
{
    int n = count_digits(sig);
    uint64_t top = sig / 100000000;
    u128 a = (u128)digits8((uint32_t)(top % 100000000)) |
             (u128)digits8((uint32_t)(sig % 100000000)) << 64; /* field bytes 1..16 */
    if (n == 17)
        return { (u128)('0' + top / 100000000) | a << 8, (char)(a >> 120), n };
    return { a >> (8 * (16 - n)) | (zeros16 << (8 * n - 8)) << 8, '0', n };
}

/*
 * Lays out digits f times 10^e10 in the form described at the top, straight into buf (which
 * holds PROTO_NUM_MAX bytes; the longest output is 17 digits, a sign, a point and "e-308",
 * 25 bytes). Everything is built in registers and written with fixed-size stores, never read
 * back (variable-length copies cost memcpy calls and store-forwarding stalls); bytes past the
 * returned length are scratch.
 */
inline size_t layout(digit_field f, int e10, bool neg, char *buf)
{
    int n = f.n;
    char *o = buf;
    *o = '-';
    o += neg;
    int x = n - 1 + e10; /* value = d[0].d[1..] * 10^x */
    if (x >= 0 && x < 16 && x >= n - 1) {
        /* An integer: its n digits, zeros up to x + 1 characters (d holds them), ".0". */
        store16(o, f.d);
        o += x + 1;
        std::memcpy(o, ".0", 2);
        return (size_t)(o + 2 - buf);
    }
    if (x < 0 && x >= -4) {
        std::memcpy(o, "0.000000", 8); /* "0." and -x - 1 zeros */
        o += 1 - x;
        store16(o, f.d);
        o[16] = f.last;
        return (size_t)(o + n - buf);
    }
    /* A point after digit x (fixed, 0 <= x < 16 here) or after digit 0 (scientific). */
    bool sci = x < 0 || x >= 16;
    int pos = sci ? 1 : x + 1; /* the point's byte */
    if (pos < 16) {
        u128 low = ((u128)1 << (8 * pos)) - 1;
        store16(o, (f.d & low) | (u128)'.' << (8 * pos) | ((f.d << 8) & ~((low << 8) | 0xff)));
        o[16] = (char)(f.d >> 120);
    } else {
        store16(o, f.d);
        o[16] = '.';
    }
    o[17] = f.last;
    if (!sci)
        return (size_t)(o + n + 1 - buf);
    o += n > 1 ? n + 1 : 1;
    *o++ = 'e';
    o = write_exp(x, o);
    return (size_t)(o - buf);
}

inline size_t special(bool nan, bool neg, char *buf)
{
    if (nan) {
        std::memcpy(buf, "NaN", 3);
        return 3;
    }
    if (neg) {
        std::memcpy(buf, "-Infinity", 9);
        return 9;
    }
    std::memcpy(buf, "Infinity", 8);
    return 8;
}

template <class Float, class UInt>
__attribute__((flatten)) inline size_t format(Float v, UInt bits, int exp_shift, UInt exp_mask, char *buf)
{
    bool neg = bits >> (sizeof(UInt) * 8 - 1);
    UInt mag = bits & (UInt)~((UInt)1 << (sizeof(UInt) * 8 - 1));
    if ((mag >> exp_shift) == exp_mask)
        return special(mag & (((UInt)1 << exp_shift) - 1), neg, buf);
    if (mag == 0) {
        if (neg) {
            std::memcpy(buf, "-0.0", 4);
            return 4;
        }
        std::memcpy(buf, "0.0", 3);
        return 3;
    }
    auto r = jkj::dragonbox::to_decimal(v);
    return layout(digits_of(r.significand), r.exponent, neg, buf);
}

inline bool is_digit(char c) { return (unsigned char)(c - '0') < 10; }

/* Accumulates a run of digits into w (8 at a time where 8 bytes remain). */
inline const char *digit_run(const char *q, const char *end, uint64_t *w)
{
    uint64_t v = *w;
    while (end - q >= 8 && fast_float::is_made_of_eight_digits_fast(q)) {
        v = v * 100000000 + fast_float::parse_eight_digits_unrolled(q);
        q += 8;
    }
    while (q != end && is_digit(*q)) {
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    *w = v;
    return q;
}

/*
 * One pass over the text: JSON's grammar, the significand (while it fits 19 digits) and the
 * decimal exponent; then fast_float's Eisel-Lemire step (compute_float) rounds it correctly.
 * The rare cases that step cannot settle (more than 19 digits, or a value within an ulp's
 * hair of a tie) go to fast_float's complete from_chars on the same, already checked, span.
 * Scanning first and calling from_chars always is simpler but reads every number twice.
 */
template <class T>
__attribute__((flatten)) inline size_t parse(const char *p, const char *end, T *out)
{
    const char *q = p;
    if (q == end)
        return 0;
    bool neg = *q == '-';
    q += neg;
    if (q == end)
        return 0;
    uint64_t w = 0;
    const char *digits = q;
    if (*q == '0') {
        q++;
        if (q != end && is_digit(*q))
            return 0; /* leading zero */
    } else if (is_digit(*q)) {
        q = digit_run(q, end, &w);
    } else if (*q == 'I' && end - q >= 8 && std::memcmp(q, "Infinity", 8) == 0) {
        *out = neg ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
        return (size_t)(q + 8 - p);
    } else if (*q == 'N' && !neg && end - q >= 3 && std::memcmp(q, "NaN", 3) == 0) {
        *out = std::numeric_limits<T>::quiet_NaN();
        return 3;
    } else {
        return 0;
    }
    int64_t ndigits = q - digits, exp10 = 0;
    if (q != end && *q == '.') {
        const char *frac = ++q;
        q = digit_run(q, end, &w);
        if (q == frac)
            return 0;
        exp10 = frac - q;
        ndigits += q - frac;
    }
    if (q != end && (*q == 'e' || *q == 'E')) {
        q++;
        bool eneg = false;
        if (q != end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q == end || !is_digit(*q))
            return 0;
        int64_t e = 0;
        do {
            if (e < 0x10000000) /* far beyond any finite value; keeps e from overflowing */
                e = e * 10 + (*q - '0');
            q++;
        } while (q != end && is_digit(*q));
        exp10 += eneg ? -e : e;
    }
    if (ndigits <= 19) { /* w is exact (leading zeros count, which only costs speed) */
        fast_float::adjusted_mantissa am =
            fast_float::compute_float<fast_float::binary_format<T>>(exp10, w);
        if (am.power2 >= 0) {
            fast_float::to_float(neg, am, *out);
            return (size_t)(q - p);
        }
    }
    T v;
    auto res = fast_float::from_chars(p, q, v);
    if (res.ptr != q || res.ec != std::errc())
        return 0; /* cannot happen on a span of JSON's grammar; refuse rather than guess */
    *out = v;
    return (size_t)(q - p);
}

} // namespace

extern "C" {

size_t proto_num_format_f32(float v, char *buf)
{
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return format<float, uint32_t>(v, u, 23, 0xff, buf);
}

size_t proto_num_format_f64(double v, char *buf)
{
    uint64_t u;
    std::memcpy(&u, &v, 8);
    return format<double, uint64_t>(v, u, 52, 0x7ff, buf);
}

size_t proto_num_parse_f32(const char *p, const char *end, float *out)
{
    return parse(p, end, out);
}

size_t proto_num_parse_f64(const char *p, const char *end, double *out)
{
    return parse(p, end, out);
}

/* The value of a 16-bit pattern, as double. */
static double widen16(bool f16, uint16_t h)
{
    return f16 ? (double)qdq_f16_to_f32(h) : (double)qdq_bf16_to_f32(h);
}

/* The same, but infinity counts as the next power of two (the rounding grid's next step). */
static double grid16(bool f16, uint16_t h)
{
    double v = widen16(f16, h);
    if (std::isinf(v))
        return std::copysign(f16 ? 65536.0 : std::ldexp(1.0, 128), v);
    return v;
}

/*
 * The number text[0, n), already read as the double d, rounded once to float16 or bfloat16.
 * Rounding d instead of the text is wrong only when d lands exactly on the midpoint of two
 * 16-bit neighbours (the text lies a hair above or below it): then glibc's strtod, which honours
 * the rounding mode, tells on which side the text lies.
 */
static uint16_t round_16(bool f16, double d, const char *text, size_t n)
{
    uint16_t h = f16 ? qdq_f64_to_f16(d) : qdq_f64_to_bf16(d);
    if (std::isnan(d) || std::isinf(d) || widen16(f16, h) == d)
        return h;
    /* The neighbours below and above d, by value. */
    bool neg = (h & 0x8000) != 0;
    bool h_above = widen16(f16, h) > d;
    uint16_t below = h_above ? (uint16_t)(neg ? h + 1 : h - 1) : h;
    uint16_t above = h_above ? h : (uint16_t)(neg ? h - 1 : h + 1);
    if ((grid16(f16, below) + grid16(f16, above)) / 2 != d)
        return h; /* not a tie: d and the text round alike */
    char small[64];
    char *buf = n < sizeof small ? small : (char *)malloc(n + 1);
    if (!buf)
        return h;
    memcpy(buf, text, n);
    buf[n] = '\0';
    int mode = fegetround();
    fesetround(FE_UPWARD);
    double up = strtod(buf, NULL);
    fesetround(FE_DOWNWARD);
    double down = strtod(buf, NULL);
    fesetround(mode);
    if (buf != small)
        free(buf);
    if (up > d)
        return above; /* the text is above the midpoint */
    if (down < d)
        return below;
    return h; /* exactly the midpoint: ties to even */
}

size_t proto_num_parse_dtype(qdq_dtype dtype, const char *p, const char *end, void *a, size_t i)
{
    switch (dtype) {
    case QDQ_FLOAT32:
        return parse(p, end, (float *)a + i);
    case QDQ_FLOAT64:
        return parse(p, end, (double *)a + i);
    case QDQ_FLOAT16:
    case QDQ_BFLOAT16: {
        double d;
        size_t n = parse(p, end, &d);
        if (n)
            ((uint16_t *)a)[i] = round_16(dtype == QDQ_FLOAT16, d, p, n);
        return n;
    }
    }
    return 0;
}

size_t proto_num_format_dtype(qdq_dtype dtype, const void *a, size_t i, char *buf)
{
    switch (dtype) {
    case QDQ_FLOAT32:
        return proto_num_format_f32(((const float *)a)[i], buf);
    case QDQ_FLOAT64:
        return proto_num_format_f64(((const double *)a)[i], buf);
    case QDQ_FLOAT16:
        return proto_num_format_f32(qdq_f16_to_f32(((const uint16_t *)a)[i]), buf);
    case QDQ_BFLOAT16:
        return proto_num_format_f32(qdq_bf16_to_f32(((const uint16_t *)a)[i]), buf);
    }
    return 0;
}

} // extern "C"
