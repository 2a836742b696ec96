/*
 * The raw form (docs/api.md, "Raw bytes"): attributes from the query string, the tensor's shape checked against
 * the body's length. The npy form shares the query arguments and the bounds conversion.
 *
 * Bounds stay text until the dtype is known (the query's keys come in any order), then are
 * parsed once, straight to the dtype: going through float64 first could round twice.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "qdq_half.h"

enum key {
    K_DTYPE, K_SHAPE, K_NUM_BITS, K_SIGNED_INPUT, K_RANGE_GIVEN, K_ROUND_MODE, K_NARROW_RANGE,
    K_AXIS, K_INPUT_MIN, K_INPUT_MAX, K_STATS, K_COUNT
};

static const char *const key_names[K_COUNT] = {
    "dtype", "shape", "num_bits", "signed_input", "range_given", "round_mode", "narrow_range",
    "axis", "input_min", "input_max", "stats",
};

/* The largest dimension a shape may name (as in the npy decoder). */
#define DIM_MAX ((int64_t)1 << 62)

/* "[2,3,4]" for messages, cut short if it does not fit. */
static const char *dims_text(const int64_t *dims, int rank, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%" PRId64, i ? "," : "", dims[i]);
    if (k < cap)
        snprintf(out + k, cap - k, "]");
    return out;
}

/*
 * A decimal integer in [lo, hi]: an optional '-', then digits, nothing else.
 * 0, or 1 when it is no integer, 2 when it is out of range.
 */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    bool neg = *s == '-', over = false;
    const char *p = s + neg;
    uint64_t v = 0;
    if (!*p)
        return 1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return 1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over || v > (uint64_t)INT64_MAX + neg)
        return 2;
    int64_t x = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
    if (x < lo || x > hi)
        return 2;
    *out = x;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    /* "True"/"False" are what Python's requests sends for a bool. */
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "True"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "False"))
        *out = false;
    else
        return 1;
    return 0;
}

/* "2,3,4", or "" for a scalar. Fills req's rank, dims and count only when all is well. */
static int parse_shape(proto_request *req, const char *value, const proto_limits *lim,
                       qdq_error *err)
{
    int64_t dims[PROTO_MAX_RANK];
    int rank = 0, max_rank = lim->max_rank < PROTO_MAX_RANK ? lim->max_rank : PROTO_MAX_RANK;
    uint64_t count = 1;
    char q[48], t[96];
    for (const char *p = value; *p;) {
        size_t n = strcspn(p, ","), k = 0;
        uint64_t d = 0;
        for (; k < n && p[k] >= '0' && p[k] <= '9'; k++)
            d = d <= (UINT64_MAX - 9) / 10 ? d * 10 + (uint64_t)(p[k] - '0') : UINT64_MAX;
        if (n == 0)
            return qdq_fail(err, QDQ_EINVAL, "shape: dimension %d is empty (expected comma-separated "
                        "integers such as 2,3)", rank);
        if (k < n)
            return qdq_fail(err, QDQ_EINVAL, "shape: dimension %d \"%s\" is not a non-negative "
                        "integer", rank, proto_printable(q, p, n));
        if (rank == max_rank)
            return qdq_fail(err, PROTO_ETOOBIG, "shape: more than %d dimensions", max_rank);
        if (d > (uint64_t)DIM_MAX)
            return qdq_fail(err, PROTO_ETOOBIG, "shape: dimension %d (%s) is larger than 2^62", rank,
                        proto_printable(q, p, n));
        /* Overflow is checked in order, as TensorFlow and the core do: [0,2^62,2^62] is fine. */
        if (d != 0 && count > UINT64_MAX / d)
            return qdq_fail(err, PROTO_ETOOBIG, "shape: the element count overflows 64 bits at "
                        "dimension %d", rank);
        count *= d;
        dims[rank++] = (int64_t)d;
        if (!p[n])
            break;
        p += n + 1;
        if (!*p)
            return qdq_fail(err, QDQ_EINVAL, "shape: dimension %d is empty (expected comma-separated "
                        "integers such as 2,3)", rank);
    }
    if (count > lim->max_elements)
        return qdq_fail(err, PROTO_ETOOBIG, "shape %s has %" PRIu64 " elements; the limit is %" PRIu64,
                    dims_text(dims, rank, t, sizeof t), count, lim->max_elements);
    memcpy(req->dims, dims, (size_t)rank * sizeof dims[0]);
    req->rank = rank;
    req->count = count;
    req->shape_given = true;
    return 0;
}

