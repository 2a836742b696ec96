/*
 * The error statistics (qdq.h: qdq_apply_stats, qdq_run_stats, qdq_stats_merge,
 * qdq_stats_summarize) against a scalar reference written here from their definition: over the
 * elements whose input is finite, in float64 from the input and output values (float16 and
 * bfloat16 widened exactly), max |out - in|, sqrt(mean((out - in)^2)), 10 log10(sum in^2 /
 * sum (out - in)^2) (null when either sum is 0), and the count of the others. The reference sums
 * in long double, one element at a time; the core's sums may be in any order, so sums, rmse and
 * SQNR compare with a relative tolerance of 1e-9; the greatest difference and the counts exactly.
 *
 * Every dtype, per tensor, axis 0, a middle axis and the last axis, with and without a clamp,
 * both rounding modes, both kernel families; sizes from empty to past the kernels' blocks of
 * 4096 vectors; data with NaN, +-inf and zeros of both signs, and tensors whose finite inputs give
 * NaN outputs (an infinite range). Each way: qdq_run_stats whole, out of place and in place, and
 * qdq_apply_stats on random splits (empty ranges included), each into its own statistics,
 * merged in random order. The output bits must be qdq_run's and the reported ranges too.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "qdq.h"
#include "testutil.h"

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* ---- the reference ---- */

typedef struct ref_stats {
    double max_abs_error, rmse, sqnr_db;
    bool sqnr_null, nan;
    long double sse, ssi;
    uint64_t finite, nonfinite;
} ref_stats;

static void ref_compute(qdq_dtype dt, const void *in, const void *out, uint64_t n, ref_stats *r)
{
    memset(r, 0, sizeof *r);
    for (uint64_t i = 0; i < n; i++) {
        double x = tu_load(dt, in, i), o = tu_load(dt, out, i);
        if (!isfinite(x)) {
            r->nonfinite++;
            continue;
        }
        double e = o - x;
        r->finite++;
        r->sse += (long double)e * e;
        r->ssi += (long double)x * x;
        if (isnan(e))
            r->nan = true;
        else if (fabs(e) > r->max_abs_error)
            r->max_abs_error = fabs(e);
    }
    if (r->finite == 0) {
        r->sqnr_null = true;
        return;
    }
    if (r->nan)
        r->max_abs_error = NAN;
    r->rmse = (double)sqrtl(r->sse / (long double)r->finite);
    r->sqnr_null = r->sse == 0 || r->ssi == 0;
    if (!r->sqnr_null)
        r->sqnr_db = (double)(10 * log10l(r->ssi / r->sse));
}

/* a within a relative 1e-9 of b; NaN matches NaN, infinities themselves. */
static bool close(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= 1e-9 * fabs(b);
}

static void check_stats(const char *label, const qdq_stats *s, const ref_stats *r)
{
    qdq_stats_summary m;
    qdq_stats_summarize(s, &m);
    CHECK(s->finite == r->finite && s->nonfinite == r->nonfinite,
          "%s: counts %" PRIu64 " / %" PRIu64 ", want %" PRIu64 " / %" PRIu64, label, s->finite,
          s->nonfinite, r->finite, r->nonfinite);
    CHECK(close(s->sum_sq_error, (double)r->sse) && close(s->sum_sq_input, (double)r->ssi),
          "%s: sums %.17g %.17g, want %.17g %.17g", label, s->sum_sq_error, s->sum_sq_input,
          (double)r->sse, (double)r->ssi);
    bool same_max = (isnan(m.max_abs_error) && isnan(r->max_abs_error)) ||
                    m.max_abs_error == r->max_abs_error;
    CHECK(same_max, "%s: max_abs_error %.17g, want %.17g", label, m.max_abs_error,
          r->max_abs_error);
    CHECK(close(m.rmse, r->rmse), "%s: rmse %.17g, want %.17g", label, m.rmse, r->rmse);
    CHECK(m.sqnr_null == r->sqnr_null && (m.sqnr_null || close(m.sqnr_db, r->sqnr_db)),
          "%s: sqnr %s%.17g, want %s%.17g", label, m.sqnr_null ? "null " : "", m.sqnr_db,
          r->sqnr_null ? "null " : "", r->sqnr_db);
    CHECK(m.nonfinite == r->nonfinite, "%s: summary nonfinite %" PRIu64, label, m.nonfinite);
}

