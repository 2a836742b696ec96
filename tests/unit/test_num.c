/*
 * proto number text (num.cc): the printed form, the strict JSON grammar, correct rounding
 * (against glibc's strtof/strtod, which round correctly), round trips of random bit patterns,
 * shortness against a brute-force "%.{p}g" search, every float16 and bfloat16 pattern, and the
 * time per number (informational).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "proto.h"
#include "qdq_half.h"
#include "rng.h"
#include "testutil.h"

#define ROUND_TRIPS (TU_SANITIZED ? 400000u : 10000000u)
#define SHORT_SAMPLE (TU_SANITIZED ? 10000u : 100000u)
#define RANDOM_TEXTS (TU_SANITIZED ? 50000u : 1000000u)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next64(void) { return rng_splitmix(&rng_state); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float f32(uint32_t u) { return qdq_f32_from_bits(u); }
static double f64(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

static const char *fmt32(float v)
{
    static char buf[PROTO_NUM_MAX + 1];
    buf[proto_num_format_f32(v, buf)] = 0;
    return buf;
}

static const char *fmt64(double v)
{
    static char buf[PROTO_NUM_MAX + 1];
    buf[proto_num_format_f64(v, buf)] = 0;
    return buf;
}

static void test_format_cases(void)
{
    static const struct { float v; const char *s; } c32[] = {
        { 0.1f, "0.1" }, { 1.0f, "1.0" }, { -1.0f, "-1.0" }, { 1e-7f, "1e-7" },
        { 0.0f, "0.0" }, { -0.0f, "-0.0" }, { 0.3f, "0.3" }, { 0.296875f, "0.296875" },
        { 100.0f, "100.0" }, { 1234.5f, "1234.5" }, { 0.0001f, "0.0001" }, { 0.00012f, "0.00012" },
        { 0.00001f, "1e-5" }, { 1.5e-5f, "1.5e-5" }, { 16777216.0f, "16777216.0" },
        { 1e16f, "1e16" }, { 1e15f, "1000000000000000.0" }, { FLT_MAX, "3.4028235e38" },
        { FLT_MIN, "1.1754944e-38" }, { 0x1p-149f, "1e-45" }, { 128.0f, "128.0" },
        { 0.0078125f, "0.0078125" }, { 0.9921875f, "0.9921875" }, { 3.0e10f, "30000000000.0" },
        { 1.0e-10f, "1e-10" }, { INFINITY, "Infinity" }, { -INFINITY, "-Infinity" },
        { NAN, "NaN" }, { -NAN, "NaN" }, { 123456.79f, "123456.79" },
    };
    for (size_t i = 0; i < sizeof c32 / sizeof c32[0]; i++)
        CHECK(!strcmp(fmt32(c32[i].v), c32[i].s), "f32 %a: got %s, want %s", c32[i].v,
              fmt32(c32[i].v), c32[i].s);

    static const struct { double v; const char *s; } c64[] = {
        { 0.1, "0.1" }, { 1.0, "1.0" }, { 1e-7, "1e-7" }, { -0.0, "-0.0" },
        { 0.30000000000000004, "0.30000000000000004" }, { 1e16, "1e16" },
        { 123456789012345680.0, "1.2345678901234568e17" }, { 9007199254740993.0, "9007199254740992.0" },
        { 1e15, "1000000000000000.0" }, { 999999999999999.9, "999999999999999.9" },
        { DBL_MAX, "1.7976931348623157e308" }, { DBL_MIN, "2.2250738585072014e-308" },
        { 0x1p-1074, "5e-324" }, { 1e-300, "1e-300" }, { 1e100, "1e100" },
        { -1.5e-5, "-1.5e-5" }, { 0.001, "0.001" }, { (double)0.1f, "0.10000000149011612" },
        { INFINITY, "Infinity" }, { -INFINITY, "-Infinity" }, { NAN, "NaN" },
    };
    for (size_t i = 0; i < sizeof c64 / sizeof c64[0]; i++)
        CHECK(!strcmp(fmt64(c64[i].v), c64[i].s), "f64 %a: got %s, want %s", c64[i].v,
              fmt64(c64[i].v), c64[i].s);

    /* Every output fits PROTO_NUM_MAX with room: the longest forms. */
    CHECK(strlen(fmt64(-2.2250738585072014e-308)) == 24, "longest double: %s", fmt64(-2.2250738585072014e-308));
    CHECK(strlen(fmt64(-0.00012345678901234567)) <= 24, "long fixed: %s", fmt64(-0.00012345678901234567));
}

