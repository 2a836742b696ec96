/*
 * .npy headers (proto_npy_header_parse, proto_npy_header_write): files NumPy wrote
 * (tests/vectors/npy), hand-built headers valid and invalid, incremental arrival, and
 * write -> parse round trips. Invalid headers are data: the header, the status, and a word the
 * message must contain.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto.h"
#include "testutil.h"

static const proto_limits lim = { 1000000, 8, 64, 1 << 26 };

/* Applies a query string ("k=v&k=v") to a fresh request. */
static void with_query(proto_request *req, const char *qs)
{
    char *s = strdup(qs), *save = NULL;
    qdq_error err = { 0 };
    proto_request_init(req);
    for (char *kv = strtok_r(s, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = 0;
        int rc = proto_query_arg(req, kv, eq ? eq + 1 : "", &lim, &err);
        CHECK(rc == 0, "query %s: %s", qs, err.msg);
    }
    free(s);
}

/* A .npy file: version v's prefix, the header text as given, then ndata zero bytes (malloc). */
static uint8_t *npy(int v, const char *hdr, size_t ndata, size_t *len)
{
    size_t prefix = v == 1 ? 10 : 12, n = strlen(hdr);
    uint8_t *f = calloc(1, prefix + n + ndata + 1);
    memcpy(f, "\x93NUMPY", 6);
    f[6] = (uint8_t)v;
    for (size_t i = 8; i < prefix; i++)
        f[i] = (uint8_t)(n >> (8 * (i - 8)));
    memcpy(f + prefix, hdr, n);
    *len = prefix + n + ndata;
    return f;
}

/* ---- files written by NumPy ---- */

static const struct {
    const char *file, *query;
    qdq_dtype dtype;
    int rank;
    int64_t dims[2];
    int version;
    bool v2;
} numpy_files[] = {
    { "f4_2x3.npy", "", QDQ_FLOAT32, 2, { 2, 3 }, 1, false },
    { "f4_2x3_v2.npy", "", QDQ_FLOAT32, 2, { 2, 3 }, 2, false },
    { "f4_2x3_v3.npy", "", QDQ_FLOAT32, 2, { 2, 3 }, 3, false },
    { "f8_5.npy", "", QDQ_FLOAT64, 1, { 5 }, 1, false },
    { "f2_scalar.npy", "", QDQ_FLOAT16, 0, { 0 }, 1, false },
    { "f4_0x3.npy", "", QDQ_FLOAT32, 2, { 0, 3 }, 1, false },
    { "u2_bf16_4.npy", "dtype=bfloat16", QDQ_BFLOAT16, 1, { 4 }, 1, false },
    { "V2_bf16_2.npy", "dtype=bfloat16", QDQ_BFLOAT16, 1, { 2 }, 1, true },
    { "f4_2x3.npy", "dtype=float32&shape=2,3", QDQ_FLOAT32, 2, { 2, 3 }, 1, false },
    { "f8_5.npy", "dtype=FP64&input_min=0.1&input_max=0.3", QDQ_FLOAT64, 1, { 5 }, 1, false },
};

static const struct {
    const char *file, *query;
    int code;
    const char *word;
} numpy_bad[] = {
    { "f4_fortran_2x3.npy", "", PROTO_EMEDIA, "Fortran-order arrays are not supported" },
    { "f4_big_endian_3.npy", "", PROTO_EMEDIA, "big-endian arrays are not supported" },
    { "i4_3.npy", "", PROTO_EMEDIA, "descr '<i4' is not supported" },
    { "object_2.npy", "", PROTO_EMEDIA, "object arrays are not accepted (pickles are never "
      "loaded)" },
    { "u2_bf16_4.npy", "", PROTO_EMEDIA, "add dtype=bfloat16" },
    { "V2_bf16_2.npy", "dtype=float16", PROTO_EMEDIA, "descr '|V2' is not a float type" },
    { "f4_2x3.npy", "dtype=float64", QDQ_EINVAL, "dtype=float64 in the query but the .npy "
      "descr '<f4' is float32" },
    { "f4_2x3.npy", "dtype=bfloat16", QDQ_EINVAL, "dtype=bfloat16 in the query" },
    { "f4_2x3.npy", "shape=3,2", QDQ_EINVAL, "shape in the query is (3, 2) but the .npy shape "
      "is (2, 3)" },
    { "f2_scalar.npy", "shape=1", QDQ_EINVAL, "is (1,) but the .npy shape is ()" },
};

static void numpy_written(void)
{
    char path[64];
    for (size_t i = 0; i < sizeof numpy_files / sizeof numpy_files[0]; i++) {
        size_t len, off = 0;
        snprintf(path, sizeof path, "vectors/npy/%s", numpy_files[i].file);
        uint8_t *f = (uint8_t *)tu_read_file(tu_data_path(path), &len);
        proto_request r;
        qdq_error err = { 0 };
        with_query(&r, numpy_files[i].query);
        int rc = proto_npy_header_parse(f, len, len, &lim, &r, &off, &err);
        CHECK(rc == 0, "%s: %d %s", path, rc, err.msg);
        CHECK(r.dtype == numpy_files[i].dtype && r.rank == numpy_files[i].rank &&
              (r.rank < 1 || r.dims[0] == numpy_files[i].dims[0]) &&
              (r.rank < 2 || r.dims[1] == numpy_files[i].dims[1]) &&
              r.npy_version == numpy_files[i].version && r.npy_bf16_v2 == numpy_files[i].v2 &&
              r.form == PROTO_FORM_NPY && off == 128 &&
              off + r.count * qdq_dtype_size(r.dtype) == len, "%s: fields", path);
        if (!strcmp(numpy_files[i].file, "f4_2x3.npy")) {
            float want[6] = { -0.625f, -0.375f, -0.125f, 0.125f, 0.375f, 0.625f };
            CHECK(!memcmp(f + off, want, sizeof want), "%s: data", path);
        }
        if (strstr(numpy_files[i].query, "input_min")) {
            CHECK(r.n_min == 1 && r.n_max == 1 && !r.min_text && *(double *)r.min == 0.1 &&
                  *(double *)r.max == 0.3, "%s: bounds as float64", path);
        }

        /* Arriving a byte at a time: more bytes wanted until the header is complete. */
        for (size_t n = 0; n < off; n++) {
            proto_request q;
            size_t o = 1;
            with_query(&q, numpy_files[i].query);
            rc = proto_npy_header_parse(f, n, UINT64_MAX, &lim, &q, &o, &err);
            CHECK(rc == PROTO_EAGAIN && o == 0 && q.npy_version == 0, "%s: %zu bytes: %d %s",
                  path, n, rc, err.msg);
            rc = proto_npy_header_parse(f, n, len, &lim, &q, &o, &err);
            CHECK(rc == PROTO_EAGAIN, "%s: %zu bytes of known length: %d %s", path, n, rc,
                  err.msg);
            proto_request_clear(&q);
        }
        proto_request_clear(&r);
        with_query(&r, numpy_files[i].query);
        rc = proto_npy_header_parse(f, off, UINT64_MAX, &lim, &r, &off, &err);
        CHECK(rc == 0 && off == 128, "%s: header alone, length unknown: %d %s", path, rc,
              err.msg);
        proto_request_clear(&r);
        free(f);
    }
    for (size_t i = 0; i < sizeof numpy_bad / sizeof numpy_bad[0]; i++) {
        size_t len, off = 1;
        snprintf(path, sizeof path, "vectors/npy/%s", numpy_bad[i].file);
        uint8_t *f = (uint8_t *)tu_read_file(tu_data_path(path), &len);
        proto_request r;
        qdq_error err = { 0 };
        with_query(&r, numpy_bad[i].query);
        int rc = proto_npy_header_parse(f, len, len, &lim, &r, &off, &err);
        CHECK(rc == numpy_bad[i].code && err.code == rc && off == 0 &&
              strstr(err.msg, numpy_bad[i].word), "%s?%s: got %d \"%s\", want %d \"%s\"", path,
              numpy_bad[i].query, rc, err.msg, numpy_bad[i].code, numpy_bad[i].word);
        proto_request_clear(&r);
        free(f);
    }
}

/* ---- hand-built headers ---- */

#define D(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape ", }"

static const struct good {
    int version;
    const char *query, *hdr;
    qdq_dtype dtype;
    int rank;
    uint64_t count;
} good[] = {
    { 1, "", D("()"), QDQ_FLOAT32, 0, 1 },
    { 1, "", D("(0,)"), QDQ_FLOAT32, 1, 0 },
    { 1, "", D("(5,)"), QDQ_FLOAT32, 1, 5 },
    { 1, "", D("(2, 3,)"), QDQ_FLOAT32, 2, 6 },
    { 1, "", D("(1000000,)"), QDQ_FLOAT32, 1, 1000000 },
    { 1, "", D("(1000, 1000)"), QDQ_FLOAT32, 2, 1000000 },
    { 1, "", D("(1, 1, 1, 1, 1, 1, 1, 1)"), QDQ_FLOAT32, 8, 1 },
    { 1, "", D("(0, 4611686018427387904, 4611686018427387904)"), QDQ_FLOAT32, 3, 0 },
    { 1, "", D("(\n2 ,\t3 )"), QDQ_FLOAT32, 2, 6 },
    { 2, "", D("(2, 3)"), QDQ_FLOAT32, 2, 6 },
    { 3, "", D("(2, 3)"), QDQ_FLOAT32, 2, 6 },
    { 1, "", "{'shape': (4,), 'fortran_order': False, 'descr': '<f8'}", QDQ_FLOAT64, 1, 4 },
    { 1, "", "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (3,)}", QDQ_FLOAT16, 1,
      3 },
    { 1, "", "  {'descr':'<f4','fortran_order':False,'shape':(2,)}  \n", QDQ_FLOAT32, 1, 2 },
    { 1, "", "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 7 , ) , }\r\n",
      QDQ_FLOAT32, 1, 7 },
    { 1, "", "{'descr': '<f4', 'fortran_order': True, 'shape': (5,), }", QDQ_FLOAT32, 1, 5 },
    { 1, "", "{'descr': '<f4', 'fortran_order': True, 'shape': (), }", QDQ_FLOAT32, 0, 1 },
    { 1, "", "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 5, 1), }", QDQ_FLOAT32, 3,
      5 },
    { 1, "", "{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", QDQ_FLOAT32, 2, 0 },
    { 1, "dtype=bfloat16", "{'descr': '<V2', 'fortran_order': False, 'shape': (3,), }",
      QDQ_BFLOAT16, 1, 3 },
    { 1, "dtype=BF16", "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }",
      QDQ_BFLOAT16, 1, 3 },
    { 1, "dtype=half", "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }",
      QDQ_FLOAT16, 1, 3 },
};

static const struct bad {
    int version;
    const char *query, *hdr;
    int code;
    const char *word;
} bad[] = {
    { 1, "", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "object arrays are not accepted (pickles are never loaded)" },
    { 1, "", "{'descr': '<O8', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "object arrays" },
    { 1, "", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "big-endian arrays are not supported: .npy descr '>f4' (save arr.astype('<f4'))" },
    { 1, "", "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "big-endian" },
    { 1, "", "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "descr '|f4' is not supported" },
    { 1, "", "{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "not supported" },
    { 1, "", "{'descr': '<f4 ', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "not supported" },
    { 1, "", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "not supported" },
    { 1, "", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
      PROTO_EMEDIA, "structured arrays are not supported" },
    { 1, "", "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", PROTO_EMEDIA,
      "add dtype=bfloat16 to the query" },
    { 1, "", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", PROTO_EMEDIA,
      "Fortran-order arrays are not supported (shape (2, 3))" },
    { 1, "dtype=float16", D("(2,)"), QDQ_EINVAL, "dtype=float16 in the query but the .npy "
      "descr '<f4' is float32" },
    { 1, "", "'descr': '<f4', 'fortran_order': False, 'shape': (2,)", QDQ_EINVAL,
      "expected '{'" },
    { 1, "", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", QDQ_EINVAL,
      "expected ',' or '}'" },
    { 1, "", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", QDQ_EINVAL,
      "expected a quoted key or '}'" },
    { 1, "", "", QDQ_EINVAL, "expected '{'" },
    { 1, "", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
      QDQ_EINVAL, "the key 'descr' twice" },
    { 1, "", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}",
      QDQ_EINVAL, "the key 'shape' twice" },
    { 1, "", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'foo': 1}", QDQ_EINVAL,
      "unknown key 'foo'" },
    { 1, "", "{'descr': '<f4', 'fortran_order': False}", QDQ_EINVAL, "has no 'shape'" },
    { 1, "", "{'descr': '<f4', 'shape': (2,)}", QDQ_EINVAL, "has no 'fortran_order'" },
    { 1, "", "{'fortran_order': False, 'shape': (2,)}", QDQ_EINVAL, "has no 'descr'" },
    { 1, "", D("(-1,)"), QDQ_EINVAL, "negative" },
    { 1, "", D("(2, -3)"), QDQ_EINVAL, "negative" },
    { 1, "", D("(5)"), QDQ_EINVAL, "(5) is not a tuple (a 1-D shape is written (5,))" },
    { 1, "", D("[2, 3]"), QDQ_EINVAL, "'shape' is not a tuple" },
    { 1, "", D("(2.5,)"), QDQ_EINVAL, "expected ',' or ')'" },
    { 1, "", D("(,)"), QDQ_EINVAL, "expected a non-negative integer" },
    { 1, "", D("(1 2)"), QDQ_EINVAL, "expected ',' or ')'" },
    { 1, "", D("(2,,)"), QDQ_EINVAL, "expected a non-negative integer" },
    { 1, "", D("(0x10,)"), QDQ_EINVAL, "expected ',' or ')'" },
    { 1, "", D("(2, 3"), QDQ_EINVAL, "expected a non-negative integer" },
    { 1, "", D("(4611686018427387904, 4611686018427387904, 0)"), PROTO_ETOOBIG,
      "overflows 64 bits" },
    { 1, "", D("(4611686018427387905,)"), PROTO_ETOOBIG, "larger than 2^62" },
    { 1, "", D("(123456789012345678901234567890,)"), PROTO_ETOOBIG, "larger than 2^62" },
    { 1, "", D("(1, 1, 1, 1, 1, 1, 1, 1, 1)"), PROTO_ETOOBIG, "9 dimensions; the limit is 8" },
    { 1, "", D("(1001, 1000)"), PROTO_ETOOBIG, "(1001, 1000) has 1001000 elements; the limit is "
      "1000000" },
    { 1, "", "{'descr': '<f4', 'fortran_order': true, 'shape': (2,), }", QDQ_EINVAL,
      "'fortran_order' is not True or False" },
    { 1, "", "{'descr': '<f4', 'fortran_order': 'False', 'shape': (2,), }", QDQ_EINVAL,
      "not True or False" },
    { 1, "", "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }", QDQ_EINVAL,
      "not True or False" },
    { 1, "", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", QDQ_EINVAL,
      "not True or False" },
    { 1, "", "{'descr': 4, 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "'descr' is not a string" },
    { 1, "", "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "'descr' is not a string" },
    { 1, "", "{'descr': '<f4\", 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "is not a valid dict" },
    { 1, "", "{descr: '<f4', 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "expected a quoted key" },
    { 1, "", "{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "expected ':' after a key" },
    { 1, "", "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "expected ',' or '}'" },
    { 1, "", "{'descr': '<f4',, 'fortran_order': False, 'shape': (2,), }", QDQ_EINVAL,
      "expected a quoted key" },
    { 1, "", D("(2,)") " x", QDQ_EINVAL, "unexpected text after the dict at byte 58 (\"x\")" },
    { 1, "", D("(2,)") "{}", QDQ_EINVAL, "unexpected text after the dict" },
    { 3, "", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\xc3\xa9': 1}",
      QDQ_EINVAL, "unknown key '?" "?'" },
    { 1, "shape=2", D("(3,)"), QDQ_EINVAL, "shape in the query is (2,) but the .npy shape is "
      "(3,)" },
};

static void hand_built(void)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t len, off = 0;
        uint8_t *f = npy(good[i].version, good[i].hdr, 0, &len);
        proto_request r;
        qdq_error err = { 0 };
        with_query(&r, good[i].query);
        int rc = proto_npy_header_parse(f, len, UINT64_MAX, &lim, &r, &off, &err);
        CHECK(rc == 0 && off == len && r.dtype == good[i].dtype && r.rank == good[i].rank &&
              r.count == good[i].count && r.npy_version == good[i].version,
              "good %zu %s: %d %s", i, good[i].hdr, rc, err.msg);
        proto_request_clear(&r);
        free(f);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len, off = 1;
        uint8_t *f = npy(bad[i].version, bad[i].hdr, 0, &len);
        proto_request r;
        qdq_error err = { 0 };
        with_query(&r, bad[i].query);
        int rc = proto_npy_header_parse(f, len, len, &lim, &r, &off, &err);
        CHECK(rc == bad[i].code && err.code == rc && off == 0 && strstr(err.msg, bad[i].word),
              "bad %zu %s: got %d \"%s\", want %d \"%s\"", i, bad[i].hdr, rc, err.msg,
              bad[i].code, bad[i].word);
        proto_request_clear(&r);
        free(f);
    }
    printf("%zu invalid headers\n", sizeof bad / sizeof bad[0]);
}

/* Malformed files: magic, version, header length, data length. */
static void framing(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        uint64_t file_len; /* UINT64_MAX: unknown; 0 here means len */
        int code;
        const char *word;
    } cases[] = {
        { "\x93NUMPZ\x01\x00", 8, 0, QDQ_EINVAL, "not a .npy file" },
        { "NUMPY\x01\x00", 7, 0, QDQ_EINVAL, "not a .npy file" },
        { "\x93NUMPX", 6, UINT64_MAX, QDQ_EINVAL, "not a .npy file" },
        { "PK\x03\x04", 4, UINT64_MAX, QDQ_EINVAL, "not a .npy file" },
        { "\x94", 1, UINT64_MAX, QDQ_EINVAL, "not a .npy file" },
        { "\x93NUM", 4, 0, QDQ_EINVAL, "truncated: 4 bytes, and its header needs 8" },
        { "", 0, 0, QDQ_EINVAL, "truncated: 0 bytes" },
        { "\x93NUMPY\x01\x00\x10", 9, 0, QDQ_EINVAL, "truncated: 9 bytes, and its header needs "
          "10" },
        { "\x93NUMPY\x04\x00\x10\x00", 10, 0, QDQ_EINVAL, "version 4.0 is not supported" },
        { "\x93NUMPY\x01\x01\x10\x00", 10, 0, QDQ_EINVAL, "version 1.1 is not supported" },
        { "\x93NUMPY\x00\x00\x10\x00", 10, 0, QDQ_EINVAL, "version 0.0" },
        { "\x93NUMPY\x01\x00\xf4\x01{}", 12, 0, QDQ_EINVAL, "header length 500 runs past the end "
          "of the 12-byte file" },
        { "\x93NUMPY\x02\x00\x00\x00\x00\x01", 12, 500, QDQ_EINVAL, "header length 16777216 is "
          "more than 1 MiB" },
        { "\x93NUMPY\x02\x00\x01\x00\x10\x00", 12, UINT64_MAX, QDQ_EINVAL, "header length "
          "1048577 is more than 1 MiB" },
        { "\x93NUMPY\x03\x00\xff\xff\xff\xff", 12, UINT64_MAX, QDQ_EINVAL, "header length "
          "4294967295 is more than 1 MiB" },
        { "\x93NUMPY\x01\x00\x10\x00{", 11, UINT64_MAX, PROTO_EAGAIN, "26 bytes" },
        { "\x93NUMPY\x02\x00\x00\x00\x10\x00", 12, UINT64_MAX, PROTO_EAGAIN, "1048588 bytes" },
        { "\x93NUMPY\x01", 7, UINT64_MAX, PROTO_EAGAIN, "8 bytes" },
        { "\x93NUMPY\x01\x00\x10\x00{", 11, 30, PROTO_EAGAIN, "26 bytes" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_request r;
        qdq_error err = { 0 };
        size_t off = 1;
        proto_request_init(&r);
        uint64_t fl = cases[i].file_len ? cases[i].file_len : cases[i].len;
        int rc = proto_npy_header_parse((const uint8_t *)cases[i].bytes, cases[i].len, fl, &lim,
                                        &r, &off, &err);
        CHECK(rc == cases[i].code && off == 0 && strstr(err.msg, cases[i].word),
              "framing %zu: got %d \"%s\", want %d \"%s\"", i, rc, err.msg, cases[i].code,
              cases[i].word);
        proto_request_clear(&r);
    }

    /* The data must be exactly count * itemsize bytes when the file's length is known. */
    static const struct { const char *hdr; size_t data; const char *word; } sizes[] = {
        { D("(2, 3)"), 20, "the .npy data is 20 bytes but shape (2, 3) of float32 needs 24 "
          "bytes" },
        { D("(2, 3)"), 28, "the .npy data is 28 bytes but shape (2, 3) of float32 needs 24" },
        { D("()"), 0, "the .npy data is 0 bytes but shape () of float32 needs 4 bytes" },
        { D("(0, 3)"), 4, "the .npy data is 4 bytes but shape (0, 3) of float32 needs 0" },
        { "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", 4, "shape (1,) of float64 "
          "needs 8 bytes" },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len, off = 1;
        uint8_t *f = npy(1, sizes[i].hdr, sizes[i].data, &len);
        proto_request r;
        qdq_error err = { 0 };
        proto_request_init(&r);
        int rc = proto_npy_header_parse(f, len, len, &lim, &r, &off, &err);
        CHECK(rc == QDQ_EINVAL && off == 0 && strstr(err.msg, sizes[i].word), "size %zu: %d %s",
              i, rc, err.msg);
        /* The same header with its length unknown is fine. */
        proto_request_clear(&r);
        proto_request_init(&r);
        rc = proto_npy_header_parse(f, len, UINT64_MAX, &lim, &r, &off, &err);
        CHECK(rc == 0 && off == len - sizes[i].data, "size %zu unknown length: %d %s", i, rc,
              err.msg);
        proto_request_clear(&r);
        free(f);
    }

    /* A caller's max_rank above the compile-time cap still stops at PROTO_MAX_RANK. */
    proto_limits wide = lim;
    wide.max_rank = 1000;
    char hdr[400] = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (int i = 0; i <= PROTO_MAX_RANK; i++)
        strcat(hdr, "1,");
    strcat(hdr, ")}");
    size_t len, off;
    uint8_t *f = npy(1, hdr, 4, &len);
    proto_request r;
    qdq_error err = { 0 };
    proto_request_init(&r);
    int rc = proto_npy_header_parse(f, len, len, &wide, &r, &off, &err);
    CHECK(rc == PROTO_ETOOBIG && strstr(err.msg, "more than 64 dimensions"), "rank cap: %s",
          err.msg);
    proto_request_clear(&r);
    free(f);
}

/* proto_npy_header_write, then parse: same dtype, shape, version and descr; 64-byte aligned. */
static void round_trip(void)
{
    static const int64_t shapes[][8] = { { 0 }, { 5 }, { 2, 3 }, { 0, 3 },
                                         { 1, 2, 3, 4, 5, 6, 7, 8 } };
    static const int ranks[] = { 0, 1, 2, 2, 8 };
    proto_buf b = { 0 };
    for (int dt = 0; dt < 5; dt++) /* 4: bfloat16 as '<V2' */
        for (int v = 0; v <= 3; v++)
            for (size_t s = 0; s < sizeof ranks / sizeof ranks[0]; s++) {
                proto_request w, r;
                qdq_error err = { 0 };
                proto_request_init(&w);
                w.dtype = dt == 4 ? QDQ_BFLOAT16 : (qdq_dtype)dt;
                w.npy_bf16_v2 = dt == 4;
                w.npy_version = v;
                w.rank = ranks[s];
                memcpy(w.dims, shapes[s], sizeof shapes[s]);
                b.len = 0;
                CHECK(proto_npy_header_write(&w, &b) == 0 && b.len % 64 == 0 &&
                      b.data[b.len - 1] == '\n', "write %d %d %zu", dt, v, s);
                proto_request_init(&r);
                r.dtype = w.dtype;
                r.dtype_given = w.dtype == QDQ_BFLOAT16;
                size_t off = 0;
                int rc = proto_npy_header_parse((const uint8_t *)b.data, b.len, UINT64_MAX, &lim,
                                                &r, &off, &err);
                CHECK(rc == 0 && off == b.len && r.dtype == w.dtype && r.rank == w.rank &&
                      !memcmp(r.dims, w.dims, sizeof shapes[s]) &&
                      r.npy_version == (v ? v : 1) && r.npy_bf16_v2 == w.npy_bf16_v2,
                      "round trip %d %d %zu: %d %s", dt, v, s, rc, err.msg);
                proto_request_clear(&r);
            }

    /* The exact bytes for one case: NumPy's dict, padded to 64 with spaces and '\n'. */
    proto_request w;
    proto_request_init(&w);
    w.rank = 2;
    w.dims[0] = 2;
    w.dims[1] = 3;
    b.len = 0;
    proto_npy_header_write(&w, &b);
    static const char want[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': "
                               "False, 'shape': (2, 3), }";
    CHECK(b.len == 128 && !memcmp(b.data, want, sizeof want - 1) &&
          b.data[sizeof want - 1] == ' ' && b.data[126] == ' ' && b.data[127] == '\n',
          "exact header: %.*s", (int)b.len, b.data);

    /* The biggest header: 64 dimensions of 19 digits, still one version 1 header. */
    w.rank = PROTO_MAX_RANK;
    for (int i = 0; i < PROTO_MAX_RANK; i++)
        w.dims[i] = i ? 1 : 4611686018427387904;
    b.len = 0;
    CHECK(proto_npy_header_write(&w, &b) == 0 && b.len % 64 == 0 && b.data[6] == 1,
          "big header");
    w.rank = PROTO_MAX_RANK + 1;
    CHECK(proto_npy_header_write(&w, &b) == QDQ_EINVAL, "rank over the cap");
    proto_buf_free(&b);
}

int main(void)
{
    numpy_written();
    hand_built();
    framing();
    round_trip();
    return check_done();
}