/* ---- cases ---- */

/* kinds of data: 0 plain (with zeros of both signs), 1 with NaN and +-inf, 2 all non-finite,
 * 3 an infinite value in each channel's range (finite inputs give NaN outputs) */
static double value(uint64_t *s, int kind)
{
    uint64_t r = next(s), u = (r >> 20) & 1023;
    double v = (r & 1) ? (double)((int64_t)(r >> 40 & 511) - 256) / 256
                       : ldexp((double)(int64_t)(r >> 40) - (double)(1 << 23), -21 - (int)(r % 9));
    if (u < 16)
        v = u & 1 ? -0.0 : 0.0;
    switch (kind) {
    case 1: return u >= 1000 ? NAN : u >= 980 ? INFINITY : u >= 960 ? -INFINITY : v;
    case 2: return u & 1 ? NAN : u & 2 ? INFINITY : -INFINITY;
    case 3: return u >= 1010 ? INFINITY : v;
    default: return v;
    }
}

/* One tensor, one family: the ways above against the reference and qdq_run's bytes. */
static void one(qdq_dtype dt, int rank, const int64_t *dims, int axis, int clamp, int half_up,
                int kind, qdq_isa isa, uint64_t seed)
{
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis, a.range_given = clamp, a.round_mode = half_up ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    qdq_plan p;
    qdq_error err = { 0 };
    if (qdq_plan_init(&p, dt, dims, rank, &a, &err) != 0) {
        CHECK(0, "plan: %s", err.msg);
        return;
    }
    p.isa = isa;
    size_t es = qdq_dtype_size(dt), bytes = p.count * es + 1;
    unsigned char *in = malloc(bytes), *plain = malloc(bytes), *out = malloc(bytes);
    unsigned char *par0 = malloc(qdq_params_size(&p)), *par = malloc(qdq_params_size(&p));
    void *acc = malloc(qdq_acc_size(&p) + 1);
    uint64_t s = seed | 1;
    for (uint64_t i = 0; i < p.count; i++)
        tu_store(dt, in, i, value(&s, kind));
    size_t nb = clamp ? p.channels : 0;
    double *bmin = malloc(nb * 8 + 8), *bmax = malloc(nb * 8 + 8);
    for (size_t c = 0; c < nb; c++) {
        tu_store(dt, bmin, c, c % 3 == 0 ? -1 : -2.5);
        tu_store(dt, bmax, c, c % 3 == 0 ? 127.0 / 128 : c % 3 == 1 ? 1.5 : INFINITY);
    }
    char label[200];
    int k = snprintf(label, sizeof label, "%s %s [", isa == QDQ_ISA_PORTABLE ? "portable" : "best",
                     qdq_dtype_name(dt));
    for (int i = 0; i < rank; i++)
        k += snprintf(label + k, sizeof label - (size_t)k, "%s%" PRId64, i ? "x" : "", dims[i]);
    snprintf(label + k, sizeof label - (size_t)k, "] axis %d%s %s kind %d", axis,
             clamp ? " clamp" : "", half_up ? "HALF_UP" : "HALF_TO_EVEN", kind);

    int rc = qdq_run(&p, in, plain, bmin, nb, bmax, nb, acc, par0, &err);
    CHECK(rc == 0, "%s: qdq_run: %s", label, err.msg);
    if (rc != 0)
        goto out;
    ref_stats r;
    ref_compute(dt, in, plain, p.count, &r);

    /* qdq_run_stats, out of place and in place */
    for (int inplace = 0; inplace < 2; inplace++) {
        qdq_stats st;
        qdq_stats_init(&st);
        if (inplace)
            memcpy(out, in, p.count * es);
        rc = qdq_run_stats(&p, inplace ? out : in, out, bmin, nb, bmax, nb, acc, par, &st, &err);
        CHECK(rc == 0, "%s: qdq_run_stats: %s", label, err.msg);
        CHECK(!memcmp(out, plain, p.count * es), "%s: qdq_run_stats%s: outputs differ from "
              "qdq_run's", label, inplace ? " in place" : "");
        bool same_par = true;
        for (uint64_t c = 0; c < p.channels; c++) {
            qdq_range x, y;
            qdq_params_get(&p, par, c, &x), qdq_params_get(&p, par0, c, &y);
            same_par &= !memcmp(&x, &y, sizeof x);
        }
        CHECK(same_par, "%s: qdq_run_stats: reported ranges differ from qdq_run's", label);
        char l2[240];
        snprintf(l2, sizeof l2, "%s, qdq_run_stats%s", label, inplace ? " in place" : "");
        check_stats(l2, &st, &r);
    }

    /* qdq_apply_stats on random splits, merged in random order, in place every other time */
    for (int trial = 0; trial < 3; trial++) {
        enum { MAXP = 8 };
        uint64_t cut[MAXP + 1];
        int np = 1 + (int)(next(&s) % MAXP);
        cut[0] = 0, cut[np] = p.count;
        for (int j = 1; j < np; j++)
            cut[j] = p.count ? next(&s) % (p.count + 1) : 0;
        for (int j = 1; j < np; j++) /* sorted: some pieces empty */
            for (int m = j; m > 1 && cut[m - 1] > cut[m]; m--) {
                uint64_t t = cut[m];
                cut[m] = cut[m - 1], cut[m - 1] = t;
            }
        bool inplace = trial & 1;
        if (inplace)
            memcpy(out, in, p.count * es);
        qdq_stats part[MAXP];
        for (int j = 0; j < np; j++) {
            qdq_stats_init(&part[j]);
            qdq_apply_stats(&p, par0, inplace ? out : in, out, cut[j], cut[j + 1], &part[j]);
        }
        qdq_stats st;
        qdq_stats_init(&st);
        int order[MAXP];
        for (int j = 0; j < np; j++)
            order[j] = j;
        for (int j = np - 1; j > 0; j--) {
            int m = (int)(next(&s) % (uint64_t)(j + 1)), t = order[j];
            order[j] = order[m], order[m] = t;
        }
        for (int j = 0; j < np; j++)
            qdq_stats_merge(&st, &part[order[j]]);
        CHECK(!memcmp(out, plain, p.count * es), "%s: qdq_apply_stats in %d pieces%s: outputs "
              "differ from qdq_run's", label, np, inplace ? " in place" : "");
        char l2[240];
        snprintf(l2, sizeof l2, "%s, qdq_apply_stats in %d pieces%s", label, np,
                 inplace ? " in place" : "");
        check_stats(l2, &st, &r);
    }
out:
    free(in), free(plain), free(out), free(par0), free(par), free(acc), free(bmin), free(bmax);
}

