/*
 * Native JSON requests (docs/api.md, "JSON requests"), read with the pull reader (json_pull.h): the
 * request is one object with known keys, so each key's value is read by code that knows its
 * shape.
 *
 * Rules beyond the reader's: the body is one object, with nothing but whitespace after it; a
 * leading BOM is refused; unknown and duplicate keys are errors; max_body bounds the body.
 *
 * Choices where the API leaves room: "dtype" in the object form is optional (float32); "shape"
 * is required with "b64" and optional with "data", where only the element count must agree
 * with it (the nesting of data need not). Keys may come in any order: when "data" precedes
 * "dtype", or the bounds precede "input", they are checked first and read into the dtype after
 * the object closes. Integers (num_bits, axis, shape) must be written as integers: 8, not 8.0.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pull.h"
#include "proto.h"

/* ---- the request ---- */

enum {
    K_INPUT, K_NUM_BITS, K_SIGNED_INPUT, K_RANGE_GIVEN, K_ROUND_MODE, K_NARROW_RANGE, K_AXIS,
    K_INPUT_MIN, K_INPUT_MAX, K_STATS, K_NKEYS
};
static const char *const top_keys[K_NKEYS] = {
    "input", "num_bits", "signed_input", "range_given", "round_mode", "narrow_range", "axis",
    "input_min", "input_max", "stats",
};
enum { I_DTYPE, I_SHAPE, I_DATA, I_B64, I_NKEYS };
static const char *const input_keys[I_NKEYS] = { "dtype", "shape", "data", "b64" };

/* What the first pass leaves for after the object: spans to read once the dtype is known. */
typedef struct pending {
    const char *bound[2]; /* input_min / input_max value, or NULL */
    size_t n_bound[2];
    const char *data;     /* "data" seen before "dtype" */
    const char *b64, *b64_end;
    bool shape_given;
    int shape_rank;
    int64_t shape[PROTO_MAX_RANK];
    uint64_t shape_count;
} pending;

