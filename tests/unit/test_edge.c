/*
 * One named test per edge case of the semantics (docs/semantics.md, "Special values"), per known
 * value (docs/semantics.md, "Worked examples" and the examples of "Scale") and per invalid
 * attribute ("Validation"): outputs and reported ranges bit for bit (-0.0 differs from 0.0, NaN
 * matches NaN), errors as QDQ_EINVAL with a message that names the attribute and its value.
 * Every valid case runs with each kernel family the CPU has, out of place and in place.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels.h"
#include "qdq.h"
#include "qdq_half.h"
#include "testutil.h"

#define MAXN 64
#define MAXC 8

/* One run of the op: inputs as doubles (stored into the dtype), outputs widened back. */
typedef struct op_case {
    qdq_dtype dt;
    int rank;
    int64_t dims[8];
    qdq_attrs a;
    size_t n;             /* elements given in in[] */
    double in[MAXN];
    size_t n_min, n_max;  /* bounds (range_given) */
    double min[MAXC], max[MAXC];
} op_case;

typedef struct op_result {
    int rc;
    qdq_error err;
    uint64_t count, channels;
    double out[MAXN];
    qdq_range r[MAXC];
} op_result;

static const char *cur_test = "";
static qdq_isa cur_isa;

/* Runs the case with one kernel family: out of place, then in place (which must agree). */
static void run(const op_case *c, op_result *res)
{
    memset(res, 0, sizeof *res);
    qdq_plan p;
    res->rc = qdq_plan_init(&p, c->dt, c->dims, c->rank, &c->a, &res->err);
    if (res->rc)
        return;
    p.isa = cur_isa;
    res->count = p.count, res->channels = p.channels;
    CHECK(p.count == c->n, "%s: the case gives %zu elements for a shape of %" PRIu64, cur_test,
          c->n, p.count);
    if (p.count != c->n || p.channels > MAXC)
        return;
    size_t es = qdq_dtype_size(c->dt);
    void *in = malloc(c->n * es + 1), *out = malloc(c->n * es + 1), *io = malloc(c->n * es + 1);
    void *mn = malloc(MAXC * 8), *mx = malloc(MAXC * 8);
    void *acc = malloc(qdq_acc_size(&p) + 1), *params = malloc(qdq_params_size(&p) + 1);
    for (size_t i = 0; i < c->n; i++)
        tu_store(c->dt, in, i, c->in[i]);
    memcpy(io, in, c->n * es);
    for (size_t i = 0; i < c->n_min; i++)
        tu_store(c->dt, mn, i, c->min[i]);
    for (size_t i = 0; i < c->n_max; i++)
        tu_store(c->dt, mx, i, c->max[i]);
    res->rc = qdq_run(&p, in, out, mn, c->n_min, mx, c->n_max, acc, params, &res->err);
    if (res->rc == 0) {
        for (uint64_t ch = 0; ch < p.channels; ch++)
            qdq_params_get(&p, params, ch, &res->r[ch]);
        for (size_t i = 0; i < c->n; i++)
            res->out[i] = tu_load(c->dt, out, i);
        int rc = qdq_run(&p, io, io, mn, c->n_min, mx, c->n_max, acc, params, &res->err);
        CHECK(rc == 0, "%s: in place failed: %s", cur_test, res->err.msg);
        for (size_t i = 0; i < c->n; i++)
            CHECK(tu_same(c->dt, io, out, i), "%s (isa %d): in place element %zu = %a, out of "
                  "place %a", cur_test, (int)cur_isa, i, tu_load(c->dt, io, i), res->out[i]);
    }
    free(in), free(out), free(io), free(mn), free(mx), free(acc), free(params);
}

/* Bitwise equality in the compute type (float for all but float64); NaN matches NaN. */
static int same_val(qdq_dtype dt, double got, double want)
{
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want);
    if (dt == QDQ_FLOAT64)
        return qdq_f64_bits(got) == qdq_f64_bits(want);
    return qdq_f32_bits((float)got) == qdq_f32_bits((float)want) && (double)(float)got == got;
}

static void expect_ok(const op_case *c, const op_result *r)
{
    CHECK(r->rc == 0, "%s (isa %d): unexpected error %d: %s", cur_test, (int)cur_isa, r->rc,
          r->err.msg);
}

/* Outputs want[0..n). */
static void expect_out(const op_case *c, const op_result *r, const double *want)
{
    if (r->rc)
        return;
    for (size_t i = 0; i < c->n; i++)
        CHECK(same_val(c->dt, r->out[i], want[i]), "%s (isa %d): output[%zu] = %.9g (%a), want "
              "%.9g (%a)", cur_test, (int)cur_isa, i, r->out[i], r->out[i], want[i], want[i]);
}

/* The six reported values of channel ch: input_min, input_max, output_min, output_max, scale,
 * inverse_scale. */
static void expect_range(const op_case *c, const op_result *r, uint64_t ch, double in_min,
                         double in_max, double out_min, double out_max, double scale, double inv)
{
    if (r->rc)
        return;
    double got[6];
    tu_range_values(&r->r[ch], got);
    double want[6] = { in_min, in_max, out_min, out_max, scale, inv };
    for (int k = 0; k < 6; k++)
        CHECK(same_val(c->dt, got[k], want[k]), "%s (isa %d): channel %" PRIu64 " %s = %.9g "
              "(%a), want %.9g (%a)", cur_test, (int)cur_isa, ch, tu_range_keys[k], got[k], got[k],
              want[k], want[k]);
}

/* A failure with QDQ_EINVAL whose message contains every given word (NULL-terminated). */
static void expect_error(const op_result *r, ...)
{
    CHECK(r->rc == QDQ_EINVAL && r->err.code == QDQ_EINVAL, "%s: want QDQ_EINVAL, got rc %d "
          "(code %d)", cur_test, r->rc, r->err.code);
    va_list ap;
    va_start(ap, r);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        CHECK(r->rc && strstr(r->err.msg, w), "%s: message '%s' lacks '%s'", cur_test,
              r->err.msg, w);
    va_end(ap);
}

static op_case base(qdq_dtype dt, int rank, const int64_t *dims, size_t n, const double *in)
{
    op_case c;
    memset(&c, 0, sizeof c);
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    c.a = a, c.dt = dt, c.rank = rank, c.n = n;
    for (int i = 0; i < rank; i++)
        c.dims[i] = dims[i];
    for (size_t i = 0; i < n; i++)
        c.in[i] = in[i];
    return c;
}

static op_case vec(qdq_dtype dt, size_t n, const double *in)
{
    int64_t d = (int64_t)n;
    return base(dt, 1, &d, n, in);
}

static void given(op_case *c, double lo, double hi)
{
    c->a.range_given = true;
    c->n_min = c->n_max = 1;
    c->min[0] = lo, c->max[0] = hi;
}

/* ------------------ edge cases (docs/semantics.md, "Special values") ------------------ */

