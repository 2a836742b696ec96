/*
 * The float16 and bfloat16 conversions of core/qdq_half.h.
 *
 *   widening:  all 65536 patterns of each format, against the format's definition (exact values
 *              built with ldexp) and, for float16, against F16C's _mm_cvtph_ps;
 *   narrowing: float32 patterns (every pattern of the binades where rounding has its edges, and
 *              a sample of the whole space that meets every value of the low bits: 386 million
 *              patterns, 134 million with sanitizers; all 2^32 would take ~18 s) against F16C's
 *              _mm_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT) for float16 and against an independent
 *              round-to-nearest-even for bfloat16; a random sample of both against a careful
 *              reference that rounds once from the exact value;
 *   from double: qdq_f64_to_f16 / qdq_f64_to_bf16 on random doubles, halfway cases and values
 *              that would round differently if rounded twice.
 * NaN matches NaN (any payload); everything else matches bit for bit, -0.0 differs from 0.0.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "check.h"
#include "qdq_half.h"
#include "rng.h"
#include "testutil.h"

/* ---- random numbers (tests/lib/rng.h: fixed across platforms) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) { return rng_splitmix(&rng_state); }

static double f64_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- the formats, from their definitions ---- */

/* Exact value of a float16 pattern (NaN for NaN patterns). */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Exact value of a bfloat16 pattern (NaN for NaN patterns). */
static double bf16_value(uint16_t b)
{
    int e = (b >> 7) & 255, m = b & 127;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
    return (b & 0x8000) ? -v : v;
}

static int is_nan16(uint16_t h, int mbits) /* NaN pattern of a format with mbits mantissa bits */
{
    uint16_t inf = (uint16_t)(0x7fff & ~((1u << mbits) - 1));
    return (h & 0x7fff) > inf;
}

/*
 * Magnitudes of the finite non-negative patterns 0..maxfin of a format, in increasing order,
 * plus one more entry: the power of two where the format overflows (2^16 or 2^128), whose
 * pattern maxfin + 1 is infinity.
 */
typedef struct fmt_table {
    double *v;
    uint16_t maxfin;
    int mbits;
} fmt_table;

static fmt_table table_f16, table_bf16;

static void table_init(void)
{
    table_f16.maxfin = 0x7bff, table_f16.mbits = 10;
    table_f16.v = malloc((0x7c00 + 1) * sizeof(double));
    for (unsigned h = 0; h <= 0x7bff; h++)
        table_f16.v[h] = f16_value((uint16_t)h);
    table_f16.v[0x7c00] = 65536.0;
    table_bf16.maxfin = 0x7f7f, table_bf16.mbits = 7;
    table_bf16.v = malloc((0x7f80 + 1) * sizeof(double));
    for (unsigned b = 0; b <= 0x7f7f; b++)
        table_bf16.v[b] = bf16_value((uint16_t)b);
    table_bf16.v[0x7f80] = ldexp(1, 128);
}

/*
 * d rounded once to the format: the two neighbours lo <= |d| < hi are found in the table and
 * |d| is compared with their midpoint (exact in double: the formats have at most 11 significant
 * bits); a tie goes to the even pattern. Overflow rounds to the pattern after maxfin: infinity.
 * A NaN gives the canonical quiet NaN (only "is NaN" is compared).
 */
static uint16_t ref_round(const fmt_table *t, double d)
{
    if (isnan(d))
        return (uint16_t)(0x7fff & ~((1u << (t->mbits - 1)) - 1));
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    double a = fabs(d);
    unsigned top = t->maxfin + 1u;
    if (a >= t->v[top])
        return sign | (uint16_t)top;
    unsigned lo = 0, hi = top; /* invariant: v[lo] <= a < v[hi] */
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (t->v[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    double m = (t->v[lo] + t->v[hi]) / 2;
    unsigned r = a < m ? lo : a > m ? hi : (lo & 1) ? hi : lo;
    return sign | (uint16_t)r;
}

/* Same pattern, or both NaN. */
static int same16(uint16_t a, uint16_t b, int mbits)
{
    return a == b || (is_nan16(a, mbits) && is_nan16(b, mbits));
}

static int same32(uint32_t a, uint32_t b)
{
    int na = (a & 0x7fffffff) > 0x7f800000, nb = (b & 0x7fffffff) > 0x7f800000;
    return a == b || (na && nb);
}

/* ---- F16C (x86-64 only, run only when the CPU has it) ---- */

#if defined(__x86_64__)
#define HAVE_F16C_CODE 1

__attribute__((target("f16c,avx2"))) static float hw_f16_to_f32(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16((short)h)));
}