/* "shape": [2, 3] (rank 0 is []). */
static int read_shape(proto_jr *r, int depth, pending *pd)
{
    if (proto_jr_peek(r) != '[')
        return proto_jr_type_error(r, "input.shape", "an array of integers");
    if (proto_jr_enter(r, depth))
        return r->err->code;
    r->p++;
    proto_jr_ws(r);
    pd->shape_rank = 0;
    pd->shape_count = 1;
    bool overflow = false;
    if (proto_jr_peek(r) == ']') {
        r->p++;
        return 0;
    }
    for (;;) {
        char key[32];
        snprintf(key, sizeof key, "input.shape[%d]", pd->shape_rank);
        if (pd->shape_rank >= r->lim.max_rank)
            return qdq_fail(r->err, PROTO_ETOOBIG, "input.shape: rank %d exceeds max_rank %d",
                        pd->shape_rank + 1, r->lim.max_rank);
        int64_t v;
        if (proto_jr_peek(r) == '-' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
            return qdq_fail(r->err, QDQ_EINVAL, "%s: expected a non-negative integer, got a negative "
                        "number at byte %zu", key, proto_jr_off(r));
        if (proto_jr_int(r, key, 0, INT64_MAX, &v))
            return r->err->code;
        pd->shape[pd->shape_rank++] = v;
        if (v && pd->shape_count > UINT64_MAX / (uint64_t)v)
            overflow = true;
        pd->shape_count *= (uint64_t)v;
        proto_jr_ws(r);
        if (proto_jr_peek(r) == ']') {
            r->p++;
            break;
        }
        if (proto_jr_peek(r) != ',')
            return proto_jr_type_error(r, "input.shape", "',' or ']'");
        r->p++;
        proto_jr_ws(r);
    }
    if (overflow)
        return qdq_fail(r->err, PROTO_ETOOBIG, "input.shape: more than 2^64 elements (max_elements %llu)",
                    (unsigned long long)r->lim.max_elements);
    if (pd->shape_count > r->lim.max_elements)
        return qdq_fail(r->err, PROTO_ETOOBIG, "input.shape: %llu elements exceed max_elements %llu",
                    (unsigned long long)pd->shape_count, (unsigned long long)r->lim.max_elements);
    /* A zero dimension makes the product 0 whatever the others are: bound each one too. */
    for (int i = 0; i < pd->shape_rank; i++)
        if ((uint64_t)pd->shape[i] > r->lim.max_elements)
            return qdq_fail(r->err, PROTO_ETOOBIG, "input.shape[%d]: %lld exceeds max_elements %llu", i,
                        (long long)pd->shape[i], (unsigned long long)r->lim.max_elements);
    return 0;
}

/*
 * input_min / input_max: a number, or an array of numbers (one per channel). With out NULL
 * only checks and counts (*n); else stores the *n elements of dtype at out.
 */
static int read_bound(proto_jr *r, const char *key, int depth, qdq_dtype dtype, void *out,
                      size_t *n)
{
    proto_jtensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.store = t.fixed = out != NULL;
    t.data = out;
    t.cap = out ? *n : 0;
    if (proto_jr_numbers(r, key, depth, &t))
        return r->err->code;
    *n = (size_t)t.count;
    return 0;
}

/* Standard base64 alphabet: the value of each byte, -1 for bytes outside it. */
static const signed char b64_val[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Standard base64 (RFC 4648 section 4, with padding) of [s, e), where the only escape JSON may
 * have put in is "\/", into exactly `want` bytes at out. */
static int decode_b64(proto_jr *r, const char *s, const char *e, char *out, uint64_t want,
                      const pending *pd, qdq_dtype dtype)
{
    char *tmp = NULL;
    if (memchr(s, '\\', (size_t)(e - s))) { /* rare: unescape "\/" into a copy */
        tmp = malloc((size_t)(e - s));
        if (!tmp)
            return qdq_fail(r->err, PROTO_ENOMEM, "input.b64: out of memory");
        size_t k = 0;
        for (const char *q = s; q < e; q++) {
            if (*q == '\\' && q + 1 < e && q[1] == '/')
                q++;
            else if (*q == '\\') {
                free(tmp);
                return qdq_fail(r->err, QDQ_EINVAL, "input.b64: invalid base64 character (an escape) at "
                            "byte %zu", (size_t)(q - r->base));
            }
            tmp[k++] = *q;
        }
        s = tmp;
        e = tmp + k;
    }
    size_t n = (size_t)(e - s), pad = 0;
    int rc = 0;
    if (n % 4) {
        rc = qdq_fail(r->err, QDQ_EINVAL, "input.b64: length %zu is not a multiple of 4 (standard base64 "
                  "with padding)", n);
        goto out;
    }
    if (n && e[-1] == '=')
        pad = e[-2] == '=' ? 2 : 1;
    uint64_t have = n / 4 * 3 - pad;
    if (have != want) {
        char shp[128];
        size_t k = (size_t)snprintf(shp, sizeof shp, "[");
        for (int i = 0; i < pd->shape_rank && k < sizeof shp; i++)
            k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", i ? "," : "",
                                  (long long)pd->shape[i]);
        if (k < sizeof shp)
            snprintf(shp + k, sizeof shp - k, "]");
        rc = qdq_fail(r->err, QDQ_EINVAL, "input.b64 decodes to %llu bytes but shape %s of %s needs %llu "
                  "(%llu elements of %zu bytes)", (unsigned long long)have, shp,
                  qdq_dtype_name(dtype), (unsigned long long)want,
                  (unsigned long long)pd->shape_count, qdq_dtype_size(dtype));
        goto out;
    }
    unsigned char *o = (unsigned char *)out;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];
            v[j] = b64_val[c];
            if (v[j] < 0 && !(c == '=' && i + 4 == n && j >= 4 - (int)pad)) {
                rc = qdq_fail(r->err, QDQ_EINVAL, "input.b64: invalid base64 character %s%c%s at offset "
                          "%zu of the string", c >= 0x20 && c < 0x7f ? "'" : "(byte ",
                          c >= 0x20 && c < 0x7f ? c : '?', c >= 0x20 && c < 0x7f ? "'" : ")",
                          i + (size_t)j);
                goto out;
            }
        }
        uint32_t w = (uint32_t)(v[0] & 63) << 18 | (uint32_t)(v[1] & 63) << 12 |
                     (uint32_t)(v[2] & 63) << 6 | (uint32_t)(v[3] & 63);
        size_t k = i + 4 == n ? 3 - pad : 3;
        o[0] = (unsigned char)(w >> 16);
        if (k > 1)
            o[1] = (unsigned char)(w >> 8);
        if (k > 2)
            o[2] = (unsigned char)w;
        o += k;
    }
