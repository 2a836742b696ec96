/*
 * The .npy form (docs/api.md, "NumPy .npy"): NumPy's file format, versions 1.0, 2.0 and 3.0.
 *
 *   "\x93NUMPY" major minor  header length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0)
 *   header: a Python dict literal, {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *           padded with spaces and a final '\n' (UTF-8 in 3.0, latin-1 in 1.0 and 2.0)
 *   data:   count * itemsize bytes
 *
 * The header is never evaluated: a small parser accepts exactly the dict NumPy writes (keys in
 * any order, any whitespace, either quote) and nothing else. Object arrays would need pickles,
 * which are never loaded.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
/* No real header comes near this (NumPy itself refuses more than 10000 bytes by default). */
#define HEADER_MAX ((uint32_t)1 << 20)
/* The largest dimension accepted (as in the query's shape). */
#define DIM_MAX ((uint64_t)1 << 62)

/* "(2, 3)", "(5,)", "()": the shape as NumPy prints it, cut short if it does not fit. */
static const char *tuple_text(const int64_t *dims, int rank, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "(");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (k < cap)
        snprintf(out + k, cap - k, rank == 1 ? ",)" : ")");
    return out;
}

/* ---- the header dict ---- */

typedef struct cursor {
    const char *p, *start, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Skips whitespace, then takes ch if it is next. */
static bool take(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static int syntax(cursor *c, qdq_error *err, const char *what)
{
    char q[48];
    skip_ws(c);
    return qdq_fail(err, QDQ_EINVAL, "the .npy header is not a valid dict: %s at byte %zu (\"%s\")",
                what, (size_t)(c->p - c->start), proto_printable(q, c->p, (size_t)(c->end - c->p)));
}

/* A string literal without escapes ('...' or "..."): its contents. */
static bool string(cursor *c, const char **s, size_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char quote = *c->p;
    const char *b = c->p + 1, *e = b;
    while (e < c->end && *e != quote && *e != '\\' && *e != '\n')
        e++;
    if (e >= c->end || *e != quote)
        return false;
    *s = b;
    *n = (size_t)(e - b);
    c->p = e + 1;
    return true;
}

/* The identifier word (True, False) if one is next. */
static bool word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n))
        return false;
    const char *e = c->p + n;
    if (e < c->end && ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
                       (*e >= '0' && *e <= '9') || *e == '_'))
        return false;
    c->p = e;
    return true;
}

/* (d0, d1, ...) with a trailing comma optional, but required for one element as in Python. */
static int shape_tuple(cursor *c, int64_t *dims, int *rank, qdq_error *err)
{
    *rank = 0;
    if (!take(c, '('))
        return syntax(c, err, "'shape' is not a tuple");
    bool comma = false;
    for (;;) {
        if (take(c, ')'))
            break;
        if (*rank && !comma)
            return syntax(c, err, "expected ',' or ')' in 'shape'");
        skip_ws(c);
        if (c->p < c->end && *c->p == '-')
            return syntax(c, err, "a dimension of 'shape' is negative");
        uint64_t d = 0;
        const char *b = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            d = d <= (UINT64_MAX - 9) / 10 ? d * 10 + (uint64_t)(*c->p - '0') : UINT64_MAX;
            c->p++;
        }
        if (c->p == b)
            return syntax(c, err, "expected a non-negative integer in 'shape'");
        if (*rank == PROTO_MAX_RANK)
            return qdq_fail(err, PROTO_ETOOBIG, "the .npy shape has more than %d dimensions",
                        PROTO_MAX_RANK);
        if (d > DIM_MAX)
            return qdq_fail(err, PROTO_ETOOBIG, "the .npy shape's dimension %d is larger than 2^62",
                        *rank);
        dims[(*rank)++] = (int64_t)d;
        comma = take(c, ',');
    }
    if (*rank == 1 && !comma)
        return qdq_fail(err, QDQ_EINVAL, "the .npy header's 'shape' (%" PRId64 ") is not a tuple "
                    "(a 1-D shape is written (%" PRId64 ",))", dims[0], dims[0]);
    return 0;
}