/* All zeros: s_min = s_max = T_MAX, inv = 0, output all zeros. */
static void t_all_zeros(void)
{
    double in[4] = { 0, 0, 0, 0 }, want[4] = { 0, 0, 0, 0 };
    op_case c = vec(QDQ_FLOAT32, 4, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, 0.0, 0.0, -0.0, 0.0, FLT_MAX, 0.0);
    c.dt = QDQ_FLOAT64;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, 0.0, 0.0, -0.0, 0.0, DBL_MAX, 0.0);
    c.dt = QDQ_FLOAT32, c.a.signed_input = false; /* qmin = 0: output_min = 0 * 0 */
    run(&c, &r);
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, 0.0, 0.0, 0.0, 0.0, FLT_MAX, 0.0);
}

/* Zeros of both signs: Eigen's order picks the extremes (-0.0 both, for these three). */
static void t_all_zeros_mixed_signs(void)
{
    double in[3] = { -0.0, 0.0, -0.0 };
    op_case c = vec(QDQ_FLOAT32, 3, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    /* inv = -0.0 / 127 = -0.0: each output is the zero of the other sign. */
    double want[3] = { 0.0, -0.0, 0.0 };
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, -0.0, -0.0, 0.0, -0.0, FLT_MAX, -0.0);
}

/* A single value: only one side counts. -3.5, signed 8-bit: scale 36.571426, out -3.5. */
static void t_single_value(void)
{
    double in[1] = { -3.5 }, want[1] = { -3.5 };
    op_case c = vec(QDQ_FLOAT32, 1, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    /* s_min = -128 / -3.5 wins; inv = -3.5 / -128; hi = 127 * inv. The scale is sometimes
     * quoted as 36.571426, but 128 / 3.5 = 36.5714285... rounds (IEEE division, as the rule
     * says) to the float 36.57143 (0x1.24924ap+5), as docs/semantics.md's "Worked examples"
     * print it; 36.571426 is the float below. */
    expect_range(&c, &r, 0, -3.5, -3.5, -3.5, 3.47265625, 0x1.24924ap+5f, 0.02734375);
    CHECK(qdq_f32_bits(-128.0f / -3.5f) == qdq_f32_bits(0x1.24924ap+5f), "%s: -128/-3.5 = %a",
          cur_test, -128.0f / -3.5f);
    /* A positive single value: the max side, scale = 127 / 2. */
    double in2[1] = { 2.0 };
    op_case c2 = vec(QDQ_FLOAT32, 1, in2);
    run(&c2, &r);
    float inv = 2.0f / 127.0f;
    double want2[1] = { 127.0f * inv };
    expect_out(&c2, &r, want2);
    expect_range(&c2, &r, 0, 2.0, 2.0, -128.0f * inv, 2.0, 63.5, inv);
}

/* Empty tensors: no error, ranges of the empty reduction (lo = +inf, hi = -inf). */
static void t_empty(void)
{
    int64_t d1[1] = { 0 }, d3[3] = { 3, 0, 2 };
    op_case c = base(QDQ_FLOAT32, 1, d1, 0, NULL);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    CHECK(r.count == 0, "%s: count %" PRIu64, cur_test, r.count);
    expect_range(&c, &r, 0, INFINITY, -INFINITY, INFINITY, -INFINITY, FLT_MAX, -INFINITY);
    c = base(QDQ_FLOAT64, 3, d3, 0, NULL);
    run(&c, &r);
    expect_ok(&c, &r);
    expect_range(&c, &r, 0, INFINITY, -INFINITY, INFINITY, -INFINITY, DBL_MAX, -INFINITY);
    /* Unsigned: output_min = 0 * -inf = NaN. */
    c.a.signed_input = false;
    run(&c, &r);
    expect_range(&c, &r, 0, INFINITY, -INFINITY, NAN, -INFINITY, DBL_MAX, -INFINITY);
    /* Per channel over an empty outer dimension: every channel has the empty ranges. */
    int64_t d2[2] = { 0, 4 };
    c = base(QDQ_FLOAT32, 2, d2, 0, NULL);
    c.a.axis = 1;
    run(&c, &r);
    expect_ok(&c, &r);
    CHECK(r.rc || r.channels == 4, "%s: %" PRIu64 " channels", cur_test, r.channels);
    for (uint64_t ch = 0; ch < 4 && !r.rc; ch++)
        expect_range(&c, &r, ch, INFINITY, -INFINITY, INFINITY, -INFINITY, FLT_MAX, -INFINITY);
    /* Per channel with no channels, and an empty dim next to huge ones. */
    c.a.axis = 0;
    run(&c, &r);
    expect_ok(&c, &r);
    int64_t huge[3] = { INT64_MAX, 0, INT64_MAX };
    c = base(QDQ_BFLOAT16, 3, huge, 0, NULL);
    for (int axis = -1; axis < 3; axis++) {
        c.a.axis = axis;
        run(&c, &r);
        if (axis == 0 || axis == 2) { /* 2^63 - 1 channels: their ranges cannot be held */
            CHECK(r.rc == QDQ_EINVAL && strstr(r.err.msg, "channels"), "%s: axis %d: rc %d '%s'",
                  cur_test, axis, r.rc, r.err.msg);
            continue;
        }
        expect_ok(&c, &r);
        CHECK(r.rc || r.count == 0, "%s: count %" PRIu64, cur_test, r.count);
    }
    /* Empty with range_given: the given range, nothing to clamp. */
    c = base(QDQ_FLOAT32, 1, d1, 0, NULL);
    given(&c, -1.0, 1.0);
    run(&c, &r);
    expect_ok(&c, &r);
    /* s_min = 128 > s_max = 127: the max side. */
    expect_range(&c, &r, 0, -1.0, 1.0, -128.0f * (1.0f / 127.0f), 1.0, 127.0, 1.0f / 127.0f);
}

/* +inf or -inf without range_given: scale 0 and inv inf, so every output is NaN. */
static void t_inf_poisons(void)
{
    double in[3] = { 1.0, INFINITY, -2.0 }, nan3[3] = { NAN, NAN, NAN };
    op_case c = vec(QDQ_FLOAT32, 3, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, nan3);
    expect_range(&c, &r, 0, -2.0, INFINITY, -INFINITY, INFINITY, 0.0, INFINITY);
    double in2[3] = { -INFINITY, 1.0, 0.5 };
    c = vec(QDQ_FLOAT64, 3, in2);
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, nan3);
    /* s_min = -128 / -inf = +0 < s_max: scale 0, inv = -inf / -128, hi = 127 * inf. */
    expect_range(&c, &r, 0, -INFINITY, 1.0, -INFINITY, INFINITY, 0.0, INFINITY);
}

