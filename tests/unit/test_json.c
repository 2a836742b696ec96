/*
 * Native JSON (json_read.c, json_write.c): every request form and dtype decoded bit for bit,
 * attributes and bounds, encode -> decode round trips through the op, a table of invalid
 * bodies with their status and a piece of their message, limits (a million '[' included), a
 * million-digit number, and the time per element each way (informational).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "proto.h"
#include "qdq_half.h"
#include "testutil.h"

static const proto_limits lim = { 1u << 24, 16, 32, 1u << 28 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int decode_n(const char *body, size_t n, const proto_limits *l, proto_request *req,
                    qdq_error *err)
{
    proto_request_init(req);
    memset(err, 0, sizeof *err);
    return proto_json_decode(body, n, l, req, err);
}

static int decode(const char *body, proto_request *req, qdq_error *err)
{
    return decode_n(body, strlen(body), &lim, req, err);
}

static float f32_at(const proto_request *r, size_t i) { return ((const float *)r->data)[i]; }

/* Standard base64 of n bytes (independent of the library's encoder). */
static char *b64(const void *data, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    char *o = malloc(n / 3 * 4 + 8), *p = o;
    for (size_t i = 0; i < n; i += 3) {
        unsigned a = s[i], b = i + 1 < n ? s[i + 1] : 0, c = i + 2 < n ? s[i + 2] : 0;
        *p++ = t[a >> 2];
        *p++ = t[((a & 3) << 4) | b >> 4];
        *p++ = i + 1 < n ? t[((b & 15) << 2) | c >> 6] : '=';
        *p++ = i + 2 < n ? t[c & 63] : '=';
    }
    *p = 0;
    return o;
}

