/*
 * The raw form's query strings (proto_query_arg), the body check and bounds conversion
 * (proto_raw_finish), and the X-QDQ-* header values (proto_ranges_format, proto_shape_format).
 * Invalid queries are data: the query, the status, and a word the message must contain.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto.h"
#include "qdq_half.h"
#include "testutil.h"

static const proto_limits lim = { 1000000, 8, 64, 1 << 26 };

/*
 * Feeds "k=v&k=v" (already percent-decoded) to proto_query_arg; a key without '=' gets "".
 * Returns the first failure's status.
 */
static int query(proto_request *req, const char *qs, const proto_limits *l, qdq_error *err)
{
    char *s = strdup(qs), *save = NULL;
    int rc = 0;
    for (char *kv = strtok_r(s, "&", &save); kv && !rc; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = 0;
        rc = proto_query_arg(req, kv, eq ? eq + 1 : "", l, err);
    }
    free(s);
    return rc;
}

static void valid_keys(void)
{
    proto_request r;
    qdq_error err = { 0 };
    proto_request_init(&r);
    int rc = query(&r, "dtype=float64&shape=2,3,4&num_bits=4&signed_input=false&range_given=true"
                   "&round_mode=HALF_UP&narrow_range=1&axis=1&input_min=-1,-2,-3"
                   "&input_max=1,2,Infinity", &lim, &err);
    CHECK(rc == 0, "every key: %d %s", rc, err.msg);
    CHECK(r.dtype == QDQ_FLOAT64 && r.dtype_given, "dtype");
    CHECK(r.shape_given && r.rank == 3 && r.dims[0] == 2 && r.dims[1] == 3 && r.dims[2] == 4 &&
          r.count == 24, "shape");
    CHECK(r.attrs.num_bits == 4 && !r.attrs.signed_input && r.attrs.range_given &&
          r.attrs.round_mode == QDQ_HALF_UP && r.attrs.narrow_range && r.attrs.axis == 1,
          "attrs");
    CHECK(r.min_text && !strcmp(r.min_text, "-1,-2,-3") && !r.min, "min kept as text");
    rc = proto_raw_finish(&r, 24 * 8, &lim, &err);
    CHECK(rc == 0, "finish: %d %s", rc, err.msg);
    CHECK(r.form == PROTO_FORM_RAW && r.count == 24, "finish keeps the shape");
    CHECK(r.n_min == 3 && r.n_max == 3 && !r.min_text && !r.max_text, "bounds converted");
    if (r.min && r.max) {
        const double *mn = r.min, *mx = r.max;
        CHECK(mn[0] == -1 && mn[1] == -2 && mn[2] == -3, "min values");
        CHECK(mx[0] == 1 && mx[1] == 2 && isinf(mx[2]) && mx[2] > 0, "max values");
    }
    proto_request_clear(&r);

    /* Defaults untouched by a query without attributes; the other spellings. */
    proto_request_init(&r);
    rc = query(&r, "signed_input=0&narrow_range=false&range_given=True&axis=-1&num_bits=16"
               "&round_mode=HALF_TO_EVEN", &lim, &err);
    CHECK(rc == 0 && !r.attrs.signed_input && !r.attrs.narrow_range && r.attrs.range_given &&
          r.attrs.axis == -1 && r.attrs.num_bits == 16 &&
          r.attrs.round_mode == QDQ_HALF_TO_EVEN, "spellings: %d %s", rc, err.msg);
    CHECK(!r.dtype_given && r.dtype == QDQ_FLOAT32 && !r.shape_given, "dtype default");
    proto_request_clear(&r);

    /* Every dtype name. */
    static const struct { const char *name; qdq_dtype dt; } names[] = {
        { "float32", QDQ_FLOAT32 }, { "float64", QDQ_FLOAT64 }, { "float16", QDQ_FLOAT16 },
        { "half", QDQ_FLOAT16 },    { "bfloat16", QDQ_BFLOAT16 }, { "FP32", QDQ_FLOAT32 },
        { "FP64", QDQ_FLOAT64 },    { "FP16", QDQ_FLOAT16 },    { "BF16", QDQ_BFLOAT16 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        proto_request_init(&r);
        rc = proto_query_arg(&r, "dtype", names[i].name, &lim, &err);
        CHECK(rc == 0 && r.dtype == names[i].dt, "dtype %s", names[i].name);
        proto_request_clear(&r);
    }

    /* Shapes: scalar, zero dims, leading zeros, overflow order as in the core. */
    static const struct { const char *s; int rank; uint64_t count; } shapes[] = {
        { "", 0, 1 }, { "7", 1, 7 }, { "0", 1, 0 }, { "2,0,5", 3, 0 }, { "007,1", 2, 7 },
        { "1,1,1,1,1,1,1,1", 8, 1 }, { "0,4611686018427387904,4611686018427387904", 3, 0 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        proto_request_init(&r);
        rc = proto_query_arg(&r, "shape", shapes[i].s, &lim, &err);
        CHECK(rc == 0 && r.rank == shapes[i].rank && r.count == shapes[i].count,
              "shape \"%s\": %d %s rank %d count %llu", shapes[i].s, rc, err.msg, r.rank,
              (unsigned long long)r.count);
        proto_request_clear(&r);
    }

    /* Integers at the edges of their types (the core judges the values). */
    proto_request_init(&r);
    rc = query(&r, "axis=-9223372036854775808&num_bits=-2147483648", &lim, &err);
    CHECK(rc == 0 && r.attrs.axis == INT64_MIN && r.attrs.num_bits == INT32_MIN, "int edges");
    proto_request_clear(&r);
    proto_request_init(&r);
    rc = query(&r, "axis=9223372036854775807&num_bits=2147483647", &lim, &err);
    CHECK(rc == 0 && r.attrs.axis == INT64_MAX && r.attrs.num_bits == INT32_MAX, "int edges +");
    proto_request_clear(&r);
}

static const struct bad {
    const char *query;
    int code;
    const char *word;
} bad[] = {
    { "num_bit=8", QDQ_EINVAL, "unknown query parameter \"num_bit\"" },
    { "Dtype=float32", QDQ_EINVAL, "unknown query parameter" },
    { "=1", QDQ_EINVAL, "unknown query parameter \"\"" },
    { "axis=1&axis=1", QDQ_EINVAL, "\"axis\" is given twice" },
    { "dtype=float32&dtype=float32", QDQ_EINVAL, "\"dtype\" is given twice" },
    { "shape=2&shape=2", QDQ_EINVAL, "\"shape\" is given twice" },
    { "input_min=1&input_min=1", QDQ_EINVAL, "\"input_min\" is given twice" },
    { "dtype=float", QDQ_EINVAL, "unknown dtype \"float\"" },
    { "dtype=", QDQ_EINVAL, "unknown dtype" },
    { "dtype=int8", QDQ_EINVAL, "unknown dtype" },
    { "dtype=Float32", QDQ_EINVAL, "unknown dtype" },
    { "shape=2,,3", QDQ_EINVAL, "dimension 1 is empty" },
    { "shape=2,3,", QDQ_EINVAL, "dimension 2 is empty" },
    { "shape=,3", QDQ_EINVAL, "dimension 0 is empty" },
    { "shape=,", QDQ_EINVAL, "dimension 0 is empty" },
    { "shape=2,-3", QDQ_EINVAL, "dimension 1 \"-3\" is not a non-negative integer" },
    { "shape=+2", QDQ_EINVAL, "\"+2\" is not a non-negative integer" },
    { "shape=2, 3", QDQ_EINVAL, "\" 3\" is not" },
    { "shape=2x3", QDQ_EINVAL, "\"2x3\" is not" },
    { "shape=[2,3]", QDQ_EINVAL, "\"[2\" is not" },
    { "shape=1.5", QDQ_EINVAL, "\"1.5\" is not" },
    { "shape=1,1,1,1,1,1,1,1,1", PROTO_ETOOBIG, "more than 8 dimensions" },
    { "shape=4611686018427387905", PROTO_ETOOBIG, "larger than 2^62" },
    { "shape=99999999999999999999999", PROTO_ETOOBIG, "larger than 2^62" },
    { "shape=4611686018427387904,4611686018427387904,0", PROTO_ETOOBIG, "overflows 64 bits" },
    { "shape=1001,1000", PROTO_ETOOBIG, "shape [1001,1000] has 1001000 elements; the limit is "
      "1000000" },
    { "num_bits=8x", QDQ_EINVAL, "num_bits: \"8x\" is not an integer" },
    { "num_bits=", QDQ_EINVAL, "num_bits: \"\" is not an integer" },
    { "num_bits=-", QDQ_EINVAL, "not an integer" },
    { "num_bits=+8", QDQ_EINVAL, "not an integer" },
    { "num_bits= 8", QDQ_EINVAL, "not an integer" },
    { "num_bits=8.0", QDQ_EINVAL, "not an integer" },
    { "num_bits=0x8", QDQ_EINVAL, "not an integer" },
    { "num_bits=2147483648", QDQ_EINVAL, "num_bits: \"2147483648\" is out of range" },
    { "axis=9223372036854775808", QDQ_EINVAL, "axis: \"9223372036854775808\" is out of range" },
    { "axis=-9223372036854775809", QDQ_EINVAL, "out of range" },
    { "axis=99999999999999999999999999", QDQ_EINVAL, "out of range" },
    { "axis=one", QDQ_EINVAL, "axis: \"one\" is not an integer" },
    { "signed_input=yes", QDQ_EINVAL, "signed_input: \"yes\" is not a boolean" },
    { "range_given=", QDQ_EINVAL, "range_given: \"\" is not a boolean" },
    { "narrow_range=TRUE", QDQ_EINVAL, "narrow_range: \"TRUE\" is not a boolean" },
    { "narrow_range=2", QDQ_EINVAL, "not a boolean" },
    { "round_mode=half_up", QDQ_EINVAL, "round_mode: \"half_up\" is not HALF_TO_EVEN or "
      "HALF_UP" },
    { "round_mode=HALF_AWAY_FROM_ZERO", QDQ_EINVAL, "is not HALF_TO_EVEN" },
    { "input_min=", QDQ_EINVAL, "input_min: item 0 is empty" },
    { "input_min=1,,2", QDQ_EINVAL, "input_min: item 1 is empty" },
    { "input_max=1,", QDQ_EINVAL, "input_max: item 1 is empty" },
    { "input_max=abc", QDQ_EINVAL, "input_max: item 0 \"abc\" is not a number" },
    { "input_min=1,2x", QDQ_EINVAL, "item 1 \"2x\" is not a number" },
    { "input_min=.5", QDQ_EINVAL, "\".5\" is not a number" },
    { "input_min=+1", QDQ_EINVAL, "\"+1\" is not a number" },
    { "input_min=nan", QDQ_EINVAL, "\"nan\" is not a number" },
    { "input_min=inf", QDQ_EINVAL, "\"inf\" is not a number" },
    { "input_min=1, 2", QDQ_EINVAL, "\" 2\" is not a number" },
    { "axis=1&shape=2&axis=0", QDQ_EINVAL, "given twice" },
};

static void invalid_queries(void)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_request r;
        qdq_error err = { 0 };
        proto_request_init(&r);
        int rc = query(&r, bad[i].query, &lim, &err);
        CHECK(rc == bad[i].code && err.code == rc && strstr(err.msg, bad[i].word),
              "\"%s\": got %d \"%s\", want %d \"%s\"", bad[i].query, rc, err.msg, bad[i].code,
              bad[i].word);
        proto_request_clear(&r);
    }
    printf("%zu invalid queries\n", sizeof bad / sizeof bad[0]);

    /* A failed shape leaves the request as it was; the key stays unused. */
    proto_request r;
    qdq_error err = { 0 };
    proto_request_init(&r);
    int rc = proto_query_arg(&r, "shape", "2,x", &lim, &err);
    CHECK(rc == QDQ_EINVAL && !r.shape_given && r.rank == 0 && r.count == 1, "failed shape");
    rc = proto_query_arg(&r, "shape", "2,3", &lim, &err);
    CHECK(rc == 0 && r.rank == 2, "shape after a failed one: %d %s", rc, err.msg);
    proto_request_clear(&r);

    /* Client bytes in messages are made printable and cut short. */
    err = (qdq_error){ 0 }; /* a failure is recorded once: the first one stays */
    proto_request_init(&r);
    rc = proto_query_arg(&r, "dtype",
                         "\x01\xff" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &lim,
                         &err);
    CHECK(rc == QDQ_EINVAL && strstr(err.msg, "\"??aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""),
          "shown: %s", err.msg);
    proto_request_clear(&r);
}

/* proto_raw_finish: the body's length against the shape, and the limits. */
static void finish(void)
{
    static const struct {
        const char *query;
        uint64_t body;
        int code;
        const char *word; /* error word, or NULL for success */
        int rank;
        int64_t dim0;
    } cases[] = {
        { "", 16, 0, NULL, 1, 4 },
        { "", 0, 0, NULL, 1, 0 },
        { "dtype=float64", 24, 0, NULL, 1, 3 },
        { "dtype=float16", 6, 0, NULL, 1, 3 },
        { "dtype=bfloat16", 2, 0, NULL, 1, 1 },
        { "shape=", 4, 0, NULL, 0, 0 },
        { "shape=2,3", 24, 0, NULL, 2, 2 },
        { "shape=0,3", 0, 0, NULL, 2, 0 },
        { "dtype=float16&shape=2,2", 8, 0, NULL, 2, 2 },
        { "", 13, QDQ_EINVAL, "body is 13 bytes, not a multiple of 4 (the size of one "
          "float32)", 0, 0 },
        { "dtype=float64", 12, QDQ_EINVAL, "not a multiple of 8 (the size of one float64)", 0, 0 },
        { "dtype=bfloat16", 3, QDQ_EINVAL, "not a multiple of 2 (the size of one bfloat16)", 0, 0 },
        { "shape=2,2", 12, QDQ_EINVAL, "body is 12 bytes but shape [2,2] of float32 needs 16 "
          "bytes", 0, 0 },
        { "shape=2,2", 20, QDQ_EINVAL, "body is 20 bytes but shape [2,2] of float32 needs 16",
          0, 0 },
        { "shape=", 0, QDQ_EINVAL, "body is 0 bytes but shape [] of float32 needs 4 bytes", 0, 0 },
        { "shape=0", 4, QDQ_EINVAL, "body is 4 bytes but shape [0] of float32 needs 0 bytes",
          0, 0 },
        { "dtype=float64&shape=3", 12, QDQ_EINVAL, "shape [3] of float64 needs 24 bytes", 0, 0 },
        { "", 4000004, PROTO_ETOOBIG, "body holds 1000001 float32 elements; the limit is "
          "1000000", 0, 0 },
        { "dtype=float16", 2000002, PROTO_ETOOBIG, "1000001 float16 elements", 0, 0 },
        { "", UINT64_MAX - 3, PROTO_ETOOBIG, "the limit is 1000000", 0, 0 },
        { "input_min=1,2", 4, 0, NULL, 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_request r;
        qdq_error err = { 0 };
        proto_request_init(&r);
        int rc = query(&r, cases[i].query, &lim, &err);
        CHECK(rc == 0, "query \"%s\": %s", cases[i].query, err.msg);
        rc = proto_raw_finish(&r, cases[i].body, &lim, &err);
        if (cases[i].word)
            CHECK(rc == cases[i].code && strstr(err.msg, cases[i].word),
                  "\"%s\" body %llu: got %d \"%s\", want %d \"%s\"", cases[i].query,
                  (unsigned long long)cases[i].body, rc, err.msg, cases[i].code, cases[i].word);
        else
            CHECK(rc == 0 && r.rank == cases[i].rank &&
                  (r.rank == 0 || r.dims[0] == cases[i].dim0) &&
                  r.count * qdq_dtype_size(r.dtype) == cases[i].body,
                  "\"%s\" body %llu: %d %s", cases[i].query, (unsigned long long)cases[i].body,
                  rc, err.msg);
        proto_request_clear(&r);
    }

    /* The shape's element limit also holds when the limit is given to finish alone. */
    proto_limits small = lim;
    small.max_elements = 5;
    proto_request r;
    qdq_error err = { 0 };
    proto_request_init(&r);
    int rc = query(&r, "shape=2,3", &lim, &err);
    rc = rc ? rc : proto_raw_finish(&r, 24, &small, &err);
    CHECK(rc == PROTO_ETOOBIG && strstr(err.msg, "shape [2,3] has 6 elements; the limit is 5"),
          "finish limit: %d %s", rc, err.msg);
    proto_request_clear(&r);

    /* A smaller max_rank is the caller's; the compile-time cap still holds for a larger one. */
    proto_limits wide = lim;
    wide.max_rank = 1000;
    char s[2 * PROTO_MAX_RANK + 8] = "";
    for (int i = 0; i <= PROTO_MAX_RANK; i++)
        strcat(s, i ? ",1" : "1");
    err = (qdq_error){ 0 };
    proto_request_init(&r);
    rc = proto_query_arg(&r, "shape", s, &wide, &err);
    CHECK(rc == PROTO_ETOOBIG && strstr(err.msg, "more than 64 dimensions"), "rank cap: %s",
          err.msg);
    proto_request_clear(&r);
}

/* Bounds are parsed once, straight to the dtype (text -> float64 -> float32 rounds twice). */
static void bounds(void)
{
    proto_request r;
    qdq_error err = { 0 };

    proto_request_init(&r);
    /* 1 + 2^-24 + 1e-32: just above the half-way point between 1 and 1 + 2^-23. */
    int rc = query(&r, "input_min=1.00000005960464477539062500000001,0.1,-0.0&input_max=NaN,"
                   "-Infinity,Infinity", &lim, &err);
    rc = rc ? rc : proto_raw_finish(&r, 8, &lim, &err);
    CHECK(rc == 0 && r.n_min == 3 && r.n_max == 3, "f32 bounds: %d %s", rc, err.msg);
    if (!rc) {
        const float *mn = r.min, *mx = r.max;
        CHECK(mn[0] == 1.00000011920928955078125f, "one rounding: %.9g", mn[0]);
        CHECK(mn[1] == 0.1f && qdq_f32_bits(mn[2]) == 0x80000000u, "0.1, -0.0");
        CHECK(isnan(mx[0]) && isinf(mx[1]) && mx[1] < 0 && isinf(mx[2]), "NaN, -Inf, Inf");
    }
    proto_request_clear(&r);
    /* A finite number that rounds to infinity is refused, as in JSON. */
    static const char *const over[] = { "input_max=3.5e38", "dtype=float16&input_max=65520",
                                        "dtype=bfloat16&input_min=-1e39" };
    for (size_t i = 0; i < 3; i++) {
        proto_request_init(&r);
        rc = query(&r, over[i], &lim, &err);
        rc = rc ? rc : proto_raw_finish(&r, 4, &lim, &err);
        CHECK(rc == QDQ_EINVAL && strstr(err.msg, "out of range"), "%s: %d %s", over[i], rc,
              err.msg);
        proto_request_clear(&r);
    }

    static const struct { const char *dt, *text; uint16_t bits; } h[] = {
        { "float16", "1.5", 0x3e00 },     { "float16", "-65504", 0xfbff },
        { "float16", "65519", 0x7bff },   { "float16", "6e-8", 0x0001 },
        { "bfloat16", "1.5", 0x3fc0 },    { "bfloat16", "-2", 0xc000 },
        { "bfloat16", "1.00390625", 0x3f80 }, /* a tie: to even */
        { "bfloat16", "1.01171875", 0x3f82 }, /* a tie: to even, upwards */
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        char q[96];
        snprintf(q, sizeof q, "dtype=%s&input_max=%s", h[i].dt, h[i].text);
        proto_request_init(&r);
        rc = query(&r, q, &lim, &err);
        rc = rc ? rc : proto_raw_finish(&r, 2, &lim, &err);
        CHECK(rc == 0 && r.n_max == 1 && !r.min && r.n_min == 0 &&
              *(const uint16_t *)r.max == h[i].bits, "%s: %d %s %04x", q, rc, err.msg,
              r.max ? *(const uint16_t *)r.max : 0);
        proto_request_clear(&r);
    }

    /* No bounds text: nothing to do. */
    proto_request_init(&r);
    CHECK(proto_query_bounds(&r, &err) == 0 && !r.min && !r.max, "no bounds");
    proto_request_clear(&r);
}

static void formats(void)
{
    proto_request r;
    qdq_error err = { 0 };
    proto_buf b = { 0 };

    proto_request_init(&r);
    CHECK(proto_shape_format(&r, &b) == 0 && b.len == 0, "rank 0 shape is empty");
    CHECK(query(&r, "shape=2,0,4611686018427387904", &lim, &err) == 0, "%s", err.msg);
    CHECK(proto_shape_format(&r, &b) == 0 && b.len == 23 &&
          !memcmp(b.data, "2,0,4611686018427387904", 23), "shape text");
    proto_request_clear(&r);
    proto_buf_free(&b);

    /* Ranges: one value per channel, printed shortest for the compute type. */
    static const int64_t dims[2] = { 3, 2 };
    float in32[6] = { -1.0f, 0.1f, 0.5f, -2.0f, 0.3f, 1.0f };
    float out32[6];
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = 1;
    qdq_plan plan;
    CHECK(qdq_plan_init(&plan, QDQ_FLOAT32, dims, 2, &a, &err) == 0, "%s", err.msg);
    /* Only the text is tested here; the kernels have their own tests. (The AVX2 reduction
     * reads whole vectors past a small accumulator's end: reported to core.) */
    plan.isa = QDQ_ISA_PORTABLE;
    void *acc = malloc(qdq_acc_size(&plan)), *params = malloc(qdq_params_size(&plan));
    CHECK(qdq_run(&plan, in32, out32, NULL, 0, NULL, 0, acc, params, &err) == 0, "%s", err.msg);
    static const char *const want[6] = { "-1.0,-2.0", "0.5,1.0", "-1.0,-2.0", "0.9921875,1.984375",
                                         "128.0,64.0", "0.0078125,0.015625" };
    for (int w = 0; w < 6; w++) {
        CHECK(proto_ranges_format(&plan, params, w, &b) == 0 && b.len == strlen(want[w]) &&
              !memcmp(b.data, want[w], b.len), "which %d: %.*s", w, (int)b.len, b.data);
        b.len = 0;
    }
    CHECK(proto_ranges_format(&plan, params, 6, &b) == QDQ_EINVAL && b.len == 0, "bad which");
    free(acc);
    free(params);

    /* float32 prints as float32 (0.1f is "0.1"); float64 as float64. */
    double in64[2] = { 0.1, -0.3 };
    double out64[2];
    float one[2] = { 0.1f, -0.3f };
    static const int64_t d2[1] = { 2 };
    a.axis = -1;
    CHECK(qdq_plan_init(&plan, QDQ_FLOAT32, d2, 1, &a, &err) == 0, "%s", err.msg);
    acc = malloc(qdq_acc_size(&plan));
    params = malloc(qdq_params_size(&plan));
    qdq_run(&plan, one, one, NULL, 0, NULL, 0, acc, params, &err);
    CHECK(proto_ranges_format(&plan, params, 1, &b) == 0 && b.len == 3 &&
          !memcmp(b.data, "0.1", 3), "f32 max: %.*s", (int)b.len, b.data);
    b.len = 0;
    free(acc);
    free(params);
    CHECK(qdq_plan_init(&plan, QDQ_FLOAT64, d2, 1, &a, &err) == 0, "%s", err.msg);
    acc = malloc(qdq_acc_size(&plan));
    params = malloc(qdq_params_size(&plan));
    qdq_run(&plan, in64, out64, NULL, 0, NULL, 0, acc, params, &err);
    CHECK(proto_ranges_format(&plan, params, 0, &b) == 0 && b.len == 4 &&
          !memcmp(b.data, "-0.3", 4), "f64 min: %.*s", (int)b.len, b.data);
    free(acc);
    free(params);
    proto_buf_free(&b);
}

int main(void)
{
    valid_keys();
    invalid_queries();
    finish();
    bounds();
    formats();
    return check_done();
}
