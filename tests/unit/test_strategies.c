/*
 * Every strategy of the AVX2 kernels against the portable family, bit for bit.
 *
 * The AVX2 family takes whole rows of the last axis in several ways (kernels.h: apply_rows
 * BY_ROW, BLOCK, QUAD, OCT; reduce_rows BLOCKED, ALONG, ALONG_FAR), chosen by the sizes in the
 * plan's tuning; qdq.c blocks qdq_run_channels by the tuning's fuse_bytes and takes bfloat16's
 * narrowing without the tie fix when the tuning's noties limits allow. Each way must give the
 * portable family's bytes: outputs, and the six reported values of every channel
 * (qdq_params_get), -0.0 apart from +0.0 and NaN payloads included.
 *
 * For every dtype, with and without a clamp (range_given), both rounding modes:
 *   forced:    each apply way with each reduce way, on the last axis, with the default tuning
 *              and with a small one (panels of 32 and 64 channels, short blocks), on shapes
 *              around the vectors, the four and eight-row steps, the blocks and the panels;
 *              run whole (qdq_run) and as two channel ranges (qdq_run_channels: rows wider
 *              than the channels taken);
 *   auto:      the ways the thresholds choose, on rows one element short of, at and one past
 *              every threshold of the tuning, and tensors at and one row past far_bytes, with
 *              the default tuning (tensors of 4 MiB: the from-memory ways of 4-byte dtypes,
 *              which test_core_random's sizes never reach) and with the small one. The shapes
 *              are computed from the tuning, and the test checks that they reach every way
 *              (qdq_apply_rows_way, qdq_reduce_rows_way), so a retuned threshold moves the
 *              shapes with it rather than leaving a way untested;
 *   per tensor and axis 0: sizes around the vectors and steps, bfloat16 with and without the
 *              narrowing without ties (checked to be taken), qdq_run_channels' blocks of the
 *              default and of a small fuse_bytes.
 * Data holds NaN, +-inf and zeros of both signs (channels whose extreme is a zero, and whose
 * range needs Eigen's order), values on a grid of 1/256 (ties on rounding) and at many scales.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels.h"
#include "qdq.h"
#include "testutil.h"

static const char *const apply_names[] = { "auto", "BY_ROW", "BLOCK", "QUAD", "OCT" };
static const char *const reduce_names[] = { "auto", "BLOCKED", "ALONG", "ALONG_FAR" };

/* Small panels and blocks: the panels' and blocks' edges with tensors of a few KiB. */
static qdq_tuning small_tuning(void)
{
    qdq_tuning t = qdq_tuning_default;
    t.far_bytes = 24u << 10;
    t.quad_bytes = 256, t.quad_clamp_bytes = 512, t.quad_bf16_bytes = 1024;
    t.oct_bytes = 496, t.far_quad_bytes = 1024;
    t.block_rows = 2, t.block_rows_max = 5, t.span_bytes = 600;
    t.along_bytes = 512, t.near_rows = 3;
    t.panel = 32, t.panel_along = 64;
    t.fuse_bytes = 1024;
    return t;
}

/* ---- data ---- */

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* An element of kind k (below): the rows' data, and per tensor the whole tensor's. */
static double value(uint64_t *s, int k, uint64_t c)
{
    uint64_t r = next(s);
    double v = (r & 1) ? (double)((int64_t)(r >> 40 & 511) - 256) / 256 /* ties */
                       : ldexp((double)(int64_t)(r >> 40) - (double)(1 << 23), -21 - (int)(c % 5));
    uint64_t u = (r >> 20) & 1023;
    if (u < 20) /* zeros of both signs anywhere */
        v = u & 1 ? -0.0 : 0.0;
    switch (k) {
    case 3: return u >= 1000 ? NAN : v;
    case 5: return u >= 1000 ? INFINITY : v;
    case 6: return u >= 1000 ? -INFINITY : v;
    case 7: return u < 256 ? (u & 1 ? -0.0 : 0.0) : fabs(v); /* the minimum a zero */
    case 8: return u < 200 ? -0.0 : -fabs(v) - 0x1p-10;    /* the maximum -0.0 */
    case 9: return u & 1 ? -0.0 : 0.0;
    default: return v;
    }
}