static void test_nested(void)
{
    proto_request r;
    qdq_error e;
    int rc = decode("{\"input\": [[-1.0, -0.5], [0.0, 0.3]],\n \"num_bits\": 8, \"signed_input\": "
                    "true, \"range_given\": false,\n \"round_mode\": \"HALF_TO_EVEN\", "
                    "\"narrow_range\": false, \"axis\": -1,\n \"input_min\": -1.0, \"input_max\": 1.0}",
                    &r, &e);
    CHECK(rc == 0, "api.md example: %s", e.msg);
    CHECK(r.form == PROTO_FORM_NESTED && r.dtype == QDQ_FLOAT32, "nested float32");
    CHECK(r.rank == 2 && r.dims[0] == 2 && r.dims[1] == 2 && r.count == 4, "shape [2,2]");
    CHECK(!rc && f32_at(&r, 0) == -1.0f && f32_at(&r, 1) == -0.5f && f32_at(&r, 3) == 0.3f, "values");
    CHECK(!rc && !signbit(f32_at(&r, 2)), "0.0 is +0");
    CHECK(r.attrs.num_bits == 8 && r.attrs.signed_input && !r.attrs.range_given &&
          r.attrs.round_mode == QDQ_HALF_TO_EVEN && !r.attrs.narrow_range && r.attrs.axis == -1, "attrs");
    CHECK(r.n_min == 1 && r.n_max == 1 && ((float *)r.min)[0] == -1.0f && ((float *)r.max)[0] == 1.0f,
          "bounds");
    proto_request_clear(&r);

    /* Defaults when nothing but input is given. */
    rc = decode("{\"input\":[1,2,3]}", &r, &e);
    qdq_attrs def = QDQ_ATTRS_DEFAULT;
    CHECK(rc == 0 && r.attrs.signed_input == def.signed_input && r.attrs.num_bits == def.num_bits &&
          r.attrs.range_given == def.range_given && r.attrs.round_mode == def.round_mode &&
          r.attrs.narrow_range == def.narrow_range && r.attrs.axis == def.axis && !r.min && !r.max,
          "defaults");
    CHECK(r.rank == 1 && r.dims[0] == 3 && f32_at(&r, 2) == 3.0f, "[1,2,3]");
    proto_request_clear(&r);

    static const struct { const char *body; int rank; int64_t dims[4]; uint64_t count; } shapes[] = {
        { "{\"input\": 1.5}", 0, { 0 }, 1 },
        { "{\"input\": -0}", 0, { 0 }, 1 },
        { "{\"input\": NaN}", 0, { 0 }, 1 },
        { "{\"input\": []}", 1, { 0 }, 0 },
        { "{\"input\": [[],[]]}", 2, { 2, 0 }, 0 },
        { "{\"input\": [[[]]]}", 3, { 1, 1, 0 }, 0 },
        { "{\"input\": [[[1],[2]],[[3],[4]],[[5],[6]]]}", 3, { 3, 2, 1 }, 6 },
        { " \n\t{ \"input\" :\r[ 1 ,\n2 ] } \n", 1, { 2 }, 2 },
        { "{\"\\u0069nput\": [7]}", 1, { 1 }, 1 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        rc = decode(shapes[i].body, &r, &e);
        bool ok = rc == 0 && r.rank == shapes[i].rank && r.count == shapes[i].count && r.data;
        for (int k = 0; ok && k < r.rank; k++)
            ok = r.dims[k] == shapes[i].dims[k];
        CHECK(ok, "%s: rc %d (%s), rank %d, count %llu", shapes[i].body, rc, e.msg, r.rank,
              (unsigned long long)r.count);
        proto_request_clear(&r);
    }
    rc = decode("{\"input\": -0}", &r, &e);
    CHECK(!rc && signbit(f32_at(&r, 0)), "-0 stays -0.0");
    proto_request_clear(&r);
    rc = decode("{\"input\": [NaN, Infinity, -Infinity, 1e-50, 0.1, 3.4028235e38]}", &r, &e);
    CHECK(!rc && isnan(f32_at(&r, 0)) && f32_at(&r, 1) == INFINITY && f32_at(&r, 2) == -INFINITY &&
          f32_at(&r, 3) == 0 && f32_at(&r, 4) == 0.1f && f32_at(&r, 5) == 3.4028235e38f,
          "tokens, underflow, FLT_MAX: %s", e.msg);
    proto_request_clear(&r);
}

/* One value per dtype that tells a correct reading from a near miss. */
static void test_object_forms(void)
{
    static const char *const names[] = { "float32", "float64", "float16", "bfloat16", "half",
                                         "FP32", "FP64", "FP16", "BF16" };
    static const qdq_dtype dts[] = { QDQ_FLOAT32, QDQ_FLOAT64, QDQ_FLOAT16, QDQ_BFLOAT16,
                                     QDQ_FLOAT16, QDQ_FLOAT32, QDQ_FLOAT64, QDQ_FLOAT16, QDQ_BFLOAT16 };
    const char *vals = "0.1, -2.5, 65504, NaN, -Infinity, 1e-7, 0.333333333333333314829616256247";
    const double dv[] = { 0.1, -2.5, 65504, NAN, -INFINITY, 1e-7, 0.333333333333333314829616256247 };
    char body[512];
    proto_request r;
    qdq_error e;
    for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
        qdq_dtype dt = dts[t];
        size_t es = qdq_dtype_size(dt);
        unsigned char want[7 * 8];
        for (int i = 0; i < 7; i++)
            tu_store(dt, want, i, dv[i]); /* one rounding from the double: exact here */
        /* flat data with shape; nested data without; data before dtype. */
        const char *fmts[] = {
            "{\"input\": {\"dtype\": \"%s\", \"shape\": [7], \"data\": [%s]}}",
            "{\"input\": {\"dtype\": \"%s\", \"data\": [[%s]]}}",
            "{\"input\": {\"data\": [%2$s], \"shape\": [1, 7], \"dtype\": \"%1$s\"}, \"num_bits\": 4}",
        };
        for (int f = 0; f < 3; f++) {
            snprintf(body, sizeof body, fmts[f], names[t], vals);
            int rc = decode(body, &r, &e);
            CHECK(rc == 0 && r.dtype == dt && r.form == PROTO_FORM_DATA && r.count == 7,
                  "%s form %d: %s", names[t], f, e.msg);
            CHECK(rc || (f == 0 ? r.rank == 1 && r.dims[0] == 7 : r.rank == 2 && r.dims[0] == 1 && r.dims[1] == 7),
                  "%s form %d: shape", names[t], f);
            for (int i = 0; i < 7 && !rc; i++)
                CHECK(tu_same(dt, r.data, want, i), "%s form %d: element %d is %.17g", names[t], f, i,
                      tu_load(dt, r.data, i));
            proto_request_clear(&r);
        }
        /* b64 of the same bytes. */
        char *s = b64(want, 7 * es);
        snprintf(body, sizeof body, "{\"input\": {\"b64\": \"%s\", \"dtype\": \"%s\", \"shape\": [7, 1]}}",
                 s, names[t]);
        free(s);
        int rc = decode(body, &r, &e);
        CHECK(rc == 0 && r.form == PROTO_FORM_B64 && r.dtype == dt && r.rank == 2 && r.dims[0] == 7 &&
              r.count == 7 && !memcmp(r.data, want, 7 * es), "%s b64: %s", names[t], e.msg);
        proto_request_clear(&r);
    }
    /* dtype defaults to float32 in the object form; float32 rounds once from the text even
     * when data comes before dtype (checked in a first pass, read in the second). */
    const char *tricky = "1.00000005960464477539062500000000000001";
    snprintf(body, sizeof body, "{\"input\": {\"data\": [%s], \"dtype\": \"float32\"}}", tricky);
    int rc = decode(body, &r, &e);
    CHECK(rc == 0 && f32_at(&r, 0) == 0x1.000002p0f, "deferred float32 rounds once: %a", rc ? 0 : f32_at(&r, 0));
    proto_request_clear(&r);
    snprintf(body, sizeof body, "{\"input\": {\"data\": [%s]}}", tricky);
    rc = decode(body, &r, &e);
    CHECK(rc == 0 && r.dtype == QDQ_FLOAT32 && f32_at(&r, 0) == 0x1.000002p0f, "default dtype");
    proto_request_clear(&r);
    /* shape [] with one element; shape with zero; b64 of nothing; escaped '/' in b64. */
    rc = decode("{\"input\": {\"shape\": [], \"data\": 2.5}}", &r, &e);
    CHECK(rc == 0 && r.rank == 0 && r.count == 1 && f32_at(&r, 0) == 2.5f, "rank 0 data: %s", e.msg);
    proto_request_clear(&r);
    rc = decode("{\"input\": {\"shape\": [3, 0], \"data\": []}}", &r, &e);
    CHECK(rc == 0 && r.rank == 2 && r.dims[0] == 3 && r.dims[1] == 0 && r.count == 0, "[3,0]: %s", e.msg);
    proto_request_clear(&r);
    rc = decode("{\"input\": {\"shape\": [0, 5], \"b64\": \"\"}}", &r, &e);
    CHECK(rc == 0 && r.count == 0 && r.form == PROTO_FORM_B64, "empty b64: %s", e.msg);
    proto_request_clear(&r);
    float q[3] = { 0x1.fffffep127f, 0x1.7ep-126f, 0 }; /* bytes that encode with '/' */
    char *s = b64(q, sizeof q), esc[64];
    size_t k = 0;
    for (char *c = s; *c; c++) {
        if (*c == '/')
            esc[k++] = '\\';
        esc[k++] = *c;
    }
    esc[k] = 0;
    CHECK(strchr(s, '/') != NULL, "test data has a '/' in base64: %s", s);
    snprintf(body, sizeof body, "{\"input\": {\"shape\": [3], \"b64\": \"%s\"}}", esc);
    rc = decode(body, &r, &e);
    CHECK(rc == 0 && !memcmp(r.data, q, sizeof q), "b64 with \\/: %s", e.msg);
    proto_request_clear(&r);
    free(s);
}