/* Parses s (whole string) as f64 and f32; returns the characters consumed by the f64 parse. */
static size_t p64(const char *s, double *d) { return proto_num_parse_f64(s, s + strlen(s), d); }
static size_t p32(const char *s, float *f) { return proto_num_parse_f32(s, s + strlen(s), f); }
static size_t pdt(qdq_dtype dt, const char *s, uint16_t *h) { return proto_num_parse_dtype(dt, s, s + strlen(s), h, 0); }

static void test_grammar(void)
{
    static const char *const bad[] = {
        "", "-", "+1", "+0", "01", "-01", "00", "0123", ".5", "-.5", "5.", "5.e3", "1e", "1e+",
        "1E-", "e5", "inf", "-inf", "nan", "-NaN", "Infinit",
        "infinity", "INFINITY", "nan(1)", " 1", "\t1", "--1", "-+1", "- 1", "1e++5", "Inf",
        "+Infinity", "x1", "\"1\"", "true", "null", "\357\273\2771", "\xd9\xa1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double d = 42;
        float f = 42;
        CHECK(p64(bad[i], &d) == 0 && d == 42, "'%s' must not parse (f64)", bad[i]);
        CHECK(p32(bad[i], &f) == 0 && f == 42, "'%s' must not parse (f32)", bad[i]);
    }

    static const struct { const char *s; size_t n; double v; } good[] = {
        { "0", 1, 0.0 }, { "1", 1, 1.0 }, { "-1", 2, -1.0 }, { "1.5", 3, 1.5 },
        { "1e5", 3, 1e5 }, { "1E5", 3, 1e5 }, { "1e+5", 4, 1e5 }, { "1e-5", 4, 1e-5 },
        { "1.5x", 3, 1.5 }, { "0.5]", 3, 0.5 }, { "2,3", 1, 2.0 }, { "7 ", 1, 7.0 },
        { "0e0", 3, 0.0 }, { "0.0e-0", 6, 0.0 }, { "1e007", 5, 1e7 }, { "10", 2, 10.0 },
        { "123.456e-2", 10, 1.23456 }, { "1.0}", 3, 1.0 }, { "0x10", 1, 0.0 }, { "0X1p3", 1, 0.0 }, { "Infinity", 8, INFINITY },
        { "-Infinity", 9, -INFINITY }, { "Infinity]", 8, INFINITY }, { "1e400", 5, INFINITY },
        { "-1e400", 6, -INFINITY }, { "1e-400", 6, 0.0 }, { "1e99999999999999999999", 22, INFINITY },
        { "1e-99999999999999999999", 23, 0.0 }, { "0.1", 3, 0.1 },
        { "4.9406564584124654e-324", 23, 0x1p-1074 }, { "2.4703282292062328e-324", 23, 0x1p-1074 },
        { "2.4703282292062327e-324", 23, 0.0 }, { "1.7976931348623158e308", 22, DBL_MAX },
        { "1.7976931348623159e308", 22, INFINITY }, { "9007199254740993", 16, 9007199254740992.0 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double d = 42;
        size_t n = p64(good[i].s, &d);
        CHECK(n == good[i].n && tu_same_f64(d, good[i].v), "'%s': consumed %zu (want %zu), %a (want %a)",
              good[i].s, n, good[i].n, d, good[i].v);
    }
    double d;
    float f;
    CHECK(p64("-0", &d) == 2 && signbit(d) && d == 0, "-0 is -0.0");
    CHECK(p32("-0.0e5", &f) == 6 && signbit(f) && f == 0, "-0.0e5 is -0.0f");
    CHECK(p64("NaN", &d) == 3 && isnan(d), "NaN");
    CHECK(p32("NaN,", &f) == 3 && isnan(f), "NaN (f32)");
    CHECK(p32("1e39", &f) == 4 && isinf(f) && f > 0, "1e39 overflows float32 to Infinity");
    CHECK(p32("3.4028235e38", &f) == 12 && f == FLT_MAX, "FLT_MAX");
    /* FLT_MAX plus half an ulp ties to even: Infinity; a hair less stays FLT_MAX. */
    CHECK(p32("340282356779733661637539395458142568448", &f) && isinf(f), "FLT_MAX + ulp/2");
    CHECK(p32("340282356779733661637539395458142568447", &f) && f == FLT_MAX, "FLT_MAX + ulp/2 - 1");
    CHECK(p32("1e-46", &f) == 5 && f == 0 && !signbit(f), "1e-46 underflows to 0");
    CHECK(p32("1e-45", &f) == 5 && f == 0x1p-149f, "1e-45 is the smallest subnormal");
    /* Correct rounding for float32 straight from the text (never via double). This decimal
     * lies just above a float32 midpoint but its nearest double is the midpoint itself, so
     * double-then-float rounds to even (down) where the right answer is up. */
    const char *tricky = "1.00000005960464477539062500000000000001";
    CHECK(p32(tricky, &f) == strlen(tricky) && f == 0x1.000002p0f, "float32 rounds once: %a", f);
    CHECK((float)strtod(tricky, NULL) == 1.0f, "the double route would round twice");
    /* A number ends where JSON's grammar ends. */
    const char *s = "12.5e3,";
    CHECK(proto_num_parse_f64(s, s + 4, &d) == 4 && d == 12.5, "end bound respected");
    CHECK(proto_num_parse_f64(s, s + 5, &d) == 0, "'12.5e' (cut at end) is no number");
    CHECK(proto_num_parse_f64(s, s, &d) == 0, "empty span");

    /* dtype variants: float16 and bfloat16 round once from the decimal's double. */
    uint16_t h;
    CHECK(pdt(QDQ_FLOAT16, "65504", &h) == 5 && h == 0x7bff, "f16 max");
    CHECK(pdt(QDQ_FLOAT16, "65520", &h) == 5 && h == 0x7c00, "f16 overflow");
    CHECK(pdt(QDQ_FLOAT16, "-0", &h) == 2 && h == 0x8000, "f16 -0");
    CHECK(pdt(QDQ_FLOAT16, "1e-8", &h) == 4 && h == 0, "f16 underflow");
    CHECK(pdt(QDQ_FLOAT16, "0.1", &h) == 3 && h == 0x2e66, "f16 0.1: %04x", h);
    CHECK(pdt(QDQ_BFLOAT16, "0.1", &h) == 3 && h == 0x3dcd, "bf16 0.1: %04x", h);
    CHECK(pdt(QDQ_BFLOAT16, "NaN", &h) == 3 && (h & 0x7fff) > 0x7f80, "bf16 NaN");
    CHECK(pdt(QDQ_BFLOAT16, "x", &h) == 0, "bf16 garbage");
    CHECK(pdt((qdq_dtype)9, "1", &h) == 0, "unknown dtype");
    char buf[PROTO_NUM_MAX];
    CHECK(proto_num_format_dtype((qdq_dtype)9, &h, 0, buf) == 0, "unknown dtype prints nothing");

    /* A million digits: correctly rounded, nothing read past the end. */
    size_t big = 1000000;
    char *longnum = malloc(big + 8);
    memcpy(longnum, "0.", 2);
    for (size_t i = 2; i < big; i++)
        longnum[i] = '3';
    CHECK(proto_num_parse_f64(longnum, longnum + big, &d) == big && d == 1.0 / 3, "1e6 digits of 1/3: %a", d);
    CHECK(proto_num_parse_f32(longnum, longnum + big, &f) == big && f == 1.0f / 3, "1e6 digits (f32)");
    longnum[0] = '1';
    longnum[1] = '0';
    CHECK(proto_num_parse_f64(longnum, longnum + big, &d) == big && isinf(d), "1e6-digit integer overflows");
    free(longnum);
}

/* Random decimal strings against glibc (correctly rounded): lengths and exponents of all sizes. */
static void test_random_texts(void)
{
    char s[80];
    unsigned bad32 = 0, bad64 = 0;
    for (unsigned k = 0; k < RANDOM_TEXTS; k++) {
        uint64_t r = next64();
        int nd = 1 + (int)(r % 24), pos = 0;
        if (r >> 63)
            s[pos++] = '-';
        int point = (int)((r >> 8) % (unsigned)(nd + 1));
        for (int i = 0; i < nd; i++) {
            if (i == point && i > 0)
                s[pos++] = '.';
            uint64_t q = next64();
            s[pos++] = (char)('0' + (i == 0 ? 1 + q % 9 : q % 10));
        }
        int e = (int)((r >> 16) % 700) - 350;
        if ((r >> 32) & 1)
            pos += sprintf(s + pos, "e%d", (r >> 33) & 1 ? e : e / 10);
        s[pos] = 0;
        double d, dref = strtod(s, NULL);
        float f, fref = strtof(s, NULL);
        if (proto_num_parse_f64(s, s + pos, &d) != (size_t)pos || !tu_same_f64(d, dref))
            if (bad64++ < 5)
                fprintf(stderr, "f64 '%s': %a, strtod %a\n", s, d, dref);
        if (proto_num_parse_f32(s, s + pos, &f) != (size_t)pos || !tu_same_f32(f, fref))
            if (bad32++ < 5)
                fprintf(stderr, "f32 '%s': %a, strtof %a\n", s, f, fref);
    }
    CHECK(bad64 == 0, "%u of %u random texts parse differently from strtod", bad64, RANDOM_TEXTS);
    CHECK(bad32 == 0, "%u of %u random texts parse differently from strtof", bad32, RANDOM_TEXTS);
}

static void test_round_trip(void)
{
    char buf[PROTO_NUM_MAX];
    unsigned bad = 0, nan_bad = 0;
    for (unsigned k = 0; k < ROUND_TRIPS; k++) {
        float v = f32((uint32_t)next64()), w;
        size_t n = proto_num_format_f32(v, buf);
        if (proto_num_parse_f32(buf, buf + n, &w) != n ||
            (isnan(v) ? !isnan(w) : qdq_f32_bits(v) != qdq_f32_bits(w)))
            if (bad++ < 5)
                fprintf(stderr, "f32 %a -> '%.*s' -> %a\n", v, (int)n, buf, w);
        if (isnan(v) && (n != 3 || memcmp(buf, "NaN", 3)))
            nan_bad++;
    }
    CHECK(bad == 0, "%u of %u random float32 patterns do not round-trip", bad, ROUND_TRIPS);
    CHECK(nan_bad == 0, "NaN prints NaN");
    bad = 0;
    for (unsigned k = 0; k < ROUND_TRIPS; k++) {
        double v = f64(next64()), w;
        size_t n = proto_num_format_f64(v, buf);
        if (proto_num_parse_f64(buf, buf + n, &w) != n ||
            (isnan(v) ? !isnan(w) : qdq_f64_bits(v) != qdq_f64_bits(w)))
            if (bad++ < 5)
                fprintf(stderr, "f64 %a -> '%.*s' -> %a\n", v, (int)n, buf, w);
    }
    CHECK(bad == 0, "%u of %u random float64 patterns do not round-trip", bad, ROUND_TRIPS);
    /* Values near the edges of every binade and the fixed/scientific switch. */
    bad = 0;
    for (int e = -1074; e <= 1023; e++) {
        double v = ldexp(1.0, e), w;
        for (int j = 0; j < 2; j++)
            v = nextafter(v, 0);
        for (int j = 0; j < 5; j++, v = nextafter(v, INFINITY)) {
            size_t n = proto_num_format_f64(v, buf);
            if (proto_num_parse_f64(buf, buf + n, &w) != n || w != v)
                bad++;
        }
    }
    for (int e = -45; e <= 38; e++) {
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        float v = strtof(s, NULL), w;
        for (int j = 0; j < 2; j++)
            v = nextafterf(v, 0);
        for (int j = 0; j < 5; j++, v = nextafterf(v, INFINITY)) {
            size_t n = proto_num_format_f32(v, buf);
            if (proto_num_parse_f32(buf, buf + n, &w) != n || w != v)
                bad++;
        }
    }
    CHECK(bad == 0, "%u binade / power-of-ten edge values do not round-trip", bad);
}

/* Significant digits of a printed number ("100.0" has 1, "0.0012" has 2, "1.5e-7" has 2). */
static int sig_digits(const char *s, size_t n)
{
    char d[40];
    int k = 0;
    for (size_t i = 0; i < n && s[i] != 'e'; i++)
        if (s[i] >= '0' && s[i] <= '9')
            d[k++] = s[i];
    int a = 0;
    while (a < k && d[a] == '0')
        a++;
    while (k > a && d[k - 1] == '0')
        k--;
    return k - a;
}

/*
 * Shortness: the fewest digits p for which "%.{p}g" reads back. Ours must never be longer.
 * It may be one digit shorter only at a power of two, where the interval below the value is
 * half as wide as above and the nearest p-digit decimal can miss while another one fits.
 */
static void test_shortest(void)
{
    char buf[PROTO_NUM_MAX], ref[64];
    unsigned longer = 0, shorter_ok = 0, shorter_bad = 0;
    for (unsigned k = 0; k < SHORT_SAMPLE; k++) {
        uint32_t u = (uint32_t)next64();
        float v = f32(u);
        if (!isfinite(v) || v == 0)
            continue;
        if (k % 16 == 0)
            v = f32(u & 0xff800000u); /* a power of two now and then */
        int p;
        for (p = 1; p < 9; p++) {
            snprintf(ref, sizeof ref, "%.*g", p, v);
            if (strtof(ref, NULL) == v)
                break;
        }
        size_t n = proto_num_format_f32(v, buf);
        int ours = sig_digits(buf, n);
        if (ours > p && longer++ < 5)
            fprintf(stderr, "f32 %a: '%.*s' has %d digits, %%.%dg reads back\n", v, (int)n, buf, ours, p);
        if (ours < p)
            (qdq_f32_bits(v) & 0x7fffff) == 0 ? shorter_ok++ : shorter_bad++;
    }
    for (unsigned k = 0; k < SHORT_SAMPLE; k++) {
        uint64_t u = next64();
        double v = f64(u);
        if (!isfinite(v) || v == 0)
            continue;
        if (k % 16 == 0)
            v = f64(u & 0xfff0000000000000ULL);
        int p;
        for (p = 1; p < 17; p++) {
            snprintf(ref, sizeof ref, "%.*g", p, v);
            if (strtod(ref, NULL) == v)
                break;
        }
        size_t n = proto_num_format_f64(v, buf);
        int ours = sig_digits(buf, n);
        if (ours > p && longer++ < 10)
            fprintf(stderr, "f64 %a: '%.*s' has %d digits, %%.%dg reads back\n", v, (int)n, buf, ours, p);
        if (ours < p)
            (qdq_f64_bits(v) & 0xfffffffffffffULL) == 0 ? shorter_ok++ : shorter_bad++;
    }
    CHECK(longer == 0, "%u printed numbers are longer than the shortest %%g that reads back", longer);
    CHECK(shorter_bad == 0, "%u shorter than %%g outside powers of two", shorter_bad);
    printf("shortness: %u samples each; %u powers of two print shorter than %%g's best\n",
           SHORT_SAMPLE, shorter_ok);
}

/* Every float16 and bfloat16 pattern prints as its float32 and reads back to the same bits. */
static void test_half_exhaustive(void)
{
    static const qdq_dtype dts[] = { QDQ_FLOAT16, QDQ_BFLOAT16 };
    char buf[PROTO_NUM_MAX], ref[PROTO_NUM_MAX];
    for (int t = 0; t < 2; t++) {
        unsigned bad = 0, text_bad = 0;
        for (uint32_t u = 0; u < 65536; u++) {
            uint16_t h = (uint16_t)u, back = 0;
            float wide = t == 0 ? qdq_f16_to_f32(h) : qdq_bf16_to_f32(h);
            size_t n = proto_num_format_dtype(dts[t], &h, 0, buf);
            size_t m = proto_num_format_f32(wide, ref);
            if (n != m || memcmp(buf, ref, n))
                text_bad++;
            size_t c = proto_num_parse_dtype(dts[t], buf, buf + n, &back, 0);
            if (c != n || !tu_same(dts[t], &h, &back, 0))
                if (bad++ < 5)
                    fprintf(stderr, "%s %04x -> '%.*s' -> %04x\n", qdq_dtype_name(dts[t]), h, (int)n, buf, back);
        }
        CHECK(bad == 0, "%s: %u of 65536 patterns do not round-trip", qdq_dtype_name(dts[t]), bad);
        CHECK(text_bad == 0, "%s: %u patterns print differently from their float32", qdq_dtype_name(dts[t]), text_bad);
    }
}

/* Informational: time per number each way, float32 and float64 (random finite values). */
static void test_speed(void)
{
    unsigned n = TU_SANITIZED ? 100000 : 2000000;
    char *text = malloc((size_t)n * (PROTO_NUM_MAX + 1));
    size_t *len = malloc(n * sizeof *len);
    memset(text, ' ', (size_t)n * (PROTO_NUM_MAX + 1)); /* page faults are not number text */
    memset(len, 0, n * sizeof *len);
    for (int t = 0; t < 2; t++) {
        double sink = 0, t0 = now();
        size_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            uint64_t r = next64();
            size_t k;
            if (t == 0) {
                float v = f32(((uint32_t)r & 0x807fffffu) | (uint32_t)(96 + r % 64) << 23);
                k = proto_num_format_f32(v, text + off);
            } else {
                double v = f64((r & 0x800fffffffffffffULL) | (uint64_t)(960 + (r >> 52) % 128) << 52);
                k = proto_num_format_f64(v, text + off);
            }
            len[i] = k;
            text[off + k] = ',';
            off += k + 1;
        }
        double t1 = now();
        off = 0;
        size_t ok = 0;
        for (unsigned i = 0; i < n; i++) {
            size_t k;
            if (t == 0) {
                float v;
                k = proto_num_parse_f32(text + off, text + off + len[i] + 1, &v);
                sink += v;
            } else {
                double v;
                k = proto_num_parse_f64(text + off, text + off + len[i] + 1, &v);
                sink += v;
            }
            ok += k == len[i];
            off += len[i] + 1;
        }
        double t2 = now();
        CHECK(ok == n, "speed run parsed all %u numbers back (%zu)", n, ok);
        printf("%s: print %.1f ns/number, parse %.1f ns/number (%.1f bytes/number)%s\n",
               t ? "float64" : "float32", (t1 - t0) * 1e9 / n, (t2 - t1) * 1e9 / n,
               (double)off / n, sink == 12345 ? " " : "");
    }
    free(text);
    free(len);
}