/* What the header says. */
typedef struct header {
    const char *descr;
    size_t descr_len;
    bool fortran;
    int64_t dims[PROTO_MAX_RANK];
    int rank;
} header;

static int parse_dict(cursor *c, header *h, qdq_error *err)
{
    enum { DESCR = 1, FORTRAN = 2, SHAPE = 4 };
    unsigned seen = 0;
    char q[48];
    if (!take(c, '{'))
        return syntax(c, err, "expected '{'");
    for (;;) {
        if (take(c, '}'))
            break;
        const char *k;
        size_t n;
        if (!string(c, &k, &n))
            return syntax(c, err, "expected a quoted key or '}'");
        unsigned key = n == 5 && !memcmp(k, "descr", 5)           ? DESCR
                       : n == 13 && !memcmp(k, "fortran_order", 13) ? FORTRAN
                       : n == 5 && !memcmp(k, "shape", 5)           ? SHAPE
                                                                    : 0;
        if (!key)
            return qdq_fail(err, QDQ_EINVAL, "the .npy header has an unknown key '%s' (expected "
                        "'descr', 'fortran_order' and 'shape')", proto_printable(q, k, n));
        if (seen & key)
            return qdq_fail(err, QDQ_EINVAL, "the .npy header has the key '%s' twice",
                        proto_printable(q, k, n));
        seen |= key;
        if (!take(c, ':'))
            return syntax(c, err, "expected ':' after a key");
        if (key == DESCR) {
            if (take(c, '['))
                return qdq_fail(err, PROTO_EMEDIA, "structured arrays are not supported (the .npy "
                            "descr is a list)");
            if (!string(c, &h->descr, &h->descr_len))
                return syntax(c, err, "'descr' is not a string");
        } else if (key == FORTRAN) {
            if (word(c, "True"))
                h->fortran = true;
            else if (word(c, "False"))
                h->fortran = false;
            else
                return syntax(c, err, "'fortran_order' is not True or False");
        } else {
            int rc = shape_tuple(c, h->dims, &h->rank, err);
            if (rc)
                return rc;
        }
        if (!take(c, ',')) {
            if (take(c, '}'))
                break;
            return syntax(c, err, "expected ',' or '}'");
        }
    }
    skip_ws(c);
    if (c->p != c->end)
        return syntax(c, err, "unexpected text after the dict");
    const char *missing = !(seen & DESCR) ? "descr" : !(seen & FORTRAN) ? "fortran_order"
                          : !(seen & SHAPE) ? "shape" : NULL;
    if (missing)
        return qdq_fail(err, QDQ_EINVAL, "the .npy header has no '%s'", missing);
    return 0;
}

/* The dtype of a descr, or an error. Sets *v2 when bfloat16 came as a void type. */
static int descr_dtype(const header *h, const proto_request *req, qdq_dtype *dt, bool *v2,
                       qdq_error *err)
{
    const char *s = h->descr;
    size_t n = h->descr_len;
    char q[48], q2[48];
    bool bf16 = req->dtype_given && req->dtype == QDQ_BFLOAT16;
    *v2 = false;
    if (memchr(s, 'O', n))
        return qdq_fail(err, PROTO_EMEDIA, "object arrays are not accepted (pickles are never "
                    "loaded): .npy descr '%s'", proto_printable(q, s, n));
    if (n && s[0] == '>')
        return qdq_fail(err, PROTO_EMEDIA, "big-endian arrays are not supported: .npy descr '%s' "
                    "(save arr.astype('<%s'))", proto_printable(q, s, n),
                    proto_printable(q2, s + 1, n - 1));
    if (n == 3 && !memcmp(s, "<f4", 3))
        *dt = QDQ_FLOAT32;
    else if (n == 3 && !memcmp(s, "<f8", 3))
        *dt = QDQ_FLOAT64;
    else if (n == 3 && !memcmp(s, "<f2", 3))
        *dt = QDQ_FLOAT16;
    else if (n == 3 && (!memcmp(s, "<V2", 3) || !memcmp(s, "|V2", 3) || !memcmp(s, "<u2", 3))) {
        if (!bf16)
            return qdq_fail(err, PROTO_EMEDIA, ".npy descr '%s' is not a float type; for bfloat16 "
                        "data add dtype=bfloat16 to the query", proto_printable(q, s, n));
        *dt = QDQ_BFLOAT16;
        *v2 = s[1] == 'V';
    } else {
        return qdq_fail(err, PROTO_EMEDIA, ".npy descr '%s' is not supported (expected '<f4', "
                    "'<f8', '<f2', or '<V2' or '<u2' with dtype=bfloat16)",
                    proto_printable(q, s, n));
    }
    if (req->dtype_given && req->dtype != *dt)
        return qdq_fail(err, QDQ_EINVAL, "dtype=%s in the query but the .npy descr '%s' is %s",
                    qdq_dtype_name(req->dtype), proto_printable(q, s, n), qdq_dtype_name(*dt));
    return 0;
}