static void test_attrs(void)
{
    proto_request r;
    qdq_error e;
    /* Bounds before input: read in input's dtype (float16) after the object closes. */
    int rc = decode("{\"input_min\": [-1, NaN, 0.1], \"input_max\": [1, Infinity, 70000],"
                    " \"num_bits\": 4, \"signed_input\": false, \"range_given\": true,"
                    " \"round_mode\": \"HALF_UP\", \"narrow_range\": true, \"axis\": 1,"
                    " \"input\": {\"dtype\": \"float64\", \"shape\": [2, 3], \"data\": [1,2,3,4,5,6]}}",
                    &r, &e);
    CHECK(rc == 0, "all attributes: %s", e.msg);
    CHECK(r.attrs.num_bits == 4 && !r.attrs.signed_input && r.attrs.range_given &&
          r.attrs.round_mode == QDQ_HALF_UP && r.attrs.narrow_range && r.attrs.axis == 1, "attr values");
    const double *mn = r.min, *mx = r.max;
    CHECK(r.n_min == 3 && r.n_max == 3 && mn[0] == -1 && isnan(mn[1]) && mn[2] == 0.1 &&
          mx[1] == INFINITY && mx[2] == 70000, "per-channel float64 bounds");
    proto_request_clear(&r);
    rc = decode("{\"input_max\": 0.1, \"input_min\": -65504, \"range_given\": true,"
                " \"input\": {\"dtype\": \"float16\", \"data\": [1]}}", &r, &e);
    CHECK(rc == 0 && r.n_min == 1 && ((uint16_t *)r.min)[0] == 0xfbff && ((uint16_t *)r.max)[0] == 0x2e66,
          "float16 bounds: %s", e.msg);
    proto_request_clear(&r);
    rc = decode("{\"input\": [1], \"axis\": -9223372036854775808, \"num_bits\": -2147483648}", &r, &e);
    CHECK(rc == 0 && r.attrs.axis == INT64_MIN && r.attrs.num_bits == INT32_MIN, "integer extremes: %s", e.msg);
    proto_request_clear(&r);
    rc = decode("{\"input\": [1], \"input_min\": [], \"input_max\": []}", &r, &e);
    CHECK(rc == 0 && r.n_min == 0 && r.min && r.n_max == 0, "empty bound arrays decode (the op checks counts)");
    proto_request_clear(&r);
}