/* Kinds of channel c: mostly plain; NaN, +inf, -inf, zero extremes, all zeros. */
static int kind_of(uint64_t c) { return (int)(c % 12); }

/* The clamp's bounds of channel c (range_given): ties at scale 128, two-sided, one-sided. */
static void bounds_of(uint64_t c, double *lo, double *hi)
{
    static const double b[5][2] = { { -1, 127.0 / 128 }, { -2.5, 1.5 }, { 0.5, 1 },
                                    { -0.75, -0.25 }, { -3, 3.25 } };
    *lo = b[c % 5][0], *hi = b[c % 5][1];
}

/* ---- one data case against the reference ---- */

typedef struct dcase {
    qdq_dtype dt;
    int rank;
    int64_t dims[3];
    int axis; /* -1, 0 or rank - 1 */
    int clamp, half_up;
    void *in, *bmin, *bmax;
    size_t nb;
    qdq_plan plan;
    void *ref_out, *ref_par; /* the portable family's */
    char label[160];
} dcase;

static size_t max_u(size_t a, size_t b) { return a > b ? a : b; }

/* Fills the tensor: per channel of the plan, kind_of(c); per tensor, kind `pt_kind`. */
static int dcase_init(dcase *d, qdq_dtype dt, int rank, const int64_t *dims, int axis, int clamp,
                      int half_up, int pt_kind, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->dt = dt, d->rank = rank, d->axis = axis, d->clamp = clamp, d->half_up = half_up;
    memcpy(d->dims, dims, sizeof(int64_t) * (size_t)rank);
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis, a.range_given = clamp, a.round_mode = half_up ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    qdq_error err = { 0 };
    if (qdq_plan_init(&d->plan, dt, dims, rank, &a, &err) != 0) {
        CHECK(0, "plan: %s", err.msg);
        return -1;
    }
    qdq_plan *p = &d->plan;
    size_t es = qdq_dtype_size(dt);
    uint64_t n = p->count, s = seed | 1;
    d->in = malloc(max_u(n * es, 1));
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = p->channels > 1 ? i / p->inner % p->channels : 0;
        tu_store(dt, d->in, i, value(&s, p->channels > 1 ? kind_of(c) : pt_kind, c));
    }
    d->nb = clamp ? p->channels : 0;
    d->bmin = malloc(max_u(d->nb * es, 1)), d->bmax = malloc(max_u(d->nb * es, 1));
    for (uint64_t c = 0; c < d->nb; c++) {
        double lo, hi;
        bounds_of(c, &lo, &hi);
        tu_store(dt, d->bmin, c, lo), tu_store(dt, d->bmax, c, hi);
    }
    char dims_s[64];
    int k = 0;
    for (int i = 0; i < rank; i++)
        k += snprintf(dims_s + k, sizeof dims_s - (size_t)k, "%s%" PRId64, i ? "x" : "", dims[i]);
    snprintf(d->label, sizeof d->label, "%s [%s] axis %d%s %s%s", qdq_dtype_name(dt), dims_s,
             axis, clamp ? " clamp" : "", half_up ? "HALF_UP" : "HALF_TO_EVEN",
             p->channels > 1 ? "" : pt_kind == 0 ? "" : pt_kind == 3 ? " NaN" : " specials");
    /* The reference: the portable family, whole. */
    qdq_plan ref = *p;
    ref.isa = QDQ_ISA_PORTABLE;
    d->ref_out = malloc(max_u(n * es, 1));
    d->ref_par = malloc(qdq_params_size(p));
    void *acc = malloc(qdq_acc_size(p) + 1);
    int rc = qdq_run(&ref, d->in, d->ref_out, d->bmin, d->nb, d->bmax, d->nb, acc, d->ref_par,
                     &err);
    CHECK(rc == 0, "%s: reference: %s", d->label, err.msg);
    free(acc);
    return rc ? -1 : 0;
}