/* More bytes are needed: wait for them, or fail when the file has no more. */
static int need(size_t n, uint64_t file_len, qdq_error *err)
{
    if (file_len != UINT64_MAX && n > file_len)
        return qdq_fail(err, QDQ_EINVAL, "the .npy file is truncated: %" PRIu64 " bytes, and its "
                    "header needs %zu", file_len, n);
    return qdq_fail(err, PROTO_EAGAIN, "%zu bytes of .npy header needed", n);
}

int proto_npy_header_parse(const uint8_t *buf, size_t len, uint64_t file_len,
                           const proto_limits *lim, proto_request *req, size_t *data_offset,
                           qdq_error *err)
{
    char t[96], t2[96];
    *data_offset = 0;
    if (len && memcmp(buf, MAGIC, len < MAGIC_LEN ? len : MAGIC_LEN))
        return qdq_fail(err, QDQ_EINVAL, "not a .npy file: it does not start with \\x93NUMPY");
    if (len < MAGIC_LEN + 2)
        return need(MAGIC_LEN + 2, file_len, err);
    int version = buf[6];
    if (version < 1 || version > 3 || buf[7] != 0)
        return qdq_fail(err, QDQ_EINVAL, ".npy format version %d.%d is not supported (1.0, 2.0 "
                    "and 3.0 are)", buf[6], buf[7]);
    size_t prefix = version == 1 ? 10 : 12;
    if (len < prefix)
        return need(prefix, file_len, err);
    uint32_t hlen = version == 1 ? (uint32_t)buf[8] | (uint32_t)buf[9] << 8
                                 : (uint32_t)buf[8] | (uint32_t)buf[9] << 8 |
                                       (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    if (hlen > HEADER_MAX)
        return qdq_fail(err, QDQ_EINVAL, "the .npy header length %" PRIu32 " is more than 1 MiB",
                    hlen);
    size_t off = prefix + hlen;
    if (file_len != UINT64_MAX && off > file_len)
        return qdq_fail(err, QDQ_EINVAL, "the .npy header length %" PRIu32 " runs past the end of "
                    "the %" PRIu64 "-byte file", hlen, file_len);
    if (len < off)
        return need(off, file_len, err);

    header h = { 0 };
    cursor c = { (const char *)buf + prefix, (const char *)buf + prefix, (const char *)buf + off };
    int rc = parse_dict(&c, &h, err);
    if (rc)
        return rc;
    qdq_dtype dt = QDQ_FLOAT32;
    bool v2;
    if ((rc = descr_dtype(&h, req, &dt, &v2, err)))
        return rc;

    int max_rank = lim->max_rank < PROTO_MAX_RANK ? lim->max_rank : PROTO_MAX_RANK;
    if (h.rank > max_rank)
        return qdq_fail(err, PROTO_ETOOBIG, "the .npy shape has %d dimensions; the limit is %d",
                    h.rank, max_rank);
    uint64_t count = 1;
    int big = 0; /* dimensions over 1: Fortran and C order are the same bytes when <= 1 */
    for (int i = 0; i < h.rank; i++) {
        uint64_t d = (uint64_t)h.dims[i];
        if (d != 0 && count > UINT64_MAX / d)
            return qdq_fail(err, PROTO_ETOOBIG, "the .npy shape %s: the element count overflows 64 "
                        "bits", tuple_text(h.dims, h.rank, t, sizeof t));
        count *= d;
        big += d > 1;
    }
    if (count > lim->max_elements)
        return qdq_fail(err, PROTO_ETOOBIG, "the .npy shape %s has %" PRIu64 " elements; the limit "
                    "is %" PRIu64, tuple_text(h.dims, h.rank, t, sizeof t), count,
                    lim->max_elements);
    if (h.fortran && big > 1 && count)
        return qdq_fail(err, PROTO_EMEDIA, "Fortran-order arrays are not supported (shape %s); save "
                    "np.ascontiguousarray(arr)", tuple_text(h.dims, h.rank, t, sizeof t));
    if (req->shape_given && (req->rank != h.rank ||
                             memcmp(req->dims, h.dims, (size_t)h.rank * sizeof h.dims[0])))
        return qdq_fail(err, QDQ_EINVAL, "shape in the query is %s but the .npy shape is %s",
                    tuple_text(req->dims, req->rank, t, sizeof t),
                    tuple_text(h.dims, h.rank, t2, sizeof t2));
    size_t size = qdq_dtype_size(dt);
    if (file_len != UINT64_MAX && (count > UINT64_MAX / size || count * size != file_len - off))
        return qdq_fail(err, QDQ_EINVAL, "the .npy data is %" PRIu64 " bytes but shape %s of %s "
                    "needs %" PRIu64 " bytes", file_len - off,
                    tuple_text(h.dims, h.rank, t, sizeof t), qdq_dtype_name(dt), count * size);

    req->dtype = dt;
    req->rank = h.rank;
    memcpy(req->dims, h.dims, (size_t)h.rank * sizeof h.dims[0]);
    req->count = count;
    req->form = PROTO_FORM_NPY;
    req->npy_version = version;
    req->npy_bf16_v2 = v2;
    if ((rc = proto_query_bounds(req, err)))
        return rc;
    *data_offset = off;
    return 0;
}

int proto_npy_header_write(const proto_request *req, proto_buf *buf)
{
    static const char *const descrs[] = { "<f4", "<f8", "<f2", "<u2" };
    if ((unsigned)req->dtype > QDQ_BFLOAT16 || req->rank < 0 || req->rank > PROTO_MAX_RANK)
        return QDQ_EINVAL;
    const char *descr = req->dtype == QDQ_BFLOAT16 && req->npy_bf16_v2 ? "<V2"
                                                                       : descrs[req->dtype];
    int version = req->npy_version == 2 || req->npy_version == 3 ? req->npy_version : 1;
    char dict[PROTO_MAX_RANK * 22 + 128];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, "
                                "'shape': ", descr);
    n += strlen(tuple_text(req->dims, req->rank, dict + n, sizeof dict - n));
    n += (size_t)snprintf(dict + n, sizeof dict - n, ", }");
    size_t prefix = version == 1 ? 10 : 12;
    size_t pad = (64 - (prefix + n + 1) % 64) % 64, hlen = n + pad + 1;
    if (proto_buf_reserve(buf, prefix + hlen))
        return PROTO_ENOMEM;
    uint8_t *o = (uint8_t *)buf->data + buf->len;
    memcpy(o, MAGIC, MAGIC_LEN);
    o[6] = (uint8_t)version;
    o[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++)
        o[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(o + prefix, dict, n);
    memset(o + prefix + n, ' ', pad);
    o[prefix + n + pad] = '\n';
    buf->len += prefix + hlen;
    return 0;
}