static void test_errors(void)
{
    static const struct { const char *body; int code; const char *msg; } bad[] = {
        { "", QDQ_EINVAL, "empty body" },
        { " \n ", QDQ_EINVAL, "empty body" },
        { "[1,2]", QDQ_EINVAL, "the body: expected a JSON object, got an array" },
        { "\xef\xbb\xbf{\"input\":[1]}", QDQ_EINVAL, "byte order mark" },
        { "{}", QDQ_EINVAL, "missing key 'input'" },
        { "{\"num_bits\": 8}", QDQ_EINVAL, "missing key 'input'" },
        { "{\"input\":[1],\"num_bit\":8}", QDQ_EINVAL, "unknown key 'num_bit'" },
        { "{\"input\":[1],\"input\":[2]}", QDQ_EINVAL, "duplicate key 'input'" },
        { "{\"input\":[1],\"axis\":0,\"axis\":1}", QDQ_EINVAL, "duplicate key 'axis'" },
        { "{\"input\":[1],}", QDQ_EINVAL, "trailing comma before '}'" },
        { "{\"input\":[1,]}", QDQ_EINVAL, "input[1]: trailing comma" },
        { "{\"input\":[[1],]}", QDQ_EINVAL, "trailing comma" },
        { "{\"input\":[1 2]}", QDQ_EINVAL, "expected ',' or ']' after an element, got a number" },
        { "{\"input\":[1]} x", QDQ_EINVAL, "unexpected data after the request object at byte 14" },
        { "{\"input\":[1]}{}", QDQ_EINVAL, "unexpected data after" },
        { "{\"input\":[[1,2],[3]]}", QDQ_EINVAL, "input is ragged: dims[1] is 2 at input[0] but 1 at input[1]" },
        { "{\"input\":[[[1,2],[3,4]],[[5,6],[7,8,9]]]}", QDQ_EINVAL, "dims[2] is 2 at input[0][0] but 3 at input[1][1]" },
        { "{\"input\":[[1,2],3]}", QDQ_EINVAL, "input is ragged: input[1] is a number but input[0] is an array" },
        { "{\"input\":[1,[2]]}", QDQ_EINVAL, "input is ragged: input[1] is an array but input[0] is a number" },
        { "{\"input\":[[],[1]]}", QDQ_EINVAL, "dims[1] is 0 at input[0] but 1 at input[1]" },
        { "{\"input\":[[],[[1]]]}", QDQ_EINVAL, "input[1][0] is an array but input[0] is empty" },
        { "{\"input\":{\"data\":[[1],[2,3]]}}", QDQ_EINVAL, "input.data is ragged: dims[1] is 1 at input.data[0]" },
        { "{\"input\":[01]}", QDQ_EINVAL, "input[0]: invalid number '01' at byte 10" },
        { "{\"input\":[1,+1]}", QDQ_EINVAL, "input[1]: invalid number '+1'" },
        { "{\"input\":[.5]}", QDQ_EINVAL, "invalid number '.5'" },
        { "{\"input\":[[1.]]}", QDQ_EINVAL, "input[0][0]: invalid number '1.'" },
        { "{\"input\":[inf]}", QDQ_EINVAL, "invalid number 'inf'" },
        { "{\"input\":[nan]}", QDQ_EINVAL, "invalid number 'nan'" },
        { "{\"input\":[-NaN]}", QDQ_EINVAL, "invalid number '-NaN'" },
        { "{\"input\":[1e]}", QDQ_EINVAL, "invalid number '1e'" },
        { "{\"input\":[0x10]}", QDQ_EINVAL, "expected ',' or ']' after an element, got 'x'" },
        { "{\"input\":[\"1\"]}", QDQ_EINVAL, "input[0]: expected a number, got a string" },
        { "{\"input\":[null]}", QDQ_EINVAL, "expected a number, got null" },
        { "{\"input\":[1,true]}", QDQ_EINVAL, "input[1]: expected a number, got a boolean" },
        { "{\"input\":[{}]}", QDQ_EINVAL, "input[0]: expected a number, got an object" },
        { "{\"input\":\"abc\"}", QDQ_EINVAL, "input: expected an array, a number or an object, got a string" },
        { "{\"input\":null}", QDQ_EINVAL, "input: expected an array, a number or an object, got null" },
        { "{\"input\":[1e39]}", QDQ_EINVAL, "input[0]: 1e39 is out of range for float32" },
        { "{\"input\":[[0],[-3.5e38]]}", QDQ_EINVAL, "input[1][0]: -3.5e38 is out of range for float32" },
        { "{\"input\":{\"dtype\":\"float16\",\"data\":[1,70000]}}", QDQ_EINVAL, "input.data[1]: 70000 is out of range for float16" },
        { "{\"input\":{\"dtype\":\"float64\",\"data\":[1e400]}}", QDQ_EINVAL, "out of range for float64" },
        { "{\"input\":{\"data\":[1e39],\"dtype\":\"bfloat16\"}}", QDQ_EINVAL, "1e39 is out of range for bfloat16" },
        { "{\"input\":[1],\"num_bits\":8.5}", QDQ_EINVAL, "num_bits: expected an integer, got a number with a fraction" },
        { "{\"input\":[1],\"num_bits\":8.0}", QDQ_EINVAL, "num_bits: expected an integer" },
        { "{\"input\":[1],\"num_bits\":\"8\"}", QDQ_EINVAL, "num_bits: expected an integer, got a string" },
        { "{\"input\":[1],\"num_bits\":99999999999}", QDQ_EINVAL, "num_bits: 99999999999 is out of range" },
        { "{\"input\":[1],\"axis\":99999999999999999999}", QDQ_EINVAL, "axis: 99999999999999999999 is out of range" },
        { "{\"input\":[1],\"axis\":1e2}", QDQ_EINVAL, "axis: expected an integer" },
        { "{\"input\":[1],\"axis\":-01}", QDQ_EINVAL, "axis: invalid number (leading zero)" },
        { "{\"input\":[1],\"signed_input\":1}", QDQ_EINVAL, "signed_input: expected true or false, got a number" },
        { "{\"input\":[1],\"range_given\":\"true\"}", QDQ_EINVAL, "range_given: expected true or false, got a string" },
        { "{\"input\":[1],\"narrow_range\":True}", QDQ_EINVAL, "narrow_range: expected true or false" },
        { "{\"input\":[1],\"round_mode\":\"HALF_DOWN\"}", QDQ_EINVAL, "round_mode: expected \"HALF_TO_EVEN\" or \"HALF_UP\", got 'HALF_DOWN'" },
        { "{\"input\":[1],\"round_mode\":1}", QDQ_EINVAL, "round_mode: expected a string, got a number" },
        { "{\"input\":[1],\"range_given\":true}", QDQ_EINVAL, "range_given is true but input_min is missing" },
        { "{\"input\":[1],\"range_given\":true,\"input_min\":0}", QDQ_EINVAL, "range_given is true but input_max is missing" },
        { "{\"input\":[1],\"input_min\":\"0\"}", QDQ_EINVAL, "input_min: expected a number or an array of numbers, got a string" },
        { "{\"input\":[1],\"input_max\":[[0]]}", QDQ_EINVAL, "input_max: expected numbers in a flat array" },
        { "{\"input\":[1],\"input_max\":[0,\"1\"]}", QDQ_EINVAL, "input_max[1]: expected a number, got a string" },
        { "{\"input\":[1],\"input_max\":1e39}", QDQ_EINVAL, "input_max: 1e39 is out of range for float32" },
        { "{\"input\":{\"dtype\":\"float8\",\"data\":[1]}}", QDQ_EINVAL, "input.dtype: unknown dtype 'float8'" },
        { "{\"input\":{\"dtype\":32,\"data\":[1]}}", QDQ_EINVAL, "input.dtype: expected a string, got a number" },
        { "{\"input\":{\"dtype\":\"float32\"}}", QDQ_EINVAL, "input: missing data or b64" },
        { "{\"input\":{}}", QDQ_EINVAL, "input: the object is empty" },
        { "{\"input\":{\"data\":[1],\"b64\":\"AACAPw==\"}}", QDQ_EINVAL, "input: give either data or b64, not both" },
        { "{\"input\":{\"dtype\":\"float32\",\"b64\":\"AACAPw==\"}}", QDQ_EINVAL, "input: shape is required with b64" },
        { "{\"input\":{\"shape\":[2],\"b64\":\"AACAPw==\"}}", QDQ_EINVAL, "input.b64 decodes to 4 bytes but shape [2] of float32 needs 8 (2 elements of 4 bytes)" },
        { "{\"input\":{\"shape\":[2,1],\"dtype\":\"float64\",\"b64\":\"AACAPw==\"}}", QDQ_EINVAL, "shape [2,1] of float64 needs 16" },
        { "{\"input\":{\"shape\":[1],\"b64\":\"AACAPw=\"}}", QDQ_EINVAL, "input.b64: length 7 is not a multiple of 4" },
        { "{\"input\":{\"shape\":[1],\"b64\":\"AAC*Pw==\"}}", QDQ_EINVAL, "input.b64: invalid base64 character '*' at offset 3" },
        { "{\"input\":{\"shape\":[1],\"b64\":\"AA=APw==\"}}", QDQ_EINVAL, "invalid base64 character '=' at offset 2" },
        { "{\"input\":{\"shape\":[1],\"b64\":\"AACA\\nPw=\"}}", QDQ_EINVAL, "input.b64: invalid base64 character (an escape)" },
        { "{\"input\":{\"shape\":[1],\"b64\":5}}", QDQ_EINVAL, "input.b64: expected a string, got a number" },
        { "{\"input\":{\"shape\":[2,2],\"data\":[1,2,3]}}", QDQ_EINVAL, "input.data has 3 elements but input.shape needs 4" },
        { "{\"input\":{\"shape\":[-1],\"data\":[1]}}", QDQ_EINVAL, "input.shape[0]: expected a non-negative integer" },
        { "{\"input\":{\"shape\":[1.5],\"data\":[1]}}", QDQ_EINVAL, "input.shape[0]: expected an integer" },
        { "{\"input\":{\"shape\":\"2\",\"data\":[1]}}", QDQ_EINVAL, "input.shape: expected an array of integers, got a string" },
        { "{\"input\":{\"dtype\":\"float32\",\"data\":[1],\"extra\":1}}", QDQ_EINVAL, "unknown key 'extra' in input" },
        { "{\"input\":{\"dtype\":\"float32\",\"dtype\":\"float64\",\"data\":[1]}}", QDQ_EINVAL, "duplicate key 'dtype' in input" },
        { "{\"input\":[1],\"num_bits\":8", QDQ_EINVAL, "expected ',' or '}' after a member, got the end of the body" },
        { "{\"input\":[1", QDQ_EINVAL, "input[1]: expected ',' or ']' after an element, got the end of the body" },
        { "{\"input\":[", QDQ_EINVAL, "input[0]: expected a number, got the end of the body" },
        { "{\"inp", QDQ_EINVAL, "unterminated string starting at byte 1" },
        { "{'input':[1]}", QDQ_EINVAL, "expected a key (a string), got '''" },
        { "{\"input\" [1]}", QDQ_EINVAL, "expected ':' after 'input' at byte 9" },
        { "{\"input\":[1],\"round_mode\":\"HALF\nUP\"}", QDQ_EINVAL, "round_mode: control character 0x0a in a string at byte 31" },
        { "{\"input\":[1],\"round_mode\":\"\xff\"}", QDQ_EINVAL, "round_mode: invalid UTF-8 in a string at byte 27" },
        { "{\"input\":[1],\"round_mode\":\"\xc0\xaf\"}", QDQ_EINVAL, "invalid UTF-8" },          /* overlong '/' */
        { "{\"input\":[1],\"round_mode\":\"\xed\xa0\x80\"}", QDQ_EINVAL, "invalid UTF-8" },      /* UTF-16 surrogate */
        { "{\"input\":[1],\"round_mode\":\"\xf4\x90\x80\x80\"}", QDQ_EINVAL, "invalid UTF-8" },  /* above U+10FFFF */
        { "{\"input\":[1],\"round_mode\":\"\xe2\x82\"}", QDQ_EINVAL, "invalid UTF-8" },          /* cut short */
        { "{\"input\":[1],\"round_mode\":\"\\x\"}", QDQ_EINVAL, "round_mode: invalid escape '\\x'" },
        { "{\"input\":[1],\"round_mode\":\"\\u12G4\"}", QDQ_EINVAL, "round_mode: bad \\u escape" },
        { "{\"input\":[1],\"round_mode\":\"\\ud800x\"}", QDQ_EINVAL, "high surrogate \\ud800 without a low one" },
        { "{\"input\":[1],\"round_mode\":\"\\udc00\"}", QDQ_EINVAL, "lone low surrogate \\udc00" },
        { "{\"input\":[1],\"round_mode\":\"\\", QDQ_EINVAL, "round_mode: unterminated string starting at byte 26" },
        { "{\"input\":[1],\"round_mode\":\"HALF_UP", QDQ_EINVAL, "round_mode: unterminated string" },
        { "{\"input\":[1],\"\\u00e9\":1}", QDQ_EINVAL, "unknown key '?" "?'" },
        { "{\"input\":[1],\"a\\u0000b\":1}", QDQ_EINVAL, "unknown key 'a?b'" },
    };
    proto_request r;
    qdq_error e;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = decode(bad[i].body, &r, &e);
        CHECK(rc == bad[i].code && e.code == rc, "%s: rc %d, want %d (%s)", bad[i].body, rc,
              bad[i].code, e.msg);
        CHECK(strstr(e.msg, bad[i].msg) != NULL, "%s: message '%s' lacks '%s'", bad[i].body,
              e.msg, bad[i].msg);
        CHECK(!r.data && !r.min && !r.max && r.count == 1, "%s: request cleared on failure", bad[i].body);
    }
    /* Bytes strlen cannot carry: a NUL inside or after the object. */
    static const char nul_after[] = "{\"input\":[1]}\0";
    int rc = decode_n(nul_after, sizeof nul_after - 1, &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "unexpected data after the request object at byte 13"), "NUL after: %s", e.msg);
    static const char nul_in[] = "{\"input\":[1\0]}";
    rc = decode_n(nul_in, sizeof nul_in - 1, &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "got byte 0x00 at byte 11"), "NUL inside: %s", e.msg);
    static const char nul_str[] = "{\"input\":[1],\"round_mode\":\"HALF\0UP\"}";
    rc = decode_n(nul_str, sizeof nul_str - 1, &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "control character 0x00"), "NUL in a string: %s", e.msg);
    /* Exact length respected: the body ends before the closing brace. */
    rc = decode_n("{\"input\":[1]}", 12, &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "got the end of the body"), "cut body: %s", e.msg);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t h = strlen(head), u = strlen(unit), t = strlen(tail);
    char *s = malloc(h + u * n + t + 1), *p = s;
    memcpy(p, head, h), p += h;
    for (size_t i = 0; i < n; i++)
        memcpy(p, unit, u), p += u;
    memcpy(p, tail, t + 1);
    return s;
}