/* NaN elements always produce NaN, with and without range_given; the others are quantised. */
static void t_nan_elements(void)
{
    double in[3] = { NAN, 1.0, -1.0 };
    op_case c = vec(QDQ_FLOAT32, 3, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    float inv = 1.0f / 127.0f; /* s_min = 128 > s_max = 127: the max side */
    double want[3] = { NAN, 127.0f * inv, -127.0f * inv };
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, -1.0, 1.0, -128.0f * inv, 1.0, 127.0, inv);
    double in2[2] = { NAN, 0.5 };
    c = vec(QDQ_FLOAT64, 2, in2);
    given(&c, -1.0, 1.0);
    run(&c, &r);
    expect_ok(&c, &r);
    double want2[2] = { NAN, 64.0 * (1.0 / 127.0) }; /* 63.5 rounds to even */
    expect_out(&c, &r, want2);
    /* Sixteen NaN floats (the packet path skips them all): the empty reduction's range. */
    double in16[16];
    for (int i = 0; i < 16; i++)
        in16[i] = NAN;
    c = vec(QDQ_FLOAT32, 16, in16);
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, in16);
    expect_range(&c, &r, 0, INFINITY, -INFINITY, INFINITY, -INFINITY, FLT_MAX, -INFINITY);
}

/* range_given with lo > 0: that side does not count. [0.5, 1] signed 8-bit clamps to
 * [-1.007874, 1] and 0.25 survives as 0.2519685. */
static void t_range_given_one_sided(void)
{
    double in[5] = { 0.25, -2.0, 2.0, 0.5, 1.0 };
    op_case c = vec(QDQ_FLOAT32, 5, in);
    given(&c, 0.5, 1.0);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    float inv = 1.0f / 127.0f;
    CHECK(qdq_f32_bits(-128.0f * inv) == qdq_f32_bits(-1.007874f), "%s: -128/127 is %a",
          cur_test, -128.0f * inv);
    CHECK(qdq_f32_bits(32.0f * inv) == qdq_f32_bits(0.2519685f), "%s: 32/127 is %a", cur_test,
          32.0f * inv);
    double want[5] = { 0.2519685f, -1.007874f, 127.0f * inv, 64.0f * inv, 127.0f * inv };
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, 0.5, 1.0, -1.007874f, 1.0, 127.0, inv);
    /* hi < 0: [-1, -0.5] keeps lo = -1, scale 128, hi becomes 127 / 128. */
    double in2[3] = { -2.0, 0.75, -0.25 };
    c = vec(QDQ_FLOAT32, 3, in2);
    given(&c, -1.0, -0.5);
    run(&c, &r);
    expect_ok(&c, &r);
    double want2[3] = { -1.0, 0.75, -0.25 };
    expect_out(&c, &r, want2);
    expect_range(&c, &r, 0, -1.0, -0.5, -1.0, 0.9921875, 128.0, 0.0078125);
}

/* Unsigned, all data <= 0, no range_given: neither side counts (scale T_MAX, inv hi / qmax):
 * the output is what the rules give, garbage as in TensorFlow. */
static void t_unsigned_nonpositive(void)
{
    double in[2] = { -1.0, -2.0 };
    op_case c = vec(QDQ_FLOAT32, 2, in);
    c.a.signed_input = false;
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    float inv = -1.0f / 255.0f;
    double want[2] = { rintf(-1.0f * FLT_MAX) * inv, INFINITY }; /* -2 * FLT_MAX = -inf */
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, -2.0, -1.0, -0.0, -1.0, FLT_MAX, inv);
    double in2[3] = { 0.0, -1.0, -3.0 };
    c = vec(QDQ_FLOAT32, 3, in2);
    c.a.signed_input = false;
    run(&c, &r);
    expect_ok(&c, &r);
    double want2[3] = { 0.0, -0.0, NAN }; /* inv = 0 / 255; -3 * FLT_MAX = -inf, * 0 = NaN */
    expect_out(&c, &r, want2);
    expect_range(&c, &r, 0, -3.0, 0.0, 0.0, 0.0, FLT_MAX, 0.0);
}

/* 1-bit signed with narrow_range: qmin = qmax = 0; outputs are +-inf / NaN, no error. */
static void t_one_bit_narrow(void)
{
    double in[3] = { -1.0, 0.0, 0.5 };
    op_case c = vec(QDQ_FLOAT32, 3, in);
    c.a.num_bits = 1, c.a.narrow_range = true;
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    double want[3] = { -INFINITY, NAN, INFINITY };
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, -1.0, 0.5, NAN, 0.5, FLT_MAX, INFINITY);
}

/* ----------------- known values (docs/semantics.md, "Worked examples") ----------------- */

static void t_known_int8_from_data(void)
{
    double in[4] = { -1, -0.5, 0, 0.3 }, want[4] = { -1, -0.5, 0, 0.296875 };
    op_case c = vec(QDQ_FLOAT32, 4, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, -1.0, 0.3f, -1.0, 0.9921875, 128.0, 0.0078125);
}

static void t_known_scalar(void)
{
    double in[1] = { -3.5 }, want[1] = { -3.5 };
    op_case c = base(QDQ_FLOAT32, 0, NULL, 1, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    c.dt = QDQ_FLOAT64;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
}

static void t_known_int4(void)
{
    double in[6] = { -1, -0.5, 0, 0.3125, 0.8, 0.555 };
    double even[6] = { -1, -0.5, 0, 0.25, 0.75, 0.5 }, up[6] = { -1, -0.5, 0, 0.375, 0.75, 0.5 };
    op_case c = vec(QDQ_FLOAT32, 6, in);
    c.a.num_bits = 4;
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, even);
    expect_range(&c, &r, 0, -1.0, 0.8f, -1.0, 0.875, 8.0, 0.125);
    c.a.round_mode = QDQ_HALF_UP;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, up);
}

static void t_known_uint8_range_given(void)
{
    double in[4] = { -0.5, 0, 0.3, 0.8 };
    double want[4] = { 0, 0, 0.29803923f, 0.8000001f };
    op_case c = vec(QDQ_FLOAT32, 4, in);
    c.a.signed_input = false;
    given(&c, 0.0, 1.0);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, want);
    expect_range(&c, &r, 0, 0.0, 1.0, 0.0, 1.0, 255.0, 1.0f / 255.0f);
}

/* HALF_UP's quirks with a scale of exactly 1 (signed 25-bit, range [-2^24, 2^24 - 1]). */
static void t_known_half_up_quirks(void)
{
    double in[6] = { 0.49999997f, 8388609, 0.5, -0.5, 2.5, -8388609 };
    double up[6] = { 1, 8388610, 1, 0, 3, -8388608 };
    double even[6] = { 0, 8388609, 0, -0.0, 2, -8388609 };
    op_case c = vec(QDQ_FLOAT32, 6, in);
    c.a.num_bits = 25;
    given(&c, -16777216.0, 16777215.0);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, even);
    expect_range(&c, &r, 0, -16777216.0, 16777215.0, -16777216.0, 16777215.0, 1.0, 1.0);
    c.a.round_mode = QDQ_HALF_UP;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, up);
    /* float64: the same quirk at 2^52 (signed 54-bit, range [-2^53, 2^53 - 1]). */
    double in64[3] = { 0.49999999999999994, 4503599627370497.0, 4503599627370495.5 };
    double up64[3] = { 1, 4503599627370498.0, 4503599627370496.0 };
    double even64[3] = { 0, 4503599627370497.0, 4503599627370496.0 };
    c = vec(QDQ_FLOAT64, 3, in64);
    c.a.num_bits = 54;
    given(&c, -9007199254740992.0, 9007199254740991.0);
    run(&c, &r);
    expect_ok(&c, &r);
    expect_out(&c, &r, even64);
    expect_range(&c, &r, 0, -9007199254740992.0, 9007199254740991.0, -9007199254740992.0,
                 9007199254740991.0, 1.0, 1.0);
    c.a.round_mode = QDQ_HALF_UP;
    run(&c, &r);
    expect_out(&c, &r, up64);
}