/*
 * float16/bfloat16 round once from the text: a decimal a hair off the midpoint of two 16-bit
 * neighbours reads as exactly that midpoint in double, and rounding the double would tie.
 */
static void test_round_once_16(void)
{
    static const struct { qdq_dtype dt; const char *text; uint16_t want; } cases[] = {
        { QDQ_FLOAT16, "1.00048828125000000001", 0x3c01 },  /* above the 1/1+2^-10 midpoint */
        { QDQ_FLOAT16, "1.00048828124999999999", 0x3c00 },  /* below it */
        { QDQ_FLOAT16, "1.00048828125", 0x3c00 },           /* on it: ties to even */
        { QDQ_FLOAT16, "-1.00048828125000000001", 0xbc01 },
        { QDQ_FLOAT16, "65520.0000000000000001", 0x7c00 },  /* above the 65504/inf midpoint */
        { QDQ_FLOAT16, "65519.9999999999999999", 0x7bff },
        { QDQ_BFLOAT16, "1.00390625000000000001", 0x3f81 },
        { QDQ_BFLOAT16, "1.00390624999999999999", 0x3f80 },
        { QDQ_BFLOAT16, "1.01171875", 0x3f82 },              /* on a midpoint: to even */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = 0;
        const char *t = cases[i].text;
        size_t n = proto_num_parse_dtype(cases[i].dt, t, t + strlen(t), &got, 0);
        CHECK(n == strlen(t) && got == cases[i].want, "%s as %s: got 0x%04x, want 0x%04x", t,
              qdq_dtype_name(cases[i].dt), got, cases[i].want);
    }
}

int main(void)
{
    test_round_once_16();
    test_format_cases();
    test_grammar();
    test_random_texts();
    test_round_trip();
    test_shortest();
    test_half_exhaustive();
    test_speed();
    return check_done();
}