__attribute__((target("f16c,avx2"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set1_ps(f), _MM_FROUND_TO_NEAREST_INT), 0);
}

/* Eight consecutive float32 patterns from u, narrowed by the hardware. */
__attribute__((target("f16c,avx2"))) static void hw_narrow8(uint32_t u, uint16_t out[8])
{
    __m256i v = _mm256_add_epi32(_mm256_set1_epi32((int)u), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(v), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)out, h);
}

static int have_f16c(void)
{
    __builtin_cpu_init();
#if defined(__clang__) /* clang 14 has no "f16c" for __builtin_cpu_supports: ask CPUID */
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
#endif
}
#else
#define HAVE_F16C_CODE 0
static int have_f16c(void) { return 0; }
#endif

/* ---- widening: every pattern ---- */

static void test_widen(int f16c)
{
    int bad_def = 0, bad_hw = 0, bad_bf = 0, nan_payload = 0;
    for (unsigned p = 0; p < 65536; p++) {
        uint16_t h = (uint16_t)p;
        float got = qdq_f16_to_f32(h);
        double want = f16_value(h);
        int ok = isnan(want) ? isnan(got) && !!signbit(got) == !!(h & 0x8000)
                             : qdq_f64_bits((double)got) == qdq_f64_bits(want);
        if (!ok && bad_def++ < 5)
            CHECK(0, "qdq_f16_to_f32(0x%04x) = %a, definition gives %a", p, got, want);
#if HAVE_F16C_CODE
        if (f16c) {
            float hw = hw_f16_to_f32(h);
            if (!same32(qdq_f32_bits(got), qdq_f32_bits(hw)) && bad_hw++ < 5)
                CHECK(0, "qdq_f16_to_f32(0x%04x) = 0x%08x, _mm_cvtph_ps gives 0x%08x", p,
                      qdq_f32_bits(got), qdq_f32_bits(hw));
            if (isnan(hw) && qdq_f32_bits(got) != qdq_f32_bits(hw))
                nan_payload++;
        }
#else
        (void)f16c;
#endif
        float gb = qdq_bf16_to_f32(h);
        double wb = bf16_value(h);
        ok = isnan(wb) ? isnan(gb) && !!signbit(gb) == !!(h & 0x8000)
                       : qdq_f64_bits((double)gb) == qdq_f64_bits(wb);
        if (!ok && bad_bf++ < 5)
            CHECK(0, "qdq_bf16_to_f32(0x%04x) = %a, definition gives %a", p, gb, wb);
    }
    CHECK(bad_def == 0, "float16 widening: %d of 65536 patterns differ from the definition", bad_def);
    CHECK(bad_hw == 0, "float16 widening: %d of 65536 patterns differ from F16C", bad_hw);
    CHECK(bad_bf == 0, "bfloat16 widening: %d of 65536 patterns differ from the definition", bad_bf);
    if (nan_payload)
        printf("note: %d float16 NaN patterns widen to a NaN with other payload bits than F16C\n",
               nan_payload);
    printf("widening: 65536 float16 (%s) and 65536 bfloat16 patterns\n",
           f16c ? "definition and F16C" : "definition");
}

/* ---- narrowing float32: every pattern (or a sample) on two threads ---- */

/* bfloat16 narrowing by its definition: the two neighbours of x by truncation of the low 16
 * bits, compared through their midpoint in double. */
static uint16_t ref_f32_to_bf16(uint32_t x)
{
    if ((x & 0x7fffffff) > 0x7f800000)
        return 0x7fc0;
    uint32_t t = x >> 16;
    if ((x & 0xffff) == 0)
        return (uint16_t)t;
    double a = fabs((double)qdq_f32_from_bits(x));
    uint32_t mag = t & 0x7fff;
    double lo = qdq_f32_from_bits(mag << 16);
    double hi = mag + 1 == 0x7f80 ? 0x1p128 : qdq_f32_from_bits((mag + 1) << 16);
    double m = (lo + hi) / 2;
    uint32_t r = a < m ? mag : a > m ? mag + 1 : (mag & 1) ? mag + 1 : mag;
    return (uint16_t)((t & 0x8000) | r);
}

/*
 * The float32 patterns checked: every pattern of the binades where float16 rounding has its
 * edges (the smallest subnormal's tie, the subnormal/normal boundary, [1, 2), the overflow
 * threshold) and of bfloat16's largest binade, both signs; and a sample of the whole space:
 * one block of 8 consecutive patterns in every window of WINDOW, at an offset that rotates
 * through the window so that every value of the low bits is met.
 */
