/*
 * Native JSON responses (docs/api.md, "JSON responses"): our own writer into a proto_buf, numbers through
 * proto_num_format_* (shortest text that reads back to the same value of the dtype).
 *
 * The output takes the request's form: nested arrays (rank 0: a bare number), or the object
 * {"dtype", "shape", "data": [flat]}, or {"dtype", "shape", "b64"}. A raw or .npy request
 * answered in JSON (Accept: application/json) gets the "data" object form: it keeps the dtype
 * and shape, and works for every dtype.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* Longest number text plus a separator. */
#define SLOT (PROTO_NUM_MAX + 1)

static int put(proto_buf *b, const char *s)
{
    return proto_buf_append(b, s, strlen(s));
}

/*
 * Elements [begin, begin + n) of a, comma-separated. Space is reserved a block at a time so
 * the inner loop only formats: each number may scribble up to PROTO_NUM_MAX bytes past its end,
 * which the block's reservation covers.
 */
int proto_json_put_numbers(proto_buf *b, qdq_dtype dt, const void *a, uint64_t begin,
                           uint64_t n)
{
    const uint64_t block = 4096;
    for (uint64_t i = 0; i < n;) {
        uint64_t m = n - i < block ? n - i : block;
        if (proto_buf_reserve(b, (size_t)m * SLOT))
            return PROTO_ENOMEM;
        char *o = b->data + b->len;
        uint64_t j = begin + i, end = j + m;
        switch (dt) {
        case QDQ_FLOAT32:
            for (; j < end; j++) {
                o += proto_num_format_f32(((const float *)a)[j], o);
                *o++ = ',';
            }
            break;
        case QDQ_FLOAT64:
            for (; j < end; j++) {
                o += proto_num_format_f64(((const double *)a)[j], o);
                *o++ = ',';
            }
            break;
        default:
            for (; j < end; j++) {
                o += proto_num_format_dtype(dt, a, (size_t)j, o);
                *o++ = ',';
            }
            break;
        }
        b->len = (size_t)(o - b->data);
        i += m;
    }
    if (n)
        b->len--; /* the last comma */
    return 0;
}

static int put_chars(proto_buf *b, char c, int n)
{
    if (proto_buf_reserve(b, (size_t)n))
        return PROTO_ENOMEM;
    memset(b->data + b->len, c, (size_t)n);
    b->len += (size_t)n;
    return 0;
}

/*
 * Nested arrays of shape dims. Rows of the last dimension are written whole; between rows,
 * the dimensions that wrapped close and reopen. A zero dimension cuts the nesting there: [2, 0,
 * 3] prints as [[],[]].
 */
static int put_nested(proto_buf *b, qdq_dtype dt, const void *a, int rank, const int64_t *dims)
{
    if (rank == 0)
        return proto_json_put_numbers(b, dt, a, 0, 1);
    int r = rank;
    for (int i = 0; i < rank; i++)
        if (dims[i] == 0) {
            r = i + 1; /* dims[i] is the (empty) innermost level now */
            break;
        }
    uint64_t inner = (uint64_t)dims[r - 1], rows = 1;
    for (int i = 0; i < r - 1; i++)
        rows *= (uint64_t)dims[i];
    int64_t idx[PROTO_MAX_RANK] = { 0 };
    if (put_chars(b, '[', r - 1))
        return PROTO_ENOMEM;
    for (uint64_t row = 0; row < rows; row++) {
        if (row) {
            int wrapped = 0; /* outer dimensions that rolled over to this row */
            for (int k = r - 2; k >= 0; k--) {
                if (++idx[k] < dims[k])
                    break;
                idx[k] = 0;
                wrapped++;
            }
            if (put_chars(b, ']', wrapped) || put_chars(b, ',', 1) || put_chars(b, '[', wrapped))
                return PROTO_ENOMEM;
        }
        if (put_chars(b, '[', 1) || proto_json_put_numbers(b, dt, a, row * inner, inner) ||
            put_chars(b, ']', 1))
            return PROTO_ENOMEM;
    }
    return put_chars(b, ']', r - 1);
}

static int put_shape(proto_buf *b, const proto_request *req)
{
    char tmp[24];
    if (put(b, "["))
        return PROTO_ENOMEM;
    for (int i = 0; i < req->rank; i++) {
        snprintf(tmp, sizeof tmp, "%s%lld", i ? "," : "", (long long)req->dims[i]);
        if (put(b, tmp))
            return PROTO_ENOMEM;
    }
    return put(b, "]");
}