static void dcase_release(dcase *d)
{
    free(d->in), free(d->bmin), free(d->bmax), free(d->ref_out), free(d->ref_par);
}

/* Outputs and reported values against the reference's, bit for bit. */
static void compare(const dcase *d, const void *out, const void *par, const char *how)
{
    const qdq_plan *p = &d->plan;
    size_t es = qdq_dtype_size(d->dt);
    uint64_t bad = 0, first = 0;
    for (uint64_t i = 0; i < p->count; i++)
        if (memcmp((const char *)out + i * es, (const char *)d->ref_out + i * es, es) != 0)
            first = bad++ ? first : i;
    CHECK(bad == 0, "%s, %s: %" PRIu64 " of %" PRIu64 " outputs differ, first at %" PRIu64
          " (%.9g, portable %.9g)", d->label, how, bad, p->count, first,
          bad ? tu_load(d->dt, out, first) : 0.0, bad ? tu_load(d->dt, d->ref_out, first) : 0.0);
    uint64_t badc = 0, firstc = 0;
    for (uint64_t c = 0; c < p->channels; c++) {
        qdq_range a, b;
        qdq_params_get(p, par, c, &a);
        qdq_params_get(p, d->ref_par, c, &b);
        if (memcmp(&a, &b, sizeof a) != 0)
            firstc = badc++ ? firstc : c;
    }
    CHECK(badc == 0, "%s, %s: the reported values of %" PRIu64 " of %" PRIu64
          " channels differ, first channel %" PRIu64, d->label, how, badc, p->channels, firstc);
}

/*
 * The best family with tuning t: qdq_run out of place, and (`split`) in place as two channel
 * ranges [0, c1), [c1, C), each through qdq_run_channels with its own accumulator.
 */
static void run_best(const dcase *d, const qdq_tuning *t, bool split, const char *how)
{
    qdq_plan p = d->plan;
    p.isa = qdq_isa_best();
    p.tuning = t;
    size_t es = qdq_dtype_size(d->dt), bytes = max_u(p.count * es, 1);
    void *out = malloc(bytes), *par = malloc(qdq_params_size(&p));
    void *acc = malloc(qdq_acc_size(&p) + 1);
    qdq_error err = { 0 };
    int rc = qdq_run(&p, d->in, out, d->bmin, d->nb, d->bmax, d->nb, acc, par, &err);
    CHECK(rc == 0, "%s, %s: %s", d->label, how, err.msg);
    if (rc == 0)
        compare(d, out, par, how);
    if (split && p.channels > 1) {
        char how2[160];
        snprintf(how2, sizeof how2, "%s, two channel ranges in place", how);
        memcpy(out, d->in, p.count * es);
        memset(par, 0, qdq_params_size(&p));
        if (d->clamp)
            rc = qdq_params_given(&p, d->bmin, d->nb, d->bmax, d->nb, par, &err);
        uint64_t c1 = p.channels * 2 / 5 + 1;
        for (int k = 0; k < 2 && rc == 0; k++) {
            uint64_t lo = k ? c1 : 0, hi = k ? p.channels : c1;
            qdq_acc_init_channels(&p, acc, lo, hi);
            qdq_run_channels(&p, out, out, acc, par, lo, hi);
        }
        CHECK(rc == 0, "%s: %s", how2, err.msg);
        if (rc == 0)
            compare(d, out, par, how2);
    }
    free(out), free(par), free(acc);
}

/* ---- the last axis ---- */

static const qdq_dtype dtypes[4] = { QDQ_FLOAT32, QDQ_FLOAT64, QDQ_FLOAT16, QDQ_BFLOAT16 };