typedef struct segment {
    uint64_t begin, end;
    int all; /* 1: every pattern; 0: the rotating sample */
} segment;

#define WINDOW (TU_SANITIZED ? 2048u : 128u)

static const segment segments[] = {
    { 0x33000000u, 0x33800000u, 1 }, /* [2^-25, 2^-24) */
    { 0x38800000u, 0x39000000u, 1 }, /* [2^-14, 2^-13) */
    { 0x38000000u, 0x38800000u, 1 }, /* [2^-15, 2^-14) */
    { 0x3f800000u, 0x40000000u, 1 }, /* [1, 2) */
    { 0x47000000u, 0x47800000u, 1 }, /* [2^15, 2^16) */
    { 0x7f000000u, 0x7f800000u, 1 }, /* [2^127, 2^128) */
    { 0x7f800000u, 0x80000000u, 1 }, /* infinity and NaN */
    { 0x0u, 0x100000000u, 0 },
};
#define NSEG (sizeof segments / sizeof segments[0])

typedef struct narrow_job {
    int part, parts, f16c;
    uint64_t bad_f16, bad_bf16, nan_payload, checked;
    uint32_t first_f16, first_bf16;
    uint16_t got_f16, want_f16, got_bf16, want_bf16;
} narrow_job;

/* Checks the 8 patterns u .. u + 7 (u a multiple of 8). */
static void narrow_block(narrow_job *j, uint32_t u)
{
    uint16_t hw[8] = { 0 };
#if HAVE_F16C_CODE
    if (j->f16c)
        hw_narrow8(u, hw);
#endif
    for (uint32_t k = 0; k < 8; k++) {
        uint32_t x = u + k;
        float f = qdq_f32_from_bits(x);
        uint16_t got = qdq_f32_to_f16(f);
        if (j->f16c && !same16(got, hw[k], 10)) {
            if (!j->bad_f16++)
                j->first_f16 = x, j->got_f16 = got, j->want_f16 = hw[k];
        } else if (j->f16c && got != hw[k]) {
            j->nan_payload++;
        }
        uint16_t gb = qdq_f32_to_bf16(f), wb = ref_f32_to_bf16(x);
        if (!same16(gb, wb, 7) && !j->bad_bf16++)
            j->first_bf16 = x, j->got_bf16 = gb, j->want_bf16 = wb;
    }
    j->checked += 8;
}

static void *narrow_worker(void *arg)
{
    narrow_job *j = arg;
    for (size_t s = 0; s < NSEG; s++) {
        const segment *g = &segments[s];
        uint64_t span = g->end - g->begin, step = g->all ? 8 : WINDOW;
        uint64_t per = (span / step + (uint64_t)j->parts - 1) / (uint64_t)j->parts * step;
        uint64_t b = g->begin + per * (uint64_t)j->part, e = b + per < g->end ? b + per : g->end;
        for (; b < e; b += step) {
            uint32_t off = g->all ? 0 : (uint32_t)((b / WINDOW * 5) % (WINDOW / 8)) * 8;
            narrow_block(j, (uint32_t)(b + off));
            if (g->all) /* the same binade, negative */
                narrow_block(j, (uint32_t)b ^ 0x80000000u);
        }
    }
    return NULL;
}

static void test_narrow_f32(int f16c)
{
    narrow_job jobs[2];
    pthread_t th[2];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].part = i, jobs[i].parts = 2, jobs[i].f16c = f16c;
        pthread_create(&th[i], NULL, narrow_worker, &jobs[i]);
    }
    uint64_t bad_f16 = 0, bad_bf16 = 0, payload = 0, checked = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        narrow_job *j = &jobs[i];
        CHECK(j->bad_f16 == 0, "qdq_f32_to_f16(0x%08x = %a) = 0x%04x, _mm_cvtps_ph gives 0x%04x",
              j->first_f16, qdq_f32_from_bits(j->first_f16), j->got_f16, j->want_f16);
        CHECK(j->bad_bf16 == 0, "qdq_f32_to_bf16(0x%08x = %a) = 0x%04x, want 0x%04x",
              j->first_bf16, qdq_f32_from_bits(j->first_bf16), j->got_bf16, j->want_bf16);
        bad_f16 += j->bad_f16, bad_bf16 += j->bad_bf16, payload += j->nan_payload;
        checked += j->checked;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    CHECK(checked >= 50000000, "narrowing checked only %llu patterns", (unsigned long long)checked);
    printf("narrowing float32: %llu patterns (%s), %llu float16 and %llu bfloat16 mismatches, "
           "%.1f s\n", (unsigned long long)checked,
           f16c ? "float16 against F16C" : "float16 skipped: no F16C",
           (unsigned long long)bad_f16, (unsigned long long)bad_bf16, secs);
    if (payload)
        printf("note: %llu float32 NaN patterns narrow to a float16 NaN with other payload bits "
               "than F16C\n", (unsigned long long)payload);
}