static void test_limits(void)
{
    proto_request r;
    qdq_error e;
    proto_limits small = { 4, 3, 6, 200 };
    static const struct { const char *body; const char *msg; } big[] = {
        { "{\"input\":[1,2,3,4,5]}", "input has more than 4 elements (max_elements)" },
        { "{\"input\":{\"shape\":[5],\"b64\":\"\"}}", "input.shape: 5 elements exceed max_elements 4" },
        { "{\"input\":{\"shape\":[0,5],\"b64\":\"\"}}", "input.shape[1]: 5 exceeds max_elements 4" },
        { "{\"input\":{\"shape\":[65536,65536,65536],\"b64\":\"\"}}", "input.shape: 281474976710656 elements exceed" },
        { "{\"input\":{\"shape\":[4294967296,4294967296],\"b64\":\"\"}}", "input.shape: more than 2^64 elements" },
        { "{\"input\":{\"shape\":[1,1,1,1],\"b64\":\"\"}}", "input.shape: rank 4 exceeds max_rank 3" },
        { "{\"input\":[[[[1]]]]}", "input: rank 4 at byte 12 exceeds max_rank 3" },
        { "{\"input\":[1],\"input_min\":[1,2,3,4,5]}", "input_min has more than 4 elements" },
        { "{\"input\":{\"data\":[[[1]]]}}", "nesting depth" }, /* 2 + 3 = 5: fine; see below */
    };
    for (size_t i = 0; i + 1 < sizeof big / sizeof big[0]; i++) {
        int rc = decode_n(big[i].body, strlen(big[i].body), &small, &r, &e);
        CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, big[i].msg), "%s: rc %d '%s', want '%s'",
              big[i].body, rc, e.msg, big[i].msg);
    }
    const size_t last = sizeof big / sizeof big[0] - 1;
    int rc = decode_n(big[last].body, strlen(big[last].body), &small, &r, &e);
    CHECK(rc == 0, "depth 5 within max_depth 6: %s", e.msg);
    proto_request_clear(&r);
    proto_limits shallow = { 100, 16, 4, 0 };
    rc = decode_n(big[last].body, strlen(big[last].body), &shallow, &r, &e);
    CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, "nesting depth 5 at byte 19 exceeds max_depth 4"), "depth: %s", e.msg);
    char body[256];
    memset(body, ' ', sizeof body);
    memcpy(body + 100, "{\"input\":[1]}", 13);
    rc = decode_n(body, 201, &small, &r, &e);
    CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, "body of 201 bytes exceeds max_body 200"), "max_body: %s", e.msg);
    rc = decode_n(body, 200, &small, &r, &e);
    CHECK(rc == 0, "200 bytes within max_body: %s", e.msg);
    proto_request_clear(&r);
    /* Zero fields (or no limits at all) mean no limit beyond PROTO_MAX_RANK. */
    rc = decode_n("{\"input\":[[1,2],[3,4]]}", 23, NULL, &r, &e);
    CHECK(rc == 0 && r.count == 4, "NULL limits: %s", e.msg);
    proto_request_clear(&r);

    /* A million '[': rejected at the depth limit, no recursion; also with no depth limit
     * (the rank cap stops it) and inside other keys. */
    size_t n = 1000000;
    char *deep = repeat("{\"input\":", "[", n, "");
    proto_limits depth32 = { 0, 64, 32, 0 };
    rc = decode_n(deep, strlen(deep), &depth32, &r, &e);
    CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, "nesting depth 33 at byte 40 exceeds max_depth 32"),
          "1e6 '[': %s", e.msg);
    rc = decode_n(deep, strlen(deep), &lim, &r, &e);
    CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, "input: rank 17 at byte 25 exceeds max_rank 16"),
          "1e6 '[' (rank first): %s", e.msg);
    proto_limits deep_ok = { 0, 0, 0, 0 };
    rc = decode_n(deep, strlen(deep), &deep_ok, &r, &e);
    CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, "exceeds max_rank 64"), "1e6 '[' without limits: %s", e.msg);
    free(deep);
    deep = repeat("{\"input\":[1],\"input_min\":", "[", n, "");
    rc = decode_n(deep, strlen(deep), &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "input_min: expected numbers in a flat array"), "deep bound: %s", e.msg);
    free(deep);
    deep = repeat("", "[", n, "");
    rc = decode_n(deep, n, &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "expected a JSON object"), "deep top: %s", e.msg);
    free(deep);
    deep = repeat("{\"input\":{\"data\":1,\"shape\":", "[", n, "");
    rc = decode_n(deep, strlen(deep), &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "input.shape[0]: expected an integer, got an array"), "deep shape: %s", e.msg);
    free(deep);
    deep = repeat("{\"input\":", "{\"input\":", n, "");
    rc = decode_n(deep, strlen(deep), &lim, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "unknown key 'input' in input"), "deep objects: %s", e.msg);
    free(deep);
    /* The deepest allowed: rank PROTO_MAX_RANK with nothing but the hard cap. */
    deep = repeat("{\"input\":", "[", PROTO_MAX_RANK, "");
    char *full = repeat(deep, "]", PROTO_MAX_RANK, "}");
    rc = decode_n(full, strlen(full), NULL, &r, &e);
    CHECK(rc == 0 && r.rank == PROTO_MAX_RANK && r.count == 0 && r.dims[PROTO_MAX_RANK - 1] == 0,
          "rank 64 of empties: %s", e.msg);
    proto_request_clear(&r);
    free(deep), free(full);
}