out:
    free(tmp);
    return rc;
}

static void tensor_to_request(proto_jtensor *t, proto_request *req)
{
    /* Give back what doubling over-reserved (a big buffer shrinks in place). */
    if (t->cap > t->count + t->count / 4 + 256) {
        char *p = realloc(t->data, (size_t)(t->count ? t->count : 1) * qdq_dtype_size(t->dtype));
        if (p)
            t->data = p;
    }
    if (!t->data)
        t->data = malloc(qdq_dtype_size(t->dtype)); /* an empty tensor still has a buffer */
    req->data = t->data;
    req->rank = t->rank;
    memcpy(req->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    req->count = t->count;
    t->data = NULL;
}

/* "input": {"dtype": ..., "shape": [...], "data": [...] | "b64": "..."}. */
static int read_input_object(proto_jr *r, proto_request *req, pending *pd)
{
    unsigned seen = 0;
    int which, done = 0;
    proto_jtensor t;
    memset(&t, 0, sizeof t);
    t.dtype = QDQ_FLOAT32;
    if (proto_jr_enter(r, 2))
        return r->err->code;
    r->p++;
    proto_jr_ws(r);
    if (proto_jr_peek(r) == '}')
        return qdq_fail(r->err, QDQ_EINVAL, "input: the object is empty (expected data or b64, with "
                    "dtype and shape)");
    int rc = 0;
    while (!done) {
        if ((rc = proto_jr_key(r, "input", input_keys, I_NKEYS, &seen, &which)))
            goto out;
        switch (which) {
        case I_DTYPE: {
            char name[32], tmp[48];
            size_t len;
            if (proto_jr_peek(r) != '"') {
                rc = proto_jr_type_error(r, "input.dtype", "a string");
                goto out;
            }
            if ((rc = proto_jr_string(r, "input.dtype", name, sizeof name, &len, NULL, NULL)))
                goto out;
            if (len > sizeof name || proto_dtype_parse(name, len, &t.dtype)) {
                rc = qdq_fail(r->err, QDQ_EINVAL, "input.dtype: unknown dtype '%s' (expected float32, "
                          "float64, float16, half, bfloat16, FP32, FP64, FP16 or BF16)",
                          proto_printable(tmp, name, len < sizeof name ? len : sizeof name));
                goto out;
            }
            break;
        }
        case I_SHAPE:
            if ((rc = read_shape(r, 3, pd)))
                goto out;
            pd->shape_given = true;
            break;
        case I_DATA:
            if (seen & 1u << I_DTYPE) {
                t.store = true;
                rc = proto_jr_tensor(r, "input.data", 2, &t);
            } else { /* check now, read after the object, once the dtype is known */
                pd->data = r->p;
                rc = proto_jr_tensor(r, "input.data", 2, &t);
            }
            if (rc)
                goto out;
            break;
        case I_B64:
            if (proto_jr_peek(r) != '"') {
                rc = proto_jr_type_error(r, "input.b64", "a string");
                goto out;
            }
            if ((rc = proto_jr_string(r, "input.b64", NULL, 0, NULL, &pd->b64, &pd->b64_end)))
                goto out;
            break;
        }
        if ((rc = proto_jr_next(r, "input", '}', &done)))
            goto out;
    }
    if ((seen & 1u << I_DATA) && (seen & 1u << I_B64)) {
        rc = qdq_fail(r->err, QDQ_EINVAL, "input: give either data or b64, not both");
        goto out;
    }
    if (!(seen & (1u << I_DATA | 1u << I_B64))) {
        rc = qdq_fail(r->err, QDQ_EINVAL, "input: missing data or b64");
        goto out;
    }
    req->dtype = t.dtype;
    size_t isz = qdq_dtype_size(t.dtype);
    if (seen & 1u << I_B64) {
        if (!pd->shape_given) {
            rc = qdq_fail(r->err, QDQ_EINVAL, "input: shape is required with b64");
            goto out;
        }
        char *buf = malloc(pd->shape_count ? (size_t)pd->shape_count * isz : 1);
        if (!buf) {
            rc = qdq_fail(r->err, PROTO_ENOMEM, "input.b64: out of memory for %llu elements",
                      (unsigned long long)pd->shape_count);
            goto out;
        }
        rc = decode_b64(r, pd->b64, pd->b64_end, buf, pd->shape_count * isz, pd, t.dtype);
        if (rc) {
            free(buf);
            goto out;
        }
        req->data = buf;
        req->count = pd->shape_count;
        req->form = PROTO_FORM_B64;
    } else {
        if (pd->data) {
            proto_jr again = *r;
            again.p = pd->data;
            t.store = true;
            if ((rc = proto_jr_tensor(&again, "input.data", 2, &t)))
                goto out;
        }
        if (pd->shape_given && t.count != pd->shape_count) {
            rc = qdq_fail(r->err, QDQ_EINVAL, "input.data has %llu elements but input.shape needs %llu",
                      (unsigned long long)t.count, (unsigned long long)pd->shape_count);
            goto out;
        }
        tensor_to_request(&t, req);
        req->form = PROTO_FORM_DATA;
    }
    if (pd->shape_given) {
        req->rank = pd->shape_rank;
        memcpy(req->dims, pd->shape, sizeof(int64_t) * (size_t)pd->shape_rank);
        req->count = pd->shape_count;
    }
out:
    free(t.data);
    return rc;
}

static int decode(proto_jr *r, proto_request *req)
{
    pending pd;
    memset(&pd, 0, sizeof pd);
    unsigned seen = 0;
    int which, done = 0;
    uint64_t len = (uint64_t)(r->end - r->base);

    if (len > r->lim.max_body)
        return qdq_fail(r->err, PROTO_ETOOBIG, "body of %llu bytes exceeds max_body %llu",
                    (unsigned long long)len, (unsigned long long)r->lim.max_body);
    if (len >= 3 && !memcmp(r->base, "\xef\xbb\xbf", 3))
        return qdq_fail(r->err, QDQ_EINVAL, "the body starts with a byte order mark (U+FEFF); send "
                    "plain UTF-8 JSON");
    proto_jr_ws(r);
    if (proto_jr_peek(r) < 0)
        return qdq_fail(r->err, QDQ_EINVAL, "empty body: expected a JSON object");
    if (proto_jr_peek(r) != '{')
        return proto_jr_type_error(r, "the body", "a JSON object");
    if (proto_jr_enter(r, 1))
        return r->err->code;
    r->p++;
    proto_jr_ws(r);
    if (proto_jr_peek(r) == '}')
        return qdq_fail(r->err, QDQ_EINVAL, "missing key 'input'");
    while (!done) {
        if (proto_jr_key(r, "the request", top_keys, K_NKEYS, &seen, &which))
            return r->err->code;
        int64_t v;
        bool b = false;
        switch (which) {
        case K_INPUT: {
            int c = proto_jr_peek(r);
            if (c == '{') {
                if (read_input_object(r, req, &pd))
                    return r->err->code;
            } else if (c == '[' || c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9')) {
                proto_jtensor t;
                memset(&t, 0, sizeof t);
                t.dtype = QDQ_FLOAT32;
                t.store = true;
                int rc = proto_jr_tensor(r, "input", 1, &t);
                if (rc) {
                    free(t.data);
                    return rc;
                }
                tensor_to_request(&t, req);
                req->dtype = QDQ_FLOAT32;
                req->form = PROTO_FORM_NESTED;
            } else {
                return proto_jr_type_error(r, "input", "an array, a number or an object");
            }
            break;
        }
        case K_NUM_BITS:
            if (proto_jr_int(r, "num_bits", INT_MIN, INT_MAX, &v))
                return r->err->code;
            req->attrs.num_bits = (int)v;
            break;
        case K_AXIS:
            if (proto_jr_int(r, "axis", INT64_MIN, INT64_MAX, &v))
                return r->err->code;
            req->attrs.axis = v;
            break;
        case K_SIGNED_INPUT:
        case K_RANGE_GIVEN:
        case K_NARROW_RANGE:
        case K_STATS:
            if (proto_jr_bool(r, top_keys[which], &b))
                return r->err->code;
            if (which == K_SIGNED_INPUT)
                req->attrs.signed_input = b;
            else if (which == K_RANGE_GIVEN)
                req->attrs.range_given = b;
            else if (which == K_STATS)
                req->want_stats = b;
            else
                req->attrs.narrow_range = b;
            break;
        case K_ROUND_MODE: {
            char mode[16], tmp[48];
            size_t n;
            if (proto_jr_peek(r) != '"')
                return proto_jr_type_error(r, "round_mode", "a string");
            if (proto_jr_string(r, "round_mode", mode, sizeof mode, &n, NULL, NULL))
                return r->err->code;
            if (n == 12 && !memcmp(mode, "HALF_TO_EVEN", 12))
                req->attrs.round_mode = QDQ_HALF_TO_EVEN;
            else if (n == 7 && !memcmp(mode, "HALF_UP", 7))
                req->attrs.round_mode = QDQ_HALF_UP;
            else
                return qdq_fail(r->err, QDQ_EINVAL, "round_mode: expected \"HALF_TO_EVEN\" or \"HALF_UP\", "
                            "got '%s'",
                            proto_printable(tmp, mode, n < sizeof mode ? n : sizeof mode));
            break;
        }
        case K_INPUT_MIN:
        case K_INPUT_MAX: {
            int k = which == K_INPUT_MAX;
            pd.bound[k] = r->p;
            if (read_bound(r, top_keys[which], 2, QDQ_FLOAT64, NULL, &pd.n_bound[k]))
                return r->err->code;
            break;
        }
        }
        if (proto_jr_next(r, "the request", '}', &done))
            return r->err->code;
    }
    proto_jr_ws(r);
    if (r->p < r->end)
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: unexpected data after the request object at byte %zu",
                    proto_jr_off(r));
    if (!(seen & 1u << K_INPUT))
        return qdq_fail(r->err, QDQ_EINVAL, "missing key 'input'");

    /* The bounds, now in the input's dtype. */
    for (int k = 0; k < 2; k++) {
        if (!pd.bound[k])
            continue;
        size_t n = pd.n_bound[k];
        void *a = malloc((n ? n : 1) * qdq_dtype_size(req->dtype));
        if (!a)
            return qdq_fail(r->err, PROTO_ENOMEM, "%s: out of memory", top_keys[K_INPUT_MIN + k]);
        if (k)
            req->max = a, req->n_max = n;
        else
            req->min = a, req->n_min = n;
        proto_jr again = *r;
        again.p = pd.bound[k];
        if (read_bound(&again, top_keys[K_INPUT_MIN + k], 2, req->dtype, a, &n))
            return r->err->code;
    }
    if (req->attrs.range_given && (!req->min || !req->max))
        return qdq_fail(r->err, QDQ_EINVAL, "range_given is true but %s is missing",
                    !req->min ? "input_min" : "input_max");
    return 0;
}

int proto_json_decode(const char *body, size_t len, const proto_limits *lim, proto_request *req,
                      qdq_error *err)
{
    qdq_error dummy;
    proto_jr r;
    if (!err)
        err = &dummy;
    memset(err, 0, sizeof *err);
    proto_jr_init(&r, body, len, lim, err);
    int rc = decode(&r, req);
    if (rc)
        proto_request_clear(req);
    return rc;
}