static void t_cases(void)
{
    static const int64_t sizes[] = { 0, 1, 7, 8, 9, 17, 33, 100, 1000, 4099, 40000, 100003 };
    qdq_isa isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
    int nisa = isas[1] == QDQ_ISA_PORTABLE ? 1 : 2;
    uint64_t seed = 1;
    for (int d = 0; d < 4; d++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
            for (int m = 0; m < 4; m++)
                for (int kind = 0; kind < 4; kind++) {
                    if (sizes[z] > 40000 && (kind > 1 || m > 1)) /* the big one: fewer */
                        continue;
                    int64_t n = sizes[z];
                    /* per tensor; [C, n/C] axis 0; [2, C, n/(2C)] axis 1; [n/C, C] last axis */
                    int64_t C = n < 40 ? 3 : n < 2000 ? 37 : 129;
                    int64_t d0[1] = { n }, d1[2] = { C, n / C }, d2[3] = { 2, C, n / (2 * C) };
                    int64_t d3[2] = { n / C, C };
                    for (int i = 0; i < nisa; i++) {
                        qdq_dtype dt = (qdq_dtype)d;
                        one(dt, 1, d0, -1, m & 1, m >> 1, kind, isas[i], seed++);
                        one(dt, 2, d1, 0, m & 1, m >> 1, kind, isas[i], seed++);
                        one(dt, 3, d2, 1, m & 1, m >> 1, kind, isas[i], seed++);
                        one(dt, 2, d3, 1, m & 1, m >> 1, kind, isas[i], seed++);
                    }
                }
}

/* Known values: TensorFlow's [-1, -0.5, 0, 0.3] signed 8-bit gives [-1, -0.5, 0, 0.296875]. */
static void t_known(void)
{
    float in[6] = { -1, -0.5f, 0, 0.3f, NAN, -INFINITY }, out[6];
    int64_t dims[1] = { 4 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    qdq_plan p;
    qdq_error err = { 0 };
    float acc[5], par[8];
    qdq_stats st;
    qdq_stats_summary m;
    CHECK(qdq_plan_init(&p, QDQ_FLOAT32, dims, 1, &a, &err) == 0, "plan: %s", err.msg);
    qdq_stats_init(&st);
    CHECK(qdq_run_stats(&p, in, out, NULL, 0, NULL, 0, acc, par, &st, &err) == 0, "run");
    double e = 0.296875 - (double)0.3f;
    qdq_stats_summarize(&st, &m);
    CHECK(out[3] == 0.296875f && st.finite == 4 && st.nonfinite == 0, "known: out %.9g, %" PRIu64,
          out[3], st.finite);
    CHECK(m.max_abs_error == fabs(e) && close(m.rmse, fabs(e) / 2), "known: max %.17g rmse %.17g",
          m.max_abs_error, m.rmse);
    double ssi = 1 + 0.25 + (double)0.3f * 0.3f;
    CHECK(!m.sqnr_null && close(m.sqnr_db, 10 * log10(ssi / (e * e))), "known: sqnr %.17g",
          m.sqnr_db);
    /* NaN and -inf elements: counted apart, and the rest unchanged */
    qdq_stats more;
    qdq_stats_init(&more);
    qdq_apply_stats(&p, par, in, out, 4, 6, &more);
    qdq_stats_merge(&st, &more);
    qdq_stats_summarize(&st, &m);
    CHECK(st.finite == 4 && m.nonfinite == 2 && m.max_abs_error == fabs(e),
          "known with NaN and -inf: %" PRIu64 " finite, %" PRIu64 " not", st.finite, m.nonfinite);
    /* no elements; only zeros (both sums 0); an exact output (the error sum 0) */
    qdq_stats_init(&st);
    qdq_apply_stats(&p, par, in, out, 2, 2, &st);
    qdq_stats_summarize(&st, &m);
    CHECK(m.max_abs_error == 0 && m.rmse == 0 && m.sqnr_null && m.nonfinite == 0,
          "empty: %g %g %d", m.max_abs_error, m.rmse, m.sqnr_null);
    qdq_apply_stats(&p, par, in, out, 2, 3, &st); /* the 0 */
    qdq_stats_summarize(&st, &m);
    CHECK(st.finite == 1 && m.sqnr_null && m.rmse == 0, "zero: sqnr_null %d", m.sqnr_null);
    qdq_stats_init(&st);
    qdq_apply_stats(&p, par, in, out, 0, 2, &st); /* -1 and -0.5: exact */
    qdq_stats_summarize(&st, &m);
    CHECK(st.finite == 2 && st.sum_sq_input == 1.25 && m.sqnr_null && m.max_abs_error == 0,
          "exact: sqnr_null %d", m.sqnr_null);
    /* NULL statistics: the plain op */
    float out2[4], want[4] = { -1, -0.5f, 0, 0.296875f };
    CHECK(qdq_run_stats(&p, in, out2, NULL, 0, NULL, 0, acc, par, NULL, &err) == 0 &&
          !memcmp(want, out2, sizeof want), "NULL stats");
}

int main(void)
{
    t_known();
    t_cases();
    return check_done();
}