/* ---- random float32 against the careful reference (both formats) ---- */

static float random_f32(void)
{
    uint64_t r = rnd();
    switch (r % 4) {
    case 0: /* any pattern */
        return qdq_f32_from_bits((uint32_t)(r >> 32));
    case 1: { /* float16's range, near its subnormals and its overflow */
        int e = (int)((r >> 8) % 48) - 30;
        float f = ldexpf(1.0f + (float)((r >> 16) & 0xffffff) * 0x1p-24f, e);
        return (r & 0x80) ? -f : f;
    }
    case 2: { /* a float16 midpoint, nudged by a few float32 ulps */
        uint16_t h = (uint16_t)((r >> 16) % 0x7c00);
        double m = (f16_value(h) + (h == 0x7bff ? 65536.0 : f16_value((uint16_t)(h + 1)))) / 2;
        float f = (float)m;
        for (int k = (int)((r >> 40) % 7) - 3; k; k += k > 0 ? -1 : 1)
            f = nextafterf(f, k > 0 ? INFINITY : 0);
        return (r & 0x80) ? -f : f;
    }
    default: { /* a bfloat16 midpoint, nudged */
        uint32_t u = ((uint32_t)(r >> 32) & 0x7fff0000u) | 0x8000u;
        u += (uint32_t)((int)((r >> 8) % 7) - 3);
        return qdq_f32_from_bits(u | ((r & 0x80) ? 0x80000000u : 0));
    }
    }
}

static void test_random_f32(int f16c)
{
    int n = TU_SANITIZED ? 200000 : 2000000, bad16 = 0, badbf = 0, badhw = 0, bad64bf = 0;
    for (int i = 0; i < n; i++) {
        float f = random_f32();
        uint16_t got = qdq_f32_to_f16(f), want = ref_round(&table_f16, f);
        if (!same16(got, want, 10) && bad16++ < 5)
            CHECK(0, "qdq_f32_to_f16(%a) = 0x%04x, want 0x%04x", f, got, want);
#if HAVE_F16C_CODE
        if (f16c && !same16(hw_f32_to_f16(f), want, 10) && badhw++ < 5)
            CHECK(0, "reference disagrees with F16C for %a: 0x%04x vs 0x%04x", f, want,
                  hw_f32_to_f16(f));
#else
        (void)f16c;
#endif
        uint16_t gb = qdq_f32_to_bf16(f), wb = ref_round(&table_bf16, f);
        if (!same16(gb, wb, 7) && badbf++ < 5)
            CHECK(0, "qdq_f32_to_bf16(%a) = 0x%04x, want 0x%04x", f, gb, wb);
        uint16_t g64 = qdq_f64_to_bf16((double)f);
        if (!same16(g64, gb, 7) && bad64bf++ < 5)
            CHECK(0, "qdq_f64_to_bf16((double)%a) = 0x%04x but qdq_f32_to_bf16 gives 0x%04x", f,
                  g64, gb);
    }
    CHECK(bad16 == 0, "float32 -> float16: %d of %d random values wrong", bad16, n);
    CHECK(badbf == 0, "float32 -> bfloat16: %d of %d random values wrong", badbf, n);
    CHECK(badhw == 0, "the careful reference disagrees with F16C on %d values", badhw);
    CHECK(bad64bf == 0, "qdq_f64_to_bf16 and qdq_f32_to_bf16 disagree on %d floats", bad64bf);
    printf("random float32: %d values against the careful reference\n", n);
}

/* ---- double -> float16 / bfloat16 ---- */

/* A random double for format t: any pattern, its range, a midpoint nudged by a few double
 * ulps or by a fraction of the format's ulp (the values a double rounding gets wrong). */