static void test_huge_number(void)
{
    proto_request r;
    qdq_error e;
    size_t n = 1000000;
    char *s = repeat("{\"input\":[0.", "3", n, ", 1]}");
    int rc = decode(s, &r, &e);
    CHECK(rc == 0 && r.count == 2 && f32_at(&r, 0) == 1.0f / 3, "a million digits of 1/3: %s", e.msg);
    proto_request_clear(&r);
    free(s);
    s = repeat("{\"input\":{\"dtype\":\"float64\",\"data\":[1", "0", n, "]}}");
    rc = decode(s, &r, &e);
    CHECK(rc == QDQ_EINVAL && strstr(e.msg, "input.data[0]: 1000000000") && strstr(e.msg, "... is out of range for float64"),
          "a million-digit integer: %s", e.msg);
    free(s);
    s = repeat("{\"input\":[1e-", "9", 1000, "]}");
    rc = decode(s, &r, &e);
    CHECK(rc == 0 && f32_at(&r, 0) == 0, "1e-999...9 is 0: %s", e.msg);
    proto_request_clear(&r);
    free(s);
}

/* ---- encode ---- */

typedef struct op {
    qdq_plan plan;
    void *out, *acc, *params;
} op;

static int run(const proto_request *req, op *o)
{
    qdq_error e;
    memset(o, 0, sizeof *o);
    int rc = qdq_plan_init(&o->plan, req->dtype, req->dims, req->rank, &req->attrs, &e);
    if (rc) {
        fprintf(stderr, "plan: %s\n", e.msg);
        return rc;
    }
    size_t es = qdq_dtype_size(req->dtype);
    o->out = malloc(req->count * es + 1);
    o->acc = malloc(qdq_acc_size(&o->plan));
    o->params = malloc(qdq_params_size(&o->plan));
    rc = qdq_run(&o->plan, req->data, o->out, req->min, req->n_min, req->max, req->n_max, o->acc,
                 o->params, &e);
    if (rc)
        fprintf(stderr, "run: %s\n", e.msg);
    return rc;
}