/* Each apply way with each reduce way, with tuning t, on rows x C. */
static void forced(const qdq_tuning *base, const char *tname, int64_t rows, int64_t C)
{
    for (int di = 0; di < 4; di++)
        for (int m = 0; m < 4; m++) {
            dcase d;
            int64_t dims[2] = { rows, C };
            if (dcase_init(&d, dtypes[di], 2, dims, 1, m & 1, m >> 1, 0,
                           (uint64_t)(rows * 7919 + C)) != 0) {
                dcase_release(&d);
                continue;
            }
            for (int a = QDQ_APPLY_BY_ROW; a <= QDQ_APPLY_OCT; a++)
                for (int r = QDQ_REDUCE_BLOCKED; r <= QDQ_REDUCE_ALONG_FAR; r++) {
                    if (d.clamp && r > QDQ_REDUCE_BLOCKED) /* no reduction: the same run */
                        continue;
                    qdq_tuning t = *base;
                    t.apply_rows = (qdq_apply_way)a, t.reduce_rows = (qdq_reduce_way)r;
                    char how[96];
                    snprintf(how, sizeof how, "%s tuning, apply %s, reduce %s", tname,
                             apply_names[a], reduce_names[r]);
                    run_best(&d, &t, true, how);
                }
            dcase_release(&d);
        }
}

static void t_forced(void)
{
    static const int64_t cs[] = { 2, 7, 8, 9, 16, 17, 31, 32, 33, 40, 47, 64, 65, 100, 129, 300 };
    static const int64_t rs[] = { 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 19, 24, 33 };
    qdq_tuning small = small_tuning();
    size_t nc = sizeof cs / sizeof cs[0], nr = sizeof rs / sizeof rs[0];
    /* Every channel count with three row counts, stepping through the list. */
    for (size_t i = 0; i < nc; i++)
        for (size_t j = 0; j < 3; j++) {
            int64_t rows = rs[(i * 3 + j) % nr];
            forced(&small, "small", rows, cs[i]);
            forced(&qdq_tuning_default, "default", rows, cs[i]);
        }
    /* Past the default panels: 512 channels down the columns, 2048 along the rows. */
    forced(&qdq_tuning_default, "default", 11, 513 + 16 + 5);
    forced(&qdq_tuning_default, "default", 9, 2048 + 64 + 3);
}

/* Row lengths one element short of, at and one past each threshold of t on rows, for es-byte
 * elements; and, around far_bytes, the tensors at and one row past it. count: entries made. */
typedef struct shape {
    int64_t rows, C;
} shape;

static size_t threshold_shapes(const qdq_tuning *t, size_t es, shape *out, size_t max)
{
    size_t n = 0, span_lo = t->span_bytes / (t->block_rows ? t->block_rows : 1);
    size_t span_hi = t->span_bytes / (t->block_rows_max ? t->block_rows_max : 1);
    const size_t rows_at[] = { t->quad_bytes, t->quad_clamp_bytes, t->quad_bf16_bytes,
                               t->oct_bytes, t->along_bytes, span_lo, span_hi };
    for (size_t k = 0; k < sizeof rows_at / sizeof rows_at[0]; k++)
        for (int d = -1; d <= 1; d++) {
            int64_t C = (int64_t)(rows_at[k] / es) + d;
            if (C < 2 || n == max)
                continue;
            /* in cache: about 64 KiB (below far_bytes), past eight rows, not a multiple of 8 */
            size_t target = t->far_bytes / 2 < (64u << 10) ? t->far_bytes / 2 : (64u << 10);
            int64_t rows = (int64_t)(target / ((size_t)C * es)) / 8 * 8 + 3;
            out[n++] = (shape){ rows < 11 ? 11 : rows, C };
        }
    const size_t far_rows[] = { t->far_quad_bytes - es, t->far_quad_bytes, t->quad_bytes };
    for (size_t k = 0; k < 3; k++) {
        int64_t C = (int64_t)(far_rows[k] / es);
        int64_t rows = (int64_t)(t->far_bytes / ((size_t)C * es));
        if (C < 2 || rows < 2 || n + 2 > max)
            continue;
        out[n++] = (shape){ rows, C };     /* at far_bytes or just under: in cache */
        out[n++] = (shape){ rows + 1, C }; /* one row past: from memory */
    }
    return n;
}