/* The examples of docs/semantics.md, "Scale": [-10, 5] -> scale 12.8, hi 9.921875; [-10, 10] ->
 * scale 12.7, lo -10.07874. */
static void t_known_doc_examples(void)
{
    double in[2] = { -10, 5 };
    op_case c = vec(QDQ_FLOAT32, 2, in);
    op_result r;
    run(&c, &r);
    expect_ok(&c, &r);
    expect_range(&c, &r, 0, -10.0, 5.0, -10.0, 9.921875, 12.8f, 0.078125);
    double in2[2] = { -10, 10 };
    c = vec(QDQ_FLOAT32, 2, in2);
    run(&c, &r);
    expect_ok(&c, &r);
    float inv = 10.0f / 127.0f;
    CHECK(qdq_f32_bits(-128.0f * inv) == qdq_f32_bits(-10.07874f), "%s: -1280/127 is %a",
          cur_test, -128.0f * inv);
    expect_range(&c, &r, 0, -10.0, 10.0, -10.07874f, 10.0, 12.7f, inv);
}

/* ---------------------------- errors ---------------------------- */

static op_result plan_error(qdq_dtype dt, const int64_t *dims, int rank, qdq_attrs a)
{
    op_result r;
    memset(&r, 0, sizeof r);
    qdq_plan p;
    memset(&p, 0x5a, sizeof p);
    r.rc = qdq_plan_init(&p, dt, dims, rank, &a, &r.err);
    static const qdq_plan zero;
    if (r.rc)
        CHECK(!memcmp(&p, &zero, sizeof p), "%s: the plan is not zeroed on failure", cur_test);
    return r;
}

static void t_err_num_bits(void)
{
    int64_t d[1] = { 4 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.num_bits = 0;
    op_result r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "num_bits", ": 0", (char *)NULL);
    a.num_bits = 62;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "num_bits", "62", "signed_input_ 1", (char *)NULL);
    a.num_bits = 63, a.signed_input = false;
    r = plan_error(QDQ_FLOAT64, d, 1, a);
    expect_error(&r, "num_bits", "63", "signed_input_ 0", (char *)NULL);
    a.num_bits = -5;
    r = plan_error(QDQ_FLOAT16, d, 1, a);
    expect_error(&r, "num_bits", "-5", (char *)NULL);
    a.num_bits = 64, a.signed_input = true;
    r = plan_error(QDQ_BFLOAT16, d, 1, a);
    expect_error(&r, "num_bits", "64", (char *)NULL);
    a.num_bits = INT32_MIN;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "num_bits", "-2147483648", (char *)NULL);
    a.num_bits = INT32_MAX;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "num_bits", "2147483647", (char *)NULL);
    /* The limits themselves are valid. */
    a.num_bits = 61, a.signed_input = true;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    CHECK(r.rc == 0, "%s: 61 signed rejected: %s", cur_test, r.err.msg);
    a.num_bits = 62, a.signed_input = false;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    CHECK(r.rc == 0, "%s: 62 unsigned rejected: %s", cur_test, r.err.msg);
}