static void op_free(op *o) { free(o->out), free(o->acc), free(o->params); }

/* The text of the value of "key" (a number, array or object) in a response. */
static char *value_of(const char *resp, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(resp, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    const char *q = p;
    int depth = 0;
    for (; *q; q++) {
        if (*q == '[' || *q == '{')
            depth++;
        else if ((*q == ']' || *q == '}') && depth-- == 0)
            break;
        else if (*q == ',' && depth == 0)
            break;
    }
    char *v = malloc((size_t)(q - p) + 1);
    memcpy(v, p, (size_t)(q - p));
    v[q - p] = 0;
    return v;
}

/* Decodes a request, runs the op, encodes; then reads "output" back as a request of the same
 * form and compares bits, and the six ranges against qdq_params_get. Returns the response. */
static char *round_trip(const char *body, const char *want_output)
{
    proto_request req, back;
    qdq_error e;
    op o;
    char *resp = NULL;
    if (decode(body, &req, &e)) {
        CHECK(0, "%s: %s", body, e.msg);
        return NULL;
    }
    if (run(&req, &o)) {
        CHECK(0, "%s: op failed", body);
        goto out;
    }
    proto_buf b = { 0 };
    proto_buf_append(&b, "garbage", 7); /* encode appends */
    int rc = proto_json_encode(&req, &o.plan, o.params, o.out, &b, &e);
    CHECK(rc == 0, "%s: encode: %s", body, e.msg);
    proto_buf_append(&b, "", 1);
    resp = proto_buf_detach(&b, NULL);
    CHECK(!strncmp(resp, "garbage{\"output\":", 17), "%s: appended: %.40s", body, resp);
    memmove(resp, resp + 7, strlen(resp + 7) + 1);
    char *outv = value_of(resp, "output");
    if (want_output)
        CHECK(outv && !strcmp(outv, want_output), "%s: output %s, want %s", body, outv, want_output);
    size_t n = strlen(outv) + 16;
    char *again = malloc(n);
    snprintf(again, n, "{\"input\":%s}", outv);
    rc = decode(again, &back, &e);
    CHECK(rc == 0 && back.dtype == req.dtype && back.rank == req.rank && back.count == req.count,
          "%s: output reads back: %s", body, e.msg);
    for (int k = 0; !rc && k < req.rank; k++)
        CHECK(back.dims[k] == req.dims[k], "%s: dims[%d]", body, k);
    size_t bad = 0;
    for (uint64_t i = 0; !rc && i < req.count; i++)
        bad += !tu_same(req.dtype, o.out, back.data, i);
    CHECK(bad == 0, "%s: %zu elements differ after the round trip", body, bad);
    if (req.form == PROTO_FORM_B64)
        CHECK(!rc && !memcmp(o.out, back.data, req.count * qdq_dtype_size(req.dtype)), "%s: b64 bytes", body);
    proto_request_clear(&back);
    free(again), free(outv);

    for (int k = 0; k < 6; k++) {
        char *v = value_of(resp, tu_range_keys[k]);
        const char *p = v;
        bool arr = p && *p == '[';
        CHECK(p && arr == (req.attrs.axis != -1), "%s: %s form", body, tu_range_keys[k]);
        if (!p)
            continue;
        p += arr;
        for (uint64_t c = 0; c < o.plan.channels; c++) {
            qdq_range rg;
            double want[6];
            qdq_params_get(&o.plan, o.params, c, &rg);
            tu_range_values(&rg, want);
            double got;
            size_t m = proto_num_parse_f64(p, p + strlen(p), &got);
            bool same = qdq_dtype_is_double(req.dtype) ? tu_same_f64(got, want[k])
                                                        : tu_same_f32((float)got, (float)want[k]);
            CHECK(m && same, "%s: %s[%llu] = %.*s, want %.17g", body, tu_range_keys[k], (unsigned long long)c,
                  (int)m, p, want[k]);
            p += m + 1;
        }
        free(v);
    }
out:
    op_free(&o);
    proto_request_clear(&req);
    return resp;
}

static void test_encode(void)
{
    char *s;
    s = round_trip("{\"input\": [[-1.0, -0.5], [0.0, 0.3]]}", "[[-1.0,-0.5],[0.0,0.296875]]");
    CHECK(s && !strcmp(s, "{\"output\":[[-1.0,-0.5],[0.0,0.296875]],\"input_min\":-1.0,"
                          "\"input_max\":0.3,\"output_min\":-1.0,\"output_max\":0.9921875,"
                          "\"scale\":128.0,\"inverse_scale\":0.0078125}"), "api.md response: %s", s);
    free(s);
    free(round_trip("{\"input\": 0.3}", "0.3"));
    free(round_trip("{\"input\": []}", "[]"));
    free(round_trip("{\"input\": [[],[]]}", "[[],[]]"));
    free(round_trip("{\"input\": {\"shape\": [2,0,3], \"data\": []}}", NULL));
    free(round_trip("{\"input\": {\"shape\": [3,0], \"b64\": \"\"}}", NULL));
    free(round_trip("{\"input\": [[[1,2],[3,4]],[[5,6],[7,8]],[[9,10],[11,12]]], \"axis\": 1}",
                    "[[[1.023622,1.968504],[3.023622,3.968504]],[[5.03937,5.984252],[6.992126,"
                    "8.031496]],[[8.9763775,10.0],[10.960629,12.0]]]"));
    free(round_trip("{\"input\": [[0.1, 0.2, 0.7], [NaN, -3, 1e-7]], \"axis\": 0, \"num_bits\": 4}", NULL));
    free(round_trip("{\"input\": [0.1, 0.2], \"range_given\": true, \"input_min\": -1, \"input_max\": 1}", NULL));
    s = round_trip("{\"input\": {\"dtype\": \"float64\", \"shape\": [2, 2], \"data\": [0.1, 0.2, 0.3, 1e-300]}}",
                   NULL);
    CHECK(s && strstr(s, "{\"output\":{\"dtype\":\"float64\",\"shape\":[2,2],\"data\":["), "data form: %s", s);
    free(s);
    s = round_trip("{\"input\": {\"dtype\": \"FP16\", \"data\": [[0.1, 0.2], [0.3, 65504]]}, \"axis\": 1}", NULL);
    CHECK(s && strstr(s, "{\"output\":{\"dtype\":\"float16\",\"shape\":[2,2],\"data\":[") &&
          strstr(s, "\"input_min\":[0.099975586,0.19995117]"), "float16 data form: %s", s);
    free(s);
    free(round_trip("{\"input\": {\"dtype\": \"bfloat16\", \"data\": [0.1, -7, 300, 1e-30]}}", NULL));
    s = round_trip("{\"input\": {\"dtype\": \"float32\", \"shape\": [2], \"b64\": \"AACAPwAAAEA=\"}}", NULL);
    CHECK(s && strstr(s, "{\"output\":{\"dtype\":\"float32\",\"shape\":[2],\"b64\":\""), "b64 form: %s", s);
    free(s);
    free(round_trip("{\"input\": {\"dtype\": \"float64\", \"shape\": [1, 1], \"b64\": \"mpmZmZmZuT8=\"}, \"axis\": 0}", NULL));
    /* Random float32 and float16 tensors, with the reduction's non-finite ends. */
    char *body = malloc(200000);
    for (int t = 0; t < 2; t++) {
        int k = sprintf(body, "{\"input\": {\"dtype\": \"%s\", \"data\": [", t ? "float16" : "float32");
        uint32_t x = 12345;
        for (int i = 0; i < 3000; i++) {
            x = x * 1103515245u + 12345u;
            char num[PROTO_NUM_MAX + 1];
            float v = ldexpf((float)(x >> 8) / (1 << 24) - 0.5f, (int)(x % 16) - 8);
            size_t n = proto_num_format_f32(v, num);
            num[n] = 0;
            k += sprintf(body + k, "%s%s", i ? "," : "", num);
        }
        sprintf(body + k, "]}, \"num_bits\": 7, \"narrow_range\": true}");
        free(round_trip(body, NULL));
    }
    free(body);

    /* A raw request answered in JSON takes the data object form; errors leave buf unchanged. */
    proto_request req;
    qdq_error e;
    op o;
    decode("{\"input\": [1, 2]}", &req, &e);
    req.form = PROTO_FORM_RAW;
    run(&req, &o);
    proto_buf b = { 0 };
    CHECK(proto_json_encode(&req, &o.plan, o.params, o.out, &b, &e) == 0 && b.len > 0 &&
          !strncmp(b.data, "{\"output\":{\"dtype\":\"float32\",\"shape\":[2],\"data\":[1.007874,2.0]}", 59),
          "raw form answered in JSON: %.*s", (int)b.len, b.data);
    size_t len = b.len;
    req.dtype = (qdq_dtype)7;
    CHECK(proto_json_encode(&req, &o.plan, o.params, o.out, &b, &e) == QDQ_EINVAL && b.len == len,
          "bad dtype: %s", e.msg);
    req.dtype = QDQ_FLOAT32;
    proto_buf_free(&b);
    op_free(&o);
    proto_request_clear(&req);

    /* Empty per-tensor reduction: infinite ranges print as tokens. */
    s = round_trip("{\"input\": []}", "[]");
    CHECK(s && strstr(s, "\"input_min\":Infinity,\"input_max\":-Infinity"), "empty ranges: %s", s);
    free(s);
}

/* Informational: decode and encode of 1M float32 elements (random, printed shortest). */
static void test_speed(void)
{
    size_t n = TU_SANITIZED ? 100000 : 1000000;
    proto_buf b = { 0 };
    proto_buf_append(&b, "{\"input\": [", 11);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        float v = ldexpf((float)(x >> 40) / (1 << 24) - 0.5f, (int)(x % 8));
        char num[PROTO_NUM_MAX + 2];
        size_t k = proto_num_format_f32(v, num);
        num[k++] = ',';
        num[k++] = ' ';
        proto_buf_append(&b, num, i + 1 < n ? k : k - 2);
    }
    proto_buf_append(&b, "]}", 2);
    proto_request req;
    qdq_error e;
    double t0 = now();
    int rc = decode_n(b.data, b.len, &lim, &req, &e);
    double t1 = now();
    CHECK(rc == 0 && req.count == n, "speed body decodes: %s", e.msg);
    op o;
    run(&req, &o);
    proto_buf out = { 0 };
    proto_buf_reserve(&out, n * 16); /* warm: page faults are not encoding */
    memset(out.data, 0, n * 16);
    double t2 = now();
    rc = proto_json_encode(&req, &o.plan, o.params, o.out, &out, &e);
    double t3 = now();
    CHECK(rc == 0, "speed encode: %s", e.msg);
    printf("json float32, %zu elements (%.1f bytes each): decode %.1f ns/element, encode %.1f ns/element\n",
           n, (double)b.len / n, (t1 - t0) * 1e9 / n, (t3 - t2) * 1e9 / n);
    proto_buf_free(&out);
    proto_buf_free(&b);
    op_free(&o);
    proto_request_clear(&req);
}

int main(void)
{
    test_nested();
    test_object_forms();
    test_attrs();
    test_errors();
    test_limits();
    test_huge_number();
    test_encode();
    test_speed();
    return check_done();
}