static double random_f64(const fmt_table *t)
{
    uint64_t r = rnd();
    int neg = (int)(r & 1);
    double d;
    switch ((r >> 1) % 6) {
    case 0:
        return f64_from_bits(rnd());
    case 1: { /* the format's range and a little beyond */
        int lo = t->mbits == 10 ? -30 : -140, span = t->mbits == 10 ? 50 : 272;
        d = ldexp(1.0 + (double)(rnd() >> 11) * 0x1p-53, lo + (int)((r >> 8) % (uint64_t)span));
        break;
    }
    case 2: /* an exact midpoint */
    case 3: /* a midpoint nudged by a few double ulps */
    case 4: { /* a midpoint nudged by 2^-j of the gap, j in 12..62 */
        unsigned k = (unsigned)((r >> 8) % (t->maxfin + 1u));
        double a = t->v[k], b = t->v[k + 1];
        d = (a + b) / 2;
        int which = (int)((r >> 1) % 6);
        if (which == 3) {
            for (int s = (int)((r >> 40) % 9) - 4; s; s += s > 0 ? -1 : 1)
                d = nextafter(d, s > 0 ? INFINITY : 0);
        } else if (which == 4) {
            double gap = (b - a) * ldexp(1, -(12 + (int)((r >> 40) % 51)));
            d = (r >> 60) & 1 ? d + gap : d - gap;
        }
        break;
    }
    default: { /* exact values of the format and their double neighbours */
        unsigned k = (unsigned)((r >> 8) % (t->maxfin + 1u));
        d = t->v[k];
        if ((r >> 40) & 1)
            d = nextafter(d, (r >> 41) & 1 ? INFINITY : 0);
        break;
    }
    }
    return neg ? -d : d;
}

static void test_from_f64(void)
{
    int n = TU_SANITIZED ? 300000 : 3000000, bad16 = 0, badbf = 0;
    static const double fixed[] = {
        0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 65504.0, 65519.99999999999, 65520.0,
        65536.0, 1e300, -1e300, 0x1p-24, 0x1p-25, 0x1.0000000000001p-25, 0x1.8p-24,
        0x1.fffffffffffffp-26, 5e-324, -5e-324, 0x1p-1022, 0x1.ffp127, 0x1.ff8p127,
        0x1.ff7fffffffffffp127, 0x1p128, 0x1p-133, 0x1p-134, 0x1.0000000000001p-134,
        0x1.0040000000001p0, 0x1.004p0, 0x1.00cp0, 1.0 + 0x1p-11, 1.0 + 0x1p-11 + 0x1p-40,
        1.0 + 0x1p-8, 1.0 + 0x1p-8 + 0x1p-52, 1.0 + 0x1p-8 - 0x1p-52,
    };
    size_t nf = sizeof fixed / sizeof fixed[0];
    for (size_t i = 0; i < nf + (size_t)n; i++) {
        double d16 = i < nf ? fixed[i] : random_f64(&table_f16);
        double dbf = i < nf ? fixed[i] : random_f64(&table_bf16);
        uint16_t got = qdq_f64_to_f16(d16), want = ref_round(&table_f16, d16);
        if (!same16(got, want, 10) && bad16++ < 5)
            CHECK(0, "qdq_f64_to_f16(%a) = 0x%04x, want 0x%04x", d16, got, want);
        got = qdq_f64_to_bf16(dbf), want = ref_round(&table_bf16, dbf);
        if (!same16(got, want, 7) && badbf++ < 5)
            CHECK(0, "qdq_f64_to_bf16(%a) = 0x%04x, want 0x%04x", dbf, got, want);
    }
    CHECK(bad16 == 0, "double -> float16: %d of %zu values wrong", bad16, nf + (size_t)n);
    CHECK(badbf == 0, "double -> bfloat16: %d of %zu values wrong", badbf, nf + (size_t)n);
    /* NaN keeps its sign. */
    CHECK(qdq_f64_to_f16(-NAN) & 0x8000, "qdq_f64_to_f16(-NaN) lost the sign");
    CHECK(qdq_f64_to_bf16(-NAN) & 0x8000, "qdq_f64_to_bf16(-NaN) lost the sign");
    printf("double: %zu values to each format\n", nf + (size_t)n);
}

int main(void)
{
    const char *s = getenv("QDQ_SEED");
    if (s && *s)
        rng_state = strtoull(s, NULL, 0);
    printf("seed %llu (set QDQ_SEED to change)\n", (unsigned long long)rng_state);
    table_init();
    int f16c = have_f16c();
    if (!f16c)
        SKIP("no F16C on this CPU (or not x86-64): the comparisons with the hardware's "
             "conversions");
    test_widen(f16c);
    test_random_f32(f16c);
    test_from_f64();
    test_narrow_f32(f16c);
    free(table_f16.v);
    free(table_bf16.v);
    return check_done();
}