/* The ways tuning t's thresholds choose on the shapes threshold_shapes gives, against the
 * portable family; and a check that the shapes reach every way. */
static void t_auto(const qdq_tuning *t, const char *tname)
{
    for (int di = 0; di < 4; di++) {
        qdq_dtype dt = dtypes[di];
        size_t es = qdq_dtype_size(dt);
        shape sh[64];
        size_t ns = threshold_shapes(t, es, sh, 64);
        for (int clamp = 0; clamp < 2; clamp++) {
            unsigned ways = 0, reds = 0;
            for (size_t k = 0; k < ns; k++) {
                ways |= 1u << qdq_apply_rows_way(t, dt, (size_t)sh[k].rows, (size_t)sh[k].C,
                                                 (size_t)sh[k].C, clamp);
                reds |= 1u << qdq_reduce_rows_way(t, dt, (size_t)sh[k].rows, (size_t)sh[k].C,
                                                  (size_t)sh[k].C);
                for (int up = 0; up < 2; up++) {
                    dcase d;
                    int64_t dims[2] = { sh[k].rows, sh[k].C };
                    if (dcase_init(&d, dt, 2, dims, 1, clamp, up, 0,
                                   (uint64_t)(k * 131 + (size_t)up)) == 0) {
                        char how[96]; /* the ways of the whole run (the split's may differ) */
                        snprintf(how, sizeof how, "%s tuning, auto (apply %s, reduce %s)", tname,
                                 apply_names[qdq_apply_rows_way(t, dt, (size_t)sh[k].rows,
                                                                (size_t)sh[k].C,
                                                                (size_t)sh[k].C, clamp)],
                                 reduce_names[qdq_reduce_rows_way(t, dt, (size_t)sh[k].rows,
                                                                  (size_t)sh[k].C,
                                                                  (size_t)sh[k].C)]);
                        /* the 4 MiB tensors whole only: the split adds little there */
                        run_best(&d, t, (size_t)(sh[k].rows * sh[k].C) * es < (1u << 20), how);
                    }
                    dcase_release(&d);
                }
            }
            unsigned want = 1u << QDQ_APPLY_BY_ROW | 1u << QDQ_APPLY_BLOCK | 1u << QDQ_APPLY_QUAD;
            if (!clamp && es >= 4)
                want |= 1u << QDQ_APPLY_OCT;
            CHECK((ways & want) == want, "%s tuning, %s%s: the threshold shapes reach apply ways "
                  "%#x, not all of %#x", tname, qdq_dtype_name(dt), clamp ? " clamp" : "", ways,
                  want);
            unsigned rwant = dt == QDQ_FLOAT64 ? 1u << QDQ_REDUCE_BLOCKED
                                               : 1u << QDQ_REDUCE_BLOCKED | 1u << QDQ_REDUCE_ALONG |
                                                     1u << QDQ_REDUCE_ALONG_FAR;
            CHECK((reds & rwant) == rwant, "%s tuning, %s: the threshold shapes reach reduce "
                  "ways %#x, not all of %#x", tname, qdq_dtype_name(dt), reds, rwant);
        }
    }
}

/* ---- per tensor and axis 0 ---- */

static int noties_seen, noties_unwanted;

/* Whether a per-tensor parameter block says the narrowing without ties may be taken: the word
 * past its arrays (kernels.h). */
static bool noties_word(const qdq_plan *p, const void *par)
{
    uint64_t w;
    memcpy(&w, qdq_block_at(par, 1, p->dtype == QDQ_FLOAT64 ? 8 : 4, QDQ_PAR_ARRAYS, 0), sizeof w);
    return w != 0;
}