static int put_b64(proto_buf *b, const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (SIZE_MAX - 2) / 4 * 3 - 2 || proto_buf_reserve(b, (n + 2) / 3 * 4))
        return PROTO_ENOMEM;
    const unsigned char *s = data;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[0] = tab[w >> 18];
        o[1] = tab[(w >> 12) & 63];
        o[2] = tab[(w >> 6) & 63];
        o[3] = tab[w & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        o[0] = tab[w >> 18];
        o[1] = tab[(w >> 12) & 63];
        o[2] = i + 1 < n ? tab[(w >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

/* One reported quantity: a number for axis -1, else an array over the channels. */
static int put_range(proto_buf *b, const qdq_plan *plan, const void *params, int which)
{
    static const char *const names[6] = {
        ",\"input_min\":", ",\"input_max\":", ",\"output_min\":", ",\"output_max\":",
        ",\"scale\":", ",\"inverse_scale\":",
    };
    bool per_channel = plan->attrs.axis != -1;
    if (put(b, names[which]) || (per_channel && put(b, "[")))
        return PROTO_ENOMEM;
    for (uint64_t c = 0; c < plan->channels; c++) {
        qdq_range rg;
        qdq_params_get(plan, params, c, &rg);
        const double v[6] = { rg.input_min, rg.input_max, rg.output_min, rg.output_max,
                              rg.scale, rg.inverse_scale };
        if (proto_buf_reserve(b, SLOT))
            return PROTO_ENOMEM;
        char *o = b->data + b->len;
        if (c)
            *o++ = ',';
        /* The compute type: float64 for float64, float32 (held exactly) for the others. */
        if (qdq_dtype_is_double(plan->dtype))
            o += proto_num_format_f64(v[which], o);
        else
            o += proto_num_format_f32((float)v[which], o);
        b->len = (size_t)(o - b->data);
        if (!per_channel)
            break;
    }
    return per_channel ? put(b, "]") : 0;
}

static int encode(const proto_request *req, const qdq_plan *plan, const void *params,
                  const void *out, proto_buf *b)
{
    if (put(b, "{\"output\":"))
        return PROTO_ENOMEM;
    if (req->form == PROTO_FORM_NESTED) {
        if (put_nested(b, req->dtype, out, req->rank, req->dims))
            return PROTO_ENOMEM;
    } else {
        if (put(b, "{\"dtype\":\"") || put(b, qdq_dtype_name(req->dtype)) ||
            put(b, "\",\"shape\":") || put_shape(b, req))
            return PROTO_ENOMEM;
        if (req->form == PROTO_FORM_B64) {
            if (put(b, ",\"b64\":\"") ||
                put_b64(b, out, (size_t)req->count * qdq_dtype_size(req->dtype)) || put(b, "\"}"))
                return PROTO_ENOMEM;
        } else {
            if (put(b, ",\"data\":[") || proto_json_put_numbers(b, req->dtype, out, 0, req->count) ||
                put(b, "]}"))
                return PROTO_ENOMEM;
        }
    }
    if (proto_json_put_ranges(b, plan, params))
        return PROTO_ENOMEM;
    if (req->stats && (put(b, ",\"stats\":") || proto_stats_json(req->stats, b)))
        return PROTO_ENOMEM;
    return put(b, "}");
}

int proto_json_put_ranges(proto_buf *b, const qdq_plan *plan, const void *params)
{
    for (int which = 0; which < 6; which++)
        if (put_range(b, plan, params, which))
            return PROTO_ENOMEM;
    return 0;
}

int proto_stats_json(const qdq_stats *st, proto_buf *b)
{
    qdq_stats_summary s;
    qdq_stats_summarize(st, &s);
    char n[PROTO_NUM_MAX + 1], c[24];
    int rc = put(b, "{\"max_abs_error\":");
    rc = rc || proto_buf_append(b, n, proto_num_format_f64(s.max_abs_error, n));
    rc = rc || put(b, ",\"rmse\":");
    rc = rc || proto_buf_append(b, n, proto_num_format_f64(s.rmse, n));
    rc = rc || put(b, ",\"sqnr_db\":");
    rc = rc || (s.sqnr_null ? put(b, "null")
                            : proto_buf_append(b, n, proto_num_format_f64(s.sqnr_db, n)));
    snprintf(c, sizeof c, "%llu", (unsigned long long)s.nonfinite);
    rc = rc || put(b, ",\"nonfinite\":") || put(b, c) || put(b, "}");
    return rc ? PROTO_ENOMEM : 0;
}

int proto_json_encode(const proto_request *req, const qdq_plan *plan, const void *params,
                      const void *out, proto_buf *buf, qdq_error *err)
{
    size_t start = buf->len;
    int rc;
    if (!qdq_dtype_name(req->dtype) || req->rank < 0 || req->rank > PROTO_MAX_RANK)
        rc = QDQ_EINVAL;
    else
        rc = encode(req, plan, params, out, buf);
    if (rc) {
        buf->len = start; /* nothing half-written stays */
        if (rc == PROTO_ENOMEM)
            return qdq_fail(err, rc, "out of memory writing the JSON response");
        return qdq_fail(err, rc, "cannot write a JSON response for dtype %d, rank %d",
                        (int)req->dtype, req->rank);
    }
    return rc;
}