/* Checks the syntax of comma-separated numbers now, so the error names the key; keeps the text. */
static int keep_bounds(const char *key, const char *value, char **text, qdq_error *err)
{
    const char *p = value, *end = value + strlen(value);
    char q[48];
    for (size_t i = 0;; i++) {
        const char *e = memchr(p, ',', (size_t)(end - p));
        if (!e)
            e = end;
        double d;
        if (e == p)
            return qdq_fail(err, QDQ_EINVAL, "%s: item %zu is empty (expected comma-separated "
                        "numbers)", key, i);
        if (proto_num_parse_f64(p, e, &d) != (size_t)(e - p))
            return qdq_fail(err, QDQ_EINVAL, "%s: item %zu \"%s\" is not a number", key, i,
                        proto_printable(q, p, (size_t)(e - p)));
        if (e == end)
            break;
        p = e + 1;
    }
    size_t n = (size_t)(end - value);
    *text = malloc(n + 1);
    if (!*text)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for %s", key);
    memcpy(*text, value, n + 1);
    return 0;
}

int proto_query_arg(proto_request *req, const char *key, const char *value,
                    const proto_limits *lim, qdq_error *err)
{
    char q[48];
    int k = 0;
    while (k < K_COUNT && strcmp(key, key_names[k]))
        k++;
    if (k == K_COUNT)
        return qdq_fail(err, QDQ_EINVAL, "unknown query parameter \"%s\" (expected dtype, shape, "
                    "num_bits, signed_input, range_given, round_mode, narrow_range, axis, "
                    "input_min, input_max, stats)", proto_printable(q, key, strlen(key)));
    if (req->query_seen & (1u << k))
        return qdq_fail(err, QDQ_EINVAL, "query parameter \"%s\" is given twice", key);

    int64_t v;
    int rc = 0;
    switch ((enum key)k) {
    case K_DTYPE:
        if (proto_dtype_parse(value, strlen(value), &req->dtype))
            return qdq_fail(err, QDQ_EINVAL, "dtype: unknown dtype \"%s\" (expected float32, "
                        "float64, float16, half, bfloat16, FP32, FP64, FP16 or BF16)",
                        proto_printable(q, value, strlen(value)));
        req->dtype_given = true;
        break;
    case K_SHAPE:
        rc = parse_shape(req, value, lim, err);
        break;
    case K_NUM_BITS:
    case K_AXIS:
        rc = k == K_AXIS ? parse_int(value, INT64_MIN, INT64_MAX, &v)
                         : parse_int(value, INT32_MIN, INT32_MAX, &v);
        if (rc)
            return qdq_fail(err, QDQ_EINVAL, "%s: \"%s\" is %s", key,
                            proto_printable(q, value, strlen(value)),
                            rc == 1 ? "not an integer" : "out of range");
        if (k == K_AXIS)
            req->attrs.axis = v;
        else
            req->attrs.num_bits = (int)v;
        break;
    case K_SIGNED_INPUT:
    case K_RANGE_GIVEN:
    case K_NARROW_RANGE:
    case K_STATS: {
        bool b;
        if (parse_bool(value, &b))
            return qdq_fail(err, QDQ_EINVAL, "%s: \"%s\" is not a boolean (expected true, false, 1 "
                        "or 0)", key, proto_printable(q, value, strlen(value)));
        *(k == K_SIGNED_INPUT ? &req->attrs.signed_input
          : k == K_RANGE_GIVEN ? &req->attrs.range_given
          : k == K_STATS      ? &req->want_stats : &req->attrs.narrow_range) = b;
        break;
    }
    case K_ROUND_MODE:
        if (!strcmp(value, "HALF_TO_EVEN"))
            req->attrs.round_mode = QDQ_HALF_TO_EVEN;
        else if (!strcmp(value, "HALF_UP"))
            req->attrs.round_mode = QDQ_HALF_UP;
        else
            return qdq_fail(err, QDQ_EINVAL, "round_mode: \"%s\" is not HALF_TO_EVEN or HALF_UP",
                        proto_printable(q, value, strlen(value)));
        break;
    case K_INPUT_MIN:
        rc = keep_bounds(key, value, &req->min_text, err);
        break;
    case K_INPUT_MAX:
        rc = keep_bounds(key, value, &req->max_text, err);
        break;
    case K_COUNT:
        break;
    }
    if (rc)
        return rc;
    req->query_seen |= 1u << k;
    return 0;
}