/* Per tensor: sizes around the vectors and the steps; bfloat16's narrowing without ties under
 * the default limits (which must take it somewhere) and with noties_max 0 (never). */
static void t_per_tensor(void)
{
    static const int64_t ns[] = { 0, 1, 5, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000,
                                  8195, 20000, 70001 };
    static const int kinds[] = { 0, 3, 5, 7, 9 };
    qdq_tuning off = qdq_tuning_default;
    off.noties_max = 0;
    for (int di = 0; di < 4; di++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (int m = 0; m < 4; m++)
                for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
                    if (kinds[k] != 0 && ns[i] > 1000 && ns[i] != 20000)
                        continue;
                    dcase d;
                    if (dcase_init(&d, dtypes[di], 1, &ns[i], -1, m & 1, m >> 1, kinds[k],
                                   (uint64_t)(ns[i] * 31 + m + 977 * (int64_t)k)) == 0) {
                        run_best(&d, NULL, false, "default tuning");
                        run_best(&d, &off, false, "noties_max 0");
                        noties_seen += d.dt == QDQ_BFLOAT16 && noties_word(&d.plan, d.ref_par);
                        qdq_plan p = d.plan;
                        p.tuning = &off;
                        void *par = malloc(qdq_params_size(&p)), *acc = malloc(qdq_acc_size(&p));
                        void *out = malloc(max_u((size_t)p.count * qdq_dtype_size(p.dtype), 1));
                        qdq_error err = { 0 };
                        if (qdq_run(&p, d.in, out, d.bmin, d.nb, d.bmax, d.nb, acc, par, &err) == 0)
                            noties_unwanted += noties_word(&p, par);
                        free(par), free(acc), free(out);
                    }
                    dcase_release(&d);
                }
    CHECK(noties_seen > 0, "no bfloat16 case took the narrowing without ties");
    CHECK(noties_unwanted == 0, "%d cases took the narrowing without ties with noties_max 0",
          noties_unwanted);
}

/* Axis 0 (and a middle axis): runs of whole steps and not, channels in blocks of the default
 * fuse_bytes and of a small one. */
static void t_axis0(void)
{
    static const int64_t cs[] = { 2, 3, 16, 17, 40 };
    static const int64_t inners[] = { 1, 3, 16, 32, 33, 64, 100, 257, 1000, 40000 };
    qdq_tuning small = small_tuning();
    for (int di = 0; di < 4; di++)
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
            for (size_t j = 0; j < sizeof inners / sizeof inners[0]; j++)
                for (int m = 0; m < 4; m++) {
                    int64_t C = inners[j] == 40000 ? 5 : cs[i];
                    if (inners[j] == 40000 && i > 0)
                        continue;
                    dcase d;
                    int64_t dims[3] = { 3, C, inners[j] };
                    bool mid = (i + j) % 4 == 0; /* [3, C, inner] on axis 1 now and then */
                    if (dcase_init(&d, dtypes[di], mid ? 3 : 2, mid ? dims : dims + 1,
                                   mid ? 1 : 0, m & 1, m >> 1, 0,
                                   (uint64_t)(C * 1009 + inners[j] * 3 + m)) == 0) {
                        run_best(&d, NULL, true, "default tuning");
                        run_best(&d, &small, true, "small tuning");
                    }
                    dcase_release(&d);
                }
}

int main(void)
{
    if (qdq_isa_best() == QDQ_ISA_PORTABLE) {
        printf("test_strategies: this CPU has only the portable family: nothing to compare\n");
        return check_done();
    }
    qdq_tuning small = small_tuning();
    t_forced();
    t_auto(&small, "small");
    t_auto(&qdq_tuning_default, "default");
    t_per_tensor();
    t_axis0();
    printf("bfloat16 cases that took the narrowing without ties: %d\n", noties_seen);
    return check_done();
}