static void t_err_axis(void)
{
    int64_t d[2] = { 2, 3 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = -2;
    op_result r = plan_error(QDQ_FLOAT32, d, 2, a);
    expect_error(&r, "xis", "-2", (char *)NULL);
    a.axis = INT64_MIN;
    r = plan_error(QDQ_FLOAT32, d, 2, a);
    expect_error(&r, "xis", "-9223372036854775808", (char *)NULL);
    /* axis >= rank: TensorFlow's wording names the rank the axis needs and the actual rank. */
    a.axis = 2;
    r = plan_error(QDQ_FLOAT32, d, 2, a);
    expect_error(&r, "rank 3", "rank 2", (char *)NULL);
    a.axis = 0;
    r = plan_error(QDQ_FLOAT32, NULL, 0, a);
    expect_error(&r, "rank 1", "rank 0", (char *)NULL);
    a.axis = INT64_MAX; /* must not overflow while writing the message */
    r = plan_error(QDQ_FLOAT32, d, 2, a);
    expect_error(&r, "rank 2", (char *)NULL);
}

static void t_err_round_mode(void)
{
    int64_t d[1] = { 4 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.round_mode = 7;
    op_result r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "round_mode", "7", (char *)NULL);
    a.round_mode = -1;
    r = plan_error(QDQ_FLOAT32, d, 1, a);
    expect_error(&r, "round_mode", "-1", (char *)NULL);
}

static void t_err_dtype_and_dims(void)
{
    int64_t d[2] = { 2, -1 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    op_result r = plan_error(QDQ_FLOAT32, d, 2, a);
    expect_error(&r, "dims[1]", "-1", (char *)NULL);
    int64_t big[2] = { INT64_C(1) << 32, INT64_C(1) << 32 };
    r = plan_error(QDQ_FLOAT32, big, 2, a);
    expect_error(&r, "overflow", "4294967296", (char *)NULL);
    int64_t big2[3] = { INT64_C(1) << 40, INT64_C(1) << 20, INT64_C(1) << 10 };
    r = plan_error(QDQ_FLOAT64, big2, 3, a);
    expect_error(&r, "overflow", "dims[2]", (char *)NULL);
    int64_t okd[2] = { INT64_C(1) << 31, INT64_C(1) << 32 }; /* 2^63 elements: representable */
    r = plan_error(QDQ_FLOAT32, okd, 2, a);
    CHECK(r.rc == 0, "%s: 2^63 elements rejected: %s", cur_test, r.err.msg);
    r = plan_error((qdq_dtype)9, okd, 2, a);
    expect_error(&r, "dtype", "9", (char *)NULL);
    r = plan_error(QDQ_FLOAT32, okd, -1, a);
    expect_error(&r, "rank", "-1", (char *)NULL);
}

static void t_err_range_given(void)
{
    double in[3] = { 0.5, 1.5, -2 };
    op_case c = vec(QDQ_FLOAT32, 3, in);
    op_result r;
    given(&c, NAN, 1.0);
    run(&c, &r);
    expect_error(&r, "input_min", "NaN", (char *)NULL);
    given(&c, -1.0, NAN);
    run(&c, &r);
    expect_error(&r, "input_max", "NaN", (char *)NULL);
    c.dt = QDQ_FLOAT16;
    given(&c, NAN, NAN);
    run(&c, &r);
    expect_error(&r, "Invalid range", "NaN", (char *)NULL);
    c.dt = QDQ_FLOAT32;
    given(&c, 1.0, 0.0);
    run(&c, &r);
    expect_error(&r, "Invalid range", "input_min 1 > input_max 0", (char *)NULL);
    c.dt = QDQ_FLOAT64;
    given(&c, 0.25, -0.75);
    run(&c, &r);
    expect_error(&r, "input_min 0.25", "input_max -0.75", (char *)NULL);
    /* A non-scalar bound with axis -1. */
    c.dt = QDQ_FLOAT32;
    given(&c, -1.0, 1.0);
    c.n_min = 2, c.min[1] = -1.0;
    run(&c, &r);
    expect_error(&r, "input_min must be a scalar", "got 2 values", (char *)NULL);
    c.n_min = 1, c.n_max = 3, c.max[1] = c.max[2] = 1.0;
    run(&c, &r);
    expect_error(&r, "input_max must be a scalar", "got 3 values", (char *)NULL);
    c.n_min = 0, c.n_max = 1;
    run(&c, &r);
    expect_error(&r, "input_min must be a scalar", "got 0 values", (char *)NULL);
}

static void t_err_range_given_per_channel(void)
{
    int64_t d[2] = { 2, 4 };
    double in[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    op_case c = base(QDQ_FLOAT32, 2, d, 8, in);
    c.a.axis = 1, c.a.range_given = true;
    c.n_min = c.n_max = 4;
    for (int i = 0; i < 4; i++)
        c.min[i] = -1, c.max[i] = 1;
    c.min[2] = 3, c.max[2] = 2;
    op_result r;
    run(&c, &r);
    expect_error(&r, "Invalid range", "channel 2", "input_min 3 > input_max 2", (char *)NULL);
    c.min[2] = -1, c.max[3] = NAN;
    run(&c, &r);
    expect_error(&r, "channel 3", "NaN", (char *)NULL);
    c.max[3] = 1;
    c.n_min = 3;
    run(&c, &r);
    expect_error(&r, "input_min_tensor has incorrect size", "was 3 expected 4", "dim 1",
                 (char *)NULL);
    c.n_min = 4, c.n_max = 5, c.max[4] = 1;
    run(&c, &r);
    expect_error(&r, "input_max_tensor has incorrect size", "was 5 expected 4", (char *)NULL);
    c.n_max = 1; /* a scalar where a vector is due */
    run(&c, &r);
    expect_error(&r, "input_max_tensor has incorrect size", "was 1 expected 4", (char *)NULL);
    /* The valid per-channel bounds work. */
    c.n_max = 4;
    run(&c, &r);
    expect_ok(&c, &r);
}

/*
 * NaN elements in a channel whose range (and so inverse scale) is NaN: NaN times NaN would keep
 * whichever payload the compiler put first, and kernels differ. Every element of such a channel
 * must come out as the inverse scale's NaN, the same bytes for every split of the apply (found
 * by fuzz_query); per-channel too, beside a channel with a finite range.
 */
static void t_nan_times_nan(void)
{
    enum { NMAX = 40 };
    /* 37 elements per tensor: Eigen's order ends in scalars that keep a NaN (a multiple of its
     * packet would drop them, giving an infinite range). */
    static const struct { int rank; int64_t dims[3]; int axis; } shapes[] = {
        { 1, { 37 }, -1 }, { 2, { 8, 5 }, 1 }, { 2, { 5, 8 }, 0 }, { 3, { 2, 5, 4 }, 1 },
    };
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (int d = 0; d < 4; d++) {
            qdq_dtype dt = (qdq_dtype)d;
            size_t es = qdq_dtype_size(dt);
            unsigned char in[NMAX * 8], whole[NMAX * 8], split[NMAX * 8];
            qdq_attrs a = QDQ_ATTRS_DEFAULT;
            a.axis = shapes[sh].axis;
            qdq_plan p;
            qdq_error err;
            CHECK(qdq_plan_init(&p, dt, shapes[sh].dims, shapes[sh].rank, &a, &err) == 0,
                  "%s: plan: %s", cur_test, err.msg);
            p.isa = cur_isa;
            const int N = (int)p.count;
            uint64_t ch[NMAX];
            bool nan_inv[NMAX] = { false }, any = false;
            for (int i = 0; i < N; i++) { /* quiet and signalling NaNs, both signs, many payloads */
                ch[i] = p.channels == 1 ? 0 : ((uint64_t)i / p.inner) % p.channels;
                uint64_t pay = (uint64_t)(i * 2654435761u);
                if (ch[i] == 1) { /* a channel with a finite range */
                    tu_store(dt, in, (size_t)i, i * 0.25 - 3);
                } else if (dt == QDQ_FLOAT64) {
                    uint64_t bits = 0x7ff0000000000000ull | (pay & 0xfffffffffffffull) | 1u;
                    bits |= (uint64_t)(i & 1) << 63;
                    memcpy(in + 8 * i, &bits, 8);
                } else if (dt == QDQ_FLOAT32) {
                    uint32_t bits = 0x7f800000u | ((uint32_t)pay & 0x7fffffu) | 1u;
                    bits |= (uint32_t)(i & 1) << 31;
                    memcpy(in + 4 * i, &bits, 4);
                } else {
                    uint16_t exp = dt == QDQ_FLOAT16 ? 0x7c00 : 0x7f80;
                    uint16_t man = dt == QDQ_FLOAT16 ? 0x3ff : 0x7f;
                    uint16_t bits = (uint16_t)(exp | (pay & man) | 1u | (i & 1) << 15);
                    memcpy(in + 2 * i, &bits, 2);
                }
            }
            void *acc = malloc(qdq_acc_size(&p)), *params = malloc(qdq_params_size(&p));
            CHECK(qdq_run(&p, in, whole, NULL, 0, NULL, 0, acc, params, &err) == 0, "%s: run",
                  cur_test);
            for (uint64_t c = 0; c < p.channels; c++) {
                qdq_range r;
                qdq_params_get(&p, params, c, &r);
                nan_inv[c] = isnan(r.inverse_scale), any |= nan_inv[c];
                CHECK(!(c == 1 && nan_inv[c]), "%s (%s, shape %zu): the finite channel's inverse "
                      "scale is NaN", cur_test, qdq_dtype_name(dt), sh);
            }
            CHECK(any, "%s (%s, shape %zu): no channel has a NaN inverse scale", cur_test,
                  qdq_dtype_name(dt), sh);
            for (int i = 0; i < N; i++) { /* every element of a NaN channel: the same NaN */
                int first = 0;
                while (ch[first] != ch[i])
                    first++;
                CHECK(!nan_inv[ch[i]] || !memcmp(whole + es * first, whole + es * i, es),
                      "%s (%s, shape %zu, isa %d): element %d is another NaN than element %d",
                      cur_test, qdq_dtype_name(dt), sh, (int)cur_isa, i, first);
            }
            for (int j = 0; j <= N; j++) {
                memcpy(split, in, (size_t)N * es);
                qdq_apply(&p, params, split, split, 0, (uint64_t)j);
                qdq_apply(&p, params, split, split, (uint64_t)j, (uint64_t)N);
                CHECK(!memcmp(split, whole, (size_t)N * es), "%s (%s, shape %zu, isa %d): split at %d "
                      "differs", cur_test, qdq_dtype_name(dt), sh, (int)cur_isa, j);
            }
            free(acc), free(params);
        }
}

/* qdq_run of the tensor at in with the portable family and with the best one: the same
 * parameters and the same output bytes. */
static void families_agree(qdq_dtype dt, const int64_t *dims, int rank, int axis, const void *in,
                           const char *label)
{
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis;
    qdq_plan p;
    qdq_error err;
    CHECK(qdq_plan_init(&p, dt, dims, rank, &a, &err) == 0, "%s: plan: %s", cur_test, err.msg);
    size_t es = qdq_dtype_size(dt), pn = qdq_params_size(&p);
    uint64_t n = p.count;
    unsigned char *out[2];
    void *acc = malloc(qdq_acc_size(&p)), *par[2] = { malloc(pn), malloc(pn) };
    qdq_isa isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
    for (int k = 0; k < 2; k++) {
        p.isa = isas[k];
        out[k] = malloc(n * es);
        CHECK(qdq_run(&p, in, out[k], NULL, 0, NULL, 0, acc, par[k], &err) == 0, "%s: run",
              cur_test);
    }
    CHECK(!memcmp(par[0], par[1], pn), "%s (%s): parameters differ between families", cur_test,
          label);
    uint64_t bad = 0, first = n;
    for (uint64_t i = 0; i < n; i++)
        if (memcmp(out[0] + i * es, out[1] + i * es, es) != 0)
            bad++, first = first < i ? first : i;
    CHECK(bad == 0, "%s (%s): %llu of %llu outputs differ between families, first %llu",
          cur_test, label, (unsigned long long)bad, (unsigned long long)n,
          (unsigned long long)first);
    free(out[0]), free(out[1]), free(acc), free(par[0]), free(par[1]);
}

/*
 * Last-axis tensors over 4 MiB take the kernels' from-memory paths (reduction along the rows with
 * the next rows fetched ahead, row-by-row apply), and rows of 4 KiB or more are reduced along the
 * rows in cache too; the random tests' sizes never reach either, and seldom the rows of 1 KiB to
 * 1984 bytes (float32 and float64) applied eight at a time: the best family must give the
 * portable family's bytes, outputs and parameters, on every dtype, with channels past a panel
 * (512 channels down the columns, 2048 along the rows), past the last line and past the last
 * whole vector, rows past the last eight (and four), and channels that need Eigen's order (zeros
 * of both signs, NaN).
 */
static void t_far_last_axis(void)
{
    if (qdq_isa_best() == QDQ_ISA_PORTABLE)
        return;
    static const struct {
        int64_t C, rows; /* rows 0: just over 5 MiB */
    } shapes[] = { { 601, 0 }, { 2113, 0 }, { 2113, 37 }, { 256, 19 }, { 300, 8 },
                   { 495, 23 }, { 128, 13 }, { 247, 21 } };
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (int d = 0; d < 4; d++) {
            qdq_dtype dt = (qdq_dtype)d;
            size_t es = qdq_dtype_size(dt);
            int64_t C = shapes[sh].C, rows = shapes[sh].rows;
            if (rows == 0)
                rows = (int64_t)((5u << 20) / ((uint64_t)C * es)) + 3;
            uint64_t n = (uint64_t)(rows * C);
            unsigned char *in = malloc(n * es);
            uint64_t s = 0x2545f4914f6cdd1dull;
            for (uint64_t i = 0; i < n; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                int64_t c = (int64_t)(i % (uint64_t)C), r = (int64_t)(i / (uint64_t)C);
                double v = ldexp((double)(int64_t)(s >> 40) - (double)(1 << 23),
                                 -20 - (int)(c % 7));
                if (c == 5) /* non-negative with zeros of both signs: the minimum is a zero */
                    v = s % 3 == 0 ? ((s >> 8) % 2 ? 0.0 : -0.0) : fabs(v);
                if (c == 9) /* non-positive, its maximum -0.0 */
                    v = s % 5 == 0 ? -0.0 : -fabs(v) - 1e-3;
                if (c == C - 1 && r == rows / 2) /* a NaN in the tail channel */
                    v = NAN;
                if ((c == 513 && r == 7) || (c == 2050 && r == rows - 1)) /* and in later panels */
                    v = NAN;
                tu_store(dt, in, i, v);
            }
            int64_t dims[2] = { rows, C };
            char label[64];
            snprintf(label, sizeof label, "%s, %" PRId64 " x %" PRId64, qdq_dtype_name(dt), rows,
                     C);
            families_agree(dt, dims, 2, 1, in, label);
            free(in);
        }
}

/*
 * Channels of values <= 0 holding +0.0: the kernels' three reductions on the bits cannot tell
 * whether -0.0 is there too (the values with the sign bit clear are all +0.0), so the kernel
 * looks for it itself. With -0.0 the range needs Eigen's order, without it the maximum is +0.0:
 * the best family must give the portable family's bytes, per tensor, on axis 0 (runs of channels)
 * and on the last axis (rows), where the -0.0 falls anywhere in the channel.
 */
static void t_neg_zero_open(void)
{
    if (qdq_isa_best() == QDQ_ISA_PORTABLE)
        return;
    /* per tensor with -0.0, per tensor without, axis 0, last axis */
    static const int64_t shapes[4][2] = { { 1000, 0 }, { 1000, 0 }, { 40, 37 }, { 53, 40 } };
    for (int d = 0; d < 4; d++) {
        if ((qdq_dtype)d == QDQ_FLOAT64) /* reduced on floats, not on the bits */
            continue;
        for (int l = 0; l < 4; l++) {
            qdq_dtype dt = (qdq_dtype)d;
            int64_t dims[2] = { shapes[l][0], shapes[l][1] };
            int rank = l < 2 ? 1 : 2, axis = l < 2 ? -1 : l - 2;
            int64_t C = l < 2 ? 1 : l == 2 ? dims[0] : dims[1];
            uint64_t n = (uint64_t)(dims[0] * (l < 2 ? 1 : dims[1]));
            unsigned char *in = malloc(n * qdq_dtype_size(dt));
            uint64_t s = 0x9e3779b97f4a7c15ull;
            for (uint64_t i = 0; i < n; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                uint64_t c = l < 2 ? (uint64_t)(1 - l) : l == 2 ? i / (uint64_t)dims[1]
                                                                : i % (uint64_t)C;
                double v = -ldexp((double)(s >> 44) + 1, -10);
                if (s % 7 == 0)
                    v = 0.0;
                if (c % 2 == 1 && (s >> 20) % 29 == 0) /* -0.0 in the odd channels only */
                    v = -0.0;
                tu_store(dt, in, i, v);
            }
            char label[64];
            snprintf(label, sizeof label, "%s, axis %d%s", qdq_dtype_name(dt), axis,
                     l == 1 ? ", no -0.0" : "");
            families_agree(dt, dims, rank, axis, in, label);
            free(in);
        }
    }
}

/*
 * Per channel with the range from the data, qdq_run takes blocks of channels through the whole
 * op (qdq_run_channels: up to 128 KiB a block), which the random tests' small tensors never
 * split: on axis 0 and on a middle axis, with channels of several blocks, a NaN channel and one
 * whose minimum is a zero of either sign (both read the input again, in Eigen's order, which in
 * place must still be the input), qdq_run in place gives the bytes and parameters of the steps
 * one by one over the whole tensor.
 */
static void t_blocks_of_channels(void)
{
    static const int64_t shapes[3][3] = { { 40, 5000, 0 }, { 3, 7, 9000 }, { 9, 2, 70000 } };
    static const int ranks[3] = { 2, 3, 3 }, axes[3] = { 0, 1, 1 };
    for (int d = 0; d < 4; d++)
        for (int l = 0; l < 3; l++) {
            qdq_dtype dt = (qdq_dtype)d;
            qdq_attrs a = QDQ_ATTRS_DEFAULT;
            a.axis = axes[l];
            qdq_plan p;
            qdq_error err;
            CHECK(qdq_plan_init(&p, dt, shapes[l], ranks[l], &a, &err) == 0, "%s: plan: %s",
                  cur_test, err.msg);
            p.isa = cur_isa;
            size_t es = qdq_dtype_size(dt), pn = qdq_params_size(&p);
            uint64_t n = p.count;
            unsigned char *in = malloc(n * es), *run = malloc(n * es), *steps = malloc(n * es);
            void *acc = malloc(qdq_acc_size(&p)), *par[2] = { malloc(pn), malloc(pn) };
            uint64_t s = 0x2545f4914f6cdd1dull;
            for (uint64_t i = 0; i < n; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                uint64_t c = i / p.inner % p.channels;
                double v = ldexp((double)(int64_t)(s >> 40) - (double)(1 << 23), -20 - (int)c % 5);
                if (c == 1 && i % 977 == 5)
                    v = NAN;
                if (c == 2)
                    v = s % 3 == 0 ? ((s >> 8) % 2 ? 0.0 : -0.0) : fabs(v);
                tu_store(dt, in, i, v);
            }
            memcpy(run, in, n * es);
            CHECK(qdq_run(&p, run, run, NULL, 0, NULL, 0, acc, par[0], &err) == 0, "%s: run",
                  cur_test);
            qdq_acc_init(&p, acc);
            qdq_reduce(&p, acc, in, 0, n);
            qdq_params_from_acc(&p, acc, in, par[1]);
            qdq_apply(&p, par[1], in, steps, 0, n);
            CHECK(!memcmp(par[0], par[1], pn), "%s (%s, shape %d): parameters differ", cur_test,
                  qdq_dtype_name(dt), l);
            CHECK(!memcmp(run, steps, n * es), "%s (%s, shape %d): outputs differ", cur_test,
                  qdq_dtype_name(dt), l);
            free(in), free(run), free(steps), free(acc), free(par[0]), free(par[1]);
        }
}

/*
 * bfloat16 narrowing ties. The AVX2 kernels round float32 products to bfloat16 a pair of vectors
 * at a time (even and odd elements apart), where an exact half (lower 16 bits 0x8000) goes to the
 * even neighbour. Ranges from bfloat16 data seldom make such products, so this drives the
 * kernels directly: every bfloat16 input, scale 1 and inverse scales of nine significant bits
 * (257/256 rounds its ties down, 259/256 up; y * inv is a tie whenever y is a power of two) and
 * some arbitrary ones, with and without the clamp, both rounding modes: the AVX2 family must give
 * the portable family's bytes, and ties must have occurred at even and odd positions, both ways.
 */
static void t_bf16_ties(void)
{
#ifdef QDQ_HAVE_AVX2
    if (qdq_isa_best() == QDQ_ISA_PORTABLE)
        return;
    static const float pairs[][2] = { { 1.0f, 257.0f / 256 }, { 1.0f, 259.0f / 256 },
                                      { 0.5f, 515.0f / 512 }, { 3.0f, 0x1.0fp-7f },
                                      { 96.25f, 1.0f / 96.25f }, { 1e-3f, 0x1.0080p+3f } };
    uint16_t *in = malloc(65536 * 2), *out[3];
    for (int k = 0; k < 3; k++)
        out[k] = malloc(65536 * 2);
    for (int i = 0; i < 65536; i++)
        in[i] = (uint16_t)i;
    float lo = -3e38f, hi = 3e38f;
    uint64_t ties[2][2] = { { 0, 0 }, { 0, 0 } }; /* [odd position][rounds up] */
    for (size_t q = 0; q < sizeof pairs / sizeof pairs[0]; q++)
        for (int clamp = 0; clamp < 2; clamp++)
            for (int up = 0; up < 2; up++) {
                const float *sc = &pairs[q][0], *iv = &pairs[q][1];
                qdq_kernels_portable[QDQ_BFLOAT16].apply_run(in, out[0], 65536, &lo, &hi, sc, iv,
                                                             clamp, up);
                qdq_kernels_avx2[QDQ_BFLOAT16].apply_run(in, out[1], 65536, &lo, &hi, sc, iv,
                                                         clamp, up);
                qdq_kernels_avx2[QDQ_BFLOAT16].apply_run_noties(in, out[2], 65536, &lo, &hi, sc,
                                                                iv, clamp, up);
                int bad = 0, badnt = 0;
                for (int i = 0; i < 65536; i++) {
                    bad += out[0][i] != out[1][i];
                    float x = (float)tu_load(QDQ_BFLOAT16, in, (size_t)i), t = x * *sc;
                    float prod = (up ? floorf(t + 0.5f) : rintf(t)) * *iv;
                    uint32_t b;
                    memcpy(&b, &prod, 4);
                    bool tie = (b & 0xffffu) == 0x8000u;
                    if (tie && (b & 0x7f800000u) != 0x7f800000u)
                        ties[i & 1][(b >> 16) & 1]++;
                    /* Without the tie fix, a tie rounds half up; all else is the same. */
                    badnt += out[2][i] != (tie ? (uint16_t)((b + 0x8000u) >> 16) : out[0][i]);
                }
                CHECK(bad == 0, "%s: scale %g, inverse %a, clamp %d, half_up %d: %d of 65536 "
                      "outputs differ between families", cur_test, (double)*sc, (double)*iv,
                      clamp, up, bad);
                CHECK(badnt == 0, "%s: scale %g, inverse %a, clamp %d, half_up %d: %d of 65536 "
                      "outputs of apply_run_noties are not the nearest, ties up", cur_test,
                      (double)*sc, (double)*iv, clamp, up, badnt);
            }
    CHECK(ties[0][0] && ties[0][1] && ties[1][0] && ties[1][1],
          "%s: ties at even positions down/up %llu/%llu, odd %llu/%llu: each kind must occur",
          cur_test, (unsigned long long)ties[0][0], (unsigned long long)ties[0][1],
          (unsigned long long)ties[1][0], (unsigned long long)ties[1][1]);
    free(in), free(out[0]), free(out[1]), free(out[2]);
#endif
}

/*
 * The same ties through the whole op. Per tensor, bfloat16's parameters say whether any product
 * the transform can make (every integer between the rounded, scaled bounds of the elements) is a
 * tie; the AVX2 kernel drops its tie fix when none is. Data in [-116, h], signed 8 bits: the scale
 * comes from the minimum, 128/116, and the inverse scale is 116/128 = 29/32, so 8.125 scales to 9
 * and 9 * 29/32 = 261/32 is a tie whose lower neighbour (260/32 = 8.125) is the even one. With
 * h = 8.125 that tie is the greatest product; with h = 100 it is inside. From the data and
 * range_given, both rounding modes: each family gives 8.125 back for 8.125, the families agree
 * on every byte, and ties must have occurred.
 */
static void t_bf16_ties_op(void)
{
    enum { N = 32768 };
    static const float highs[] = { 8.125f, 100.0f };
    uint16_t *in = malloc(N * 2), *out[2] = { malloc(N * 2), malloc(N * 2) };
    uint64_t ties = 0;
    for (size_t hx = 0; hx < sizeof highs / sizeof highs[0]; hx++) {
        double l = -116, h = highs[hx];
        size_t at = 2; /* where 8.125 is */
        tu_store(QDQ_BFLOAT16, in, 0, l), tu_store(QDQ_BFLOAT16, in, 1, h);
        tu_store(QDQ_BFLOAT16, in, 2, 8.125);
        for (size_t i = 3; i < N; i++) /* a grid over [l, h], rounded to bfloat16 */
            tu_store(QDQ_BFLOAT16, in, i, l + (h - l) * (double)i / N);
        for (int given = 0; given < 2; given++)
            for (int up = 0; up < 2; up++) {
                qdq_attrs a = QDQ_ATTRS_DEFAULT;
                a.range_given = given, a.round_mode = up ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
                int64_t dims[1] = { N };
                qdq_plan p;
                qdq_error err;
                CHECK(qdq_plan_init(&p, QDQ_BFLOAT16, dims, 1, &a, &err) == 0, "%s: plan",
                      cur_test);
                uint16_t bmin = qdq_f32_to_bf16((float)l), bmax = qdq_f32_to_bf16((float)h);
                size_t pn = qdq_params_size(&p);
                void *acc = malloc(qdq_acc_size(&p)), *par[2] = { malloc(pn), malloc(pn) };
                qdq_isa isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
                for (int k = 0; k < 2; k++) {
                    p.isa = isas[k];
                    CHECK(qdq_run(&p, in, out[k], &bmin, 1, &bmax, 1, acc, par[k], &err) == 0,
                          "%s: run: %s", cur_test, err.msg);
                    CHECK(tu_load(QDQ_BFLOAT16, out[k], at) == 8.125,
                          "%s: h %g, range_given %d, half_up %d, isa %d: 8.125 gave %g", cur_test,
                          h, given, up, (int)isas[k], tu_load(QDQ_BFLOAT16, out[k], at));
                }
                CHECK(!memcmp(par[0], par[1], pn) && !memcmp(out[0], out[1], N * 2),
                      "%s: h %g, range_given %d, half_up %d: the families differ", cur_test, h,
                      given, up);
                qdq_range r;
                qdq_params_get(&p, par[0], 0, &r);
                float sc = (float)r.scale, iv = (float)r.inverse_scale;
                float lo = (float)r.output_min, hi = (float)r.output_max;
                for (size_t i = 0; i < N; i++) {
                    float x = (float)tu_load(QDQ_BFLOAT16, in, i);
                    float t = (given ? fmaxf(lo, fminf(hi, x)) : x) * sc;
                    float prod = (up ? floorf(t + 0.5f) : rintf(t)) * iv;
                    uint32_t b;
                    memcpy(&b, &prod, 4);
                    ties += (b & 0x1ffffu) == 0x8000u; /* a tie, rounding down to even */
                }
                free(acc), free(par[0]), free(par[1]);
            }
    }
    CHECK(ties > 0, "%s: no product was a tie rounding down", cur_test);
    free(in), free(out[0]), free(out[1]);
}

typedef struct named_test {
    const char *name;
    void (*fn)(void);
    int per_isa; /* runs the op: once per kernel family */
} named_test;

static const named_test tests[] = {
    { "all_zeros", t_all_zeros, 1 },
    { "all_zeros_mixed_signs", t_all_zeros_mixed_signs, 1 },
    { "single_value", t_single_value, 1 },
    { "empty", t_empty, 1 },
    { "inf_poisons_output", t_inf_poisons, 1 },
    { "nan_elements", t_nan_elements, 1 },
    { "nan_times_nan", t_nan_times_nan, 1 },
    { "far_last_axis", t_far_last_axis, 0 },
    { "neg_zero_open", t_neg_zero_open, 0 },
    { "blocks_of_channels", t_blocks_of_channels, 1 },
    { "bf16_ties", t_bf16_ties, 0 },
    { "bf16_ties_op", t_bf16_ties_op, 0 },
    { "range_given_one_sided", t_range_given_one_sided, 1 },
    { "unsigned_nonpositive", t_unsigned_nonpositive, 1 },
    { "one_bit_narrow", t_one_bit_narrow, 1 },
    { "known_int8_from_data", t_known_int8_from_data, 1 },
    { "known_scalar", t_known_scalar, 1 },
    { "known_int4", t_known_int4, 1 },
    { "known_uint8_range_given", t_known_uint8_range_given, 1 },
    { "known_half_up_quirks", t_known_half_up_quirks, 1 },
    { "known_doc_examples", t_known_doc_examples, 1 },
    { "err_num_bits", t_err_num_bits, 0 },
    { "err_axis", t_err_axis, 0 },
    { "err_round_mode", t_err_round_mode, 0 },
    { "err_dtype_and_dims", t_err_dtype_and_dims, 0 },
    { "err_range_given", t_err_range_given, 1 },
    { "err_range_given_per_channel", t_err_range_given_per_channel, 1 },
};

int main(int argc, char **argv)
{
    qdq_isa isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
    int n_isa = isas[1] == isas[0] ? 1 : 2;
    for (size_t t = 0; t < sizeof tests / sizeof tests[0]; t++) {
        if (argc > 1 && strcmp(argv[1], tests[t].name))
            continue;
        for (int i = 0; i < (tests[t].per_isa ? n_isa : 1); i++) {
            int before = check_failed;
            cur_test = tests[t].name, cur_isa = isas[i];
            tests[t].fn();
            printf("%s %s (isa %d)\n", check_failed == before ? "ok  " : "FAIL", tests[t].name,
                   (int)cur_isa);
        }
    }
    return check_done();
}