/* One bound's text to an array of req->dtype; the text is freed once it is converted. */
static int convert(proto_request *req, const char *key, char **text, void **arr, size_t *n,
                   qdq_error *err)
{
    if (!*text)
        return 0;
    const char *s = *text, *end = s + strlen(s);
    size_t items = 1;
    for (const char *p = s; *p; p++)
        items += *p == ',';
    void *a = calloc(items, qdq_dtype_size(req->dtype));
    if (!a)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for %s", key);
    for (size_t i = 0; i < items; i++) {
        const char *e = memchr(s, ',', (size_t)(end - s));
        if (!e)
            e = end;
        /* keep_bounds checked the syntax; this guards a text set some other way */
        if (e == s || proto_num_parse_dtype(req->dtype, s, e, a, i) != (size_t)(e - s)) {
            free(a);
            return qdq_fail(err, QDQ_EINVAL, "%s: item %zu is not a number", key, i);
        }
        /* A finite number too large for the dtype is refused (as in JSON), not made infinite. */
        double v = req->dtype == QDQ_FLOAT64 ? ((double *)a)[i]
                   : req->dtype == QDQ_FLOAT32 ? ((float *)a)[i]
                   : req->dtype == QDQ_FLOAT16 ? qdq_f16_to_f32(((uint16_t *)a)[i])
                                               : qdq_bf16_to_f32(((uint16_t *)a)[i]);
        if (isinf(v) && s[s[0] == '-'] != 'I') {
            free(a);
            return qdq_fail(err, QDQ_EINVAL, "%s: item %zu (%.20s%s) is out of range for %s", key, i,
                        s, e - s > 20 ? "..." : "", qdq_dtype_name(req->dtype));
        }
        if (e < end)
            s = e + 1;
    }
    free(*arr);
    *arr = a;
    *n = items;
    free(*text);
    *text = NULL;
    return 0;
}

int proto_query_bounds(proto_request *req, qdq_error *err)
{
    int rc = convert(req, "input_min", &req->min_text, &req->min, &req->n_min, err);
    return rc ? rc : convert(req, "input_max", &req->max_text, &req->max, &req->n_max, err);
}

int proto_raw_finish(proto_request *req, uint64_t body_len, const proto_limits *lim,
                     qdq_error *err)
{
    size_t size = qdq_dtype_size(req->dtype);
    const char *name = qdq_dtype_name(req->dtype);
    if (!size)
        return qdq_fail(err, QDQ_EINVAL, "dtype is not supported: %d", (int)req->dtype);
    if (!req->shape_given) {
        if (body_len % size)
            return qdq_fail(err, QDQ_EINVAL, "body is %" PRIu64 " bytes, not a multiple of %zu "
                        "(the size of one %s)", body_len, size, name);
        uint64_t count = body_len / size;
        if (count > lim->max_elements || count > (uint64_t)INT64_MAX)
            return qdq_fail(err, PROTO_ETOOBIG, "body holds %" PRIu64 " %s elements; the limit is "
                        "%" PRIu64, count, name, lim->max_elements);
        req->rank = 1;
        req->dims[0] = (int64_t)count;
        req->count = count;
    } else {
        char t[96];
        if (req->count > lim->max_elements)
            return qdq_fail(err, PROTO_ETOOBIG, "shape %s has %" PRIu64 " elements; the limit is "
                        "%" PRIu64, dims_text(req->dims, req->rank, t, sizeof t), req->count,
                        lim->max_elements);
        if (req->count > UINT64_MAX / size || req->count * size != body_len) {
            if (req->count > UINT64_MAX / size)
                return qdq_fail(err, QDQ_EINVAL, "body is %" PRIu64 " bytes but shape %s of %s needs "
                            "more than 2^64 bytes", body_len, dims_text(req->dims, req->rank, t,
                            sizeof t), name);
            return qdq_fail(err, QDQ_EINVAL, "body is %" PRIu64 " bytes but shape %s of %s needs "
                        "%" PRIu64 " bytes", body_len, dims_text(req->dims, req->rank, t,
                        sizeof t), name, req->count * size);
        }
    }
    req->form = PROTO_FORM_RAW;
    return proto_query_bounds(req, err);
}
