/*
 * The safetensors header (safetensors.h): read with the pull reader (json_pull.h), never a tree
 * (a header may be 100 MB), checked rule by rule as the reference implementation checks it;
 * and written as its writer writes it.
 *
 * Reading keeps every string in one arena and every dimension in another, so a header of a
 * million tensors costs a few allocations. Failures are recorded in a local error first: the
 * reader's QDQ_EINVAL (bad JSON, wrong types) becomes PROTO_ESAFETENSORS on the way out, and
 * every message gets the prefix "safetensors header: ".
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pull.h"
#include "safetensors.h"

/* ---- dtypes ---- */

static const struct {
    const char *name;
    unsigned bits;
} dtypes[PROTO_ST_NDTYPES] = {
    [PROTO_ST_BOOL] = { "BOOL", 8 },
    [PROTO_ST_F4] = { "F4", 4 },
    [PROTO_ST_F6_E2M3] = { "F6_E2M3", 6 },
    [PROTO_ST_F6_E3M2] = { "F6_E3M2", 6 },
    [PROTO_ST_U8] = { "U8", 8 },
    [PROTO_ST_I8] = { "I8", 8 },
    [PROTO_ST_F8_E5M2] = { "F8_E5M2", 8 },
    [PROTO_ST_F8_E4M3] = { "F8_E4M3", 8 },
    [PROTO_ST_F8_E8M0] = { "F8_E8M0", 8 },
    [PROTO_ST_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8 },
    [PROTO_ST_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8 },
    [PROTO_ST_I16] = { "I16", 16 },
    [PROTO_ST_U16] = { "U16", 16 },
    [PROTO_ST_F16] = { "F16", 16 },
    [PROTO_ST_BF16] = { "BF16", 16 },
    [PROTO_ST_I32] = { "I32", 32 },
    [PROTO_ST_U32] = { "U32", 32 },
    [PROTO_ST_F32] = { "F32", 32 },
    [PROTO_ST_C64] = { "C64", 64 },
    [PROTO_ST_F64] = { "F64", 64 },
    [PROTO_ST_I64] = { "I64", 64 },
    [PROTO_ST_U64] = { "U64", 64 },
};

const char *proto_st_dtype_name(proto_st_dtype dt)
{
    return (unsigned)dt < PROTO_ST_NDTYPES ? dtypes[dt].name : NULL;
}

unsigned proto_st_dtype_bits(proto_st_dtype dt)
{
    return (unsigned)dt < PROTO_ST_NDTYPES ? dtypes[dt].bits : 0;
}

bool proto_st_dtype_parse(const char *s, size_t n, proto_st_dtype *out)
{
    for (int i = 0; i < PROTO_ST_NDTYPES; i++)
        if (strlen(dtypes[i].name) == n && !memcmp(dtypes[i].name, s, n)) {
            *out = (proto_st_dtype)i;
            return true;
        }
    return false;
}

bool proto_st_dtype_qdq(proto_st_dtype dt, qdq_dtype *out)
{
    switch (dt) {
    case PROTO_ST_F32: *out = QDQ_FLOAT32; return true;
    case PROTO_ST_F64: *out = QDQ_FLOAT64; return true;
    case PROTO_ST_F16: *out = QDQ_FLOAT16; return true;
    case PROTO_ST_BF16: *out = QDQ_BFLOAT16; return true;
    default: return false;
    }
}

proto_st_dtype proto_st_dtype_of(qdq_dtype dt)
{
    switch (dt) {
    case QDQ_FLOAT64: return PROTO_ST_F64;
    case QDQ_FLOAT16: return PROTO_ST_F16;
    case QDQ_BFLOAT16: return PROTO_ST_BF16;
    default: return PROTO_ST_F32;
    }
}

/*
 * A shape's size as the reference computes it: the element count multiplied out in order
 * (a product that overflows is an error even when a later dimension is 0), times the bits, in
 * whole bytes. 0; 1 when the count overflows at dimension *at; 2 when the bits overflow; 3 when
 * they are not whole bytes.
 */
static int shape_bytes(unsigned bits, const uint64_t *dims, int rank, uint64_t *count,
                       uint64_t *bytes, int *at)
{
    uint64_t c = 1;
    *count = *bytes = 0;
    for (int i = 0; i < rank; i++) {
        if (c && dims[i] > UINT64_MAX / c) {
            *at = i;
            return 1;
        }
        c *= dims[i];
    }
    *count = c;
    if (c > UINT64_MAX / bits)
        return 2;
    if (c * bits % 8)
        return 3;
    *bytes = c * bits / 8;
    return 0;
}

int proto_st_bytes(proto_st_dtype dt, const int64_t *dims, int rank, uint64_t *count,
                   uint64_t *bytes)
{
    uint64_t u[PROTO_MAX_RANK], c;
    int at;
    *bytes = 0;
    if (count)
        *count = 0;
    if (!proto_st_dtype_bits(dt) || rank < 0 || rank > PROTO_MAX_RANK)
        return QDQ_EINVAL;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return QDQ_EINVAL;
        u[i] = (uint64_t)dims[i];
    }
    if (shape_bytes(proto_st_dtype_bits(dt), u, rank, &c, bytes, &at))
        return QDQ_EINVAL;
    if (count)
        *count = c;
    return 0;
}

/* ---- messages ---- */

/* A name for messages: up to SHOW_MAX bytes cut at a character, control bytes and quotes as
 * '?', "..." when cut. */
#define SHOW_MAX 64
typedef struct shown {
    char s[SHOW_MAX + 4];
} shown;

static const char *show(shown *b, const char *s, size_t n)
{
    size_t k = 0, i = 0;
    while (i < n) {
        size_t c = proto_utf8_len((const unsigned char *)s + i, n - i);
        unsigned char u = (unsigned char)s[i];
        if (k + (c ? c : 1) > SHOW_MAX)
            break;
        if (c <= 1) {
            b->s[k++] = u < 0x20 || u == '\'' || u >= 0x7f ? '?' : (char)u;
            i++;
        } else {
            memcpy(b->s + k, s + i, c);
            k += c;
            i += c;
        }
    }
    if (i < n)
        memcpy(b->s + k, "...", 3), k += 3;
    b->s[k] = 0;
    return b->s;
}

/* "[2,3,4]" for messages, cut short with "...]" when long. */
static const char *shape_text(char *out, size_t cap, const uint64_t *dims, int rank)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank; i++) {
        if (k + 26 > cap) {
            snprintf(out + k, cap - k, "...");
            k += 3;
            break;
        }
        k += (size_t)snprintf(out + k, cap - k, "%s%" PRIu64, i ? "," : "", dims[i]);
    }
    snprintf(out + k, cap - k, "]");
    return out;
}

/* Puts "prefix" before the message already recorded in e. */
static void prefix(qdq_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prefix(qdq_error *e, const char *fmt, ...)
{
    char head[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t k = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t m = strnlen(e->msg, sizeof e->msg - 1);
    if (m > sizeof e->msg - 1 - k)
        m = sizeof e->msg - 1 - k;
    memmove(e->msg + k, e->msg, m);
    memcpy(e->msg, head, k);
    e->msg[k + m] = 0;
}

/* ---- the prefix ---- */

int proto_st_prefix(const uint8_t b[8], uint64_t file_len, uint64_t *n, qdq_error *err)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    *n = 0;
    if (v > PROTO_ST_MAX_HEADER)
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors header: its length N = %" PRIu64
                        " (the first 8 bytes, little-endian) is over the format's limit of %u "
                        "bytes", v, PROTO_ST_MAX_HEADER);
    if (file_len != PROTO_LENGTH_UNKNOWN && (file_len < 8 || v > file_len - 8))
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors header: its length N = %" PRIu64
                        " does not fit in the file: 8 + N = %" PRIu64 " is more than the file's "
                        "%" PRIu64 " bytes", v, v + 8, file_len);
    *n = v;
    return 0;
}

/* ---- reading ---- */

typedef struct entry {
    size_t name, name_len; /* in chars */
    size_t dims;           /* in the dims arena */
    proto_st_dtype dtype;
    int rank;
    uint64_t count, begin, end;
} entry;

typedef struct meta_entry {
    size_t key, key_len, value, value_len;
} meta_entry;

typedef struct parser {
    proto_jr r;
    qdq_error e;
    int max_rank;
    proto_buf chars;
    uint64_t *dims;
    size_t n_dims, cap_dims;
    entry *ents;
    size_t n_ents, cap_ents;
    meta_entry *meta;
    size_t n_meta, cap_meta;
    bool meta_seen, has_meta;
} parser;

/* Room for one more element of an array of elem-byte elements. */
static int grow(parser *p, void **a, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = c <= SIZE_MAX / elem ? realloc(*a, c * elem) : NULL;
    if (!q)
        return qdq_fail(&p->e, PROTO_ENOMEM, "out of memory for the header");
    *a = q;
    *cap = c;
    return 0;
}

/* The string at the read position into the chars arena, NUL-terminated. */
static int read_string(parser *p, const char *what, size_t *off, size_t *len)
{
    proto_jr *r = &p->r;
    const char *start = r->p, *raw, *raw_end;
    size_t n;
    if (proto_jr_string(r, what, NULL, 0, &n, &raw, &raw_end))
        return p->e.code;
    if (proto_buf_reserve(&p->chars, n + 1))
        return qdq_fail(&p->e, PROTO_ENOMEM, "out of memory for the header");
    char *o = p->chars.data + p->chars.len;
    if (!memchr(raw, '\\', (size_t)(raw_end - raw))) {
        memcpy(o, raw, n);
    } else { /* escapes: decode again, into the arena */
        proto_jr again = *r;
        again.p = start;
        proto_jr_string(&again, what, o, n, &n, NULL, NULL);
    }
    o[n] = 0;
    *off = p->chars.len;
    *len = n;
    p->chars.len += n + 1;
    return 0;
}

/* `:` after a key, and the white space around it. */
static int colon(parser *p)
{
    proto_jr *r = &p->r;
    proto_jr_ws(r);
    if (proto_jr_peek(r) != ':')
        return qdq_fail(&p->e, QDQ_EINVAL, "invalid JSON: expected ':' after a key at byte %zu",
                        proto_jr_off(r));
    r->p++;
    proto_jr_ws(r);
    return 0;
}

/* A JSON integer in [0, 2^64). field and idx name it in messages ("shape[2]"). */
static int read_u64(parser *p, const char *field, int idx, uint64_t *out)
{
    proto_jr *r = &p->r;
    const char *s = r->p;
    char what[48], tmp[48];
    snprintf(what, sizeof what, "%s[%d]", field, idx);
    if (proto_jr_peek(r) == '-' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
        return qdq_fail(&p->e, QDQ_EINVAL, "%s: expected a non-negative integer, got a negative "
                        "number at byte %zu", what, proto_jr_off(r));
    if (proto_jr_peek(r) < '0' || proto_jr_peek(r) > '9')
        return proto_jr_type_error(r, what, "a non-negative integer");
    uint64_t v = 0;
    bool big = false;
    const char *q = s;
    for (; q < r->end && *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    if (q < r->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return qdq_fail(&p->e, QDQ_EINVAL, "%s: expected an integer, got a number with a fraction "
                        "or exponent at byte %zu", what, proto_jr_off(r));
    if (*s == '0' && q - s > 1)
        return qdq_fail(&p->e, QDQ_EINVAL, "invalid JSON: %s: invalid number (leading zero) at "
                        "byte %zu", what, proto_jr_off(r));
    if (big)
        return qdq_fail(&p->e, QDQ_EINVAL, "%s: %s is more than 2^64 - 1 at byte %zu", what,
                        proto_printable(tmp, s, (size_t)(q - s)), proto_jr_off(r));
    r->p = q;
    *out = v;
    return 0;
}

/* "shape": [d, ...] into the dims arena. */
static int read_shape(parser *p, entry *t)
{
    proto_jr *r = &p->r;
    bool empty;
    if (proto_jr_open(r, "shape", '[', 3, &empty))
        return p->e.code;
    t->dims = p->n_dims;
    t->rank = 0;
    for (int done = empty; !done;) {
        if (t->rank == p->max_rank)
            return qdq_fail(&p->e, PROTO_ETOOBIG, "shape has more than %d dimensions (the "
                            "limit, max_rank)", p->max_rank);
        if (grow(p, (void **)&p->dims, &p->cap_dims, p->n_dims, sizeof *p->dims) ||
            read_u64(p, "shape", t->rank, &p->dims[p->n_dims]))
            return p->e.code;
        p->n_dims++;
        t->rank++;
        if (proto_jr_next(r, "shape", ']', &done))
            return p->e.code;
    }
    return 0;
}

/* "data_offsets": [begin, end]. */
static int read_offsets(parser *p, entry *t)
{
    proto_jr *r = &p->r;
    bool empty;
    int done = 0;
    if (proto_jr_open(r, "data_offsets", '[', 3, &empty))
        return p->e.code;
    if (empty)
        return qdq_fail(&p->e, QDQ_EINVAL, "data_offsets must be [begin, end], got []");
    if (read_u64(p, "data_offsets", 0, &t->begin) ||
        proto_jr_next(r, "data_offsets", ']', &done))
        return p->e.code;
    if (done)
        return qdq_fail(&p->e, QDQ_EINVAL, "data_offsets must be [begin, end], got one number");
    if (read_u64(p, "data_offsets", 1, &t->end) || proto_jr_next(r, "data_offsets", ']', &done))
        return p->e.code;
    if (!done)
        return qdq_fail(&p->e, QDQ_EINVAL, "data_offsets must be [begin, end], got more than "
                        "two numbers");
    return 0;
}

/* The entry's own rules: its offsets in order, its size from its shape and dtype. */
static int check_entry(parser *p, entry *t)
{
    const uint64_t *d = t->rank ? p->dims + t->dims : NULL;
    unsigned bits = dtypes[t->dtype].bits;
    const char *dn = dtypes[t->dtype].name;
    uint64_t bytes;
    char sh[96];
    int at = 0;
    if (t->end < t->begin)
        return qdq_fail(&p->e, QDQ_EINVAL, "data_offsets [%" PRIu64 ", %" PRIu64 "] end before "
                        "they begin", t->begin, t->end);
    switch (shape_bytes(bits, d, t->rank, &t->count, &bytes, &at)) {
    case 1:
        return qdq_fail(&p->e, QDQ_EINVAL, "shape %s overflows: the element count exceeds 2^64 - "
                        "1 at dimension %d", shape_text(sh, sizeof sh, d, t->rank), at);
    case 2:
        return qdq_fail(&p->e, QDQ_EINVAL, "shape %s of %s overflows: %" PRIu64 " elements of %u "
                        "bits exceed 2^64 - 1 bits", shape_text(sh, sizeof sh, d, t->rank), dn,
                        t->count, bits);
    case 3:
        return qdq_fail(&p->e, QDQ_EINVAL, "shape %s of %s is %" PRIu64 " elements of %u bits: "
                        "not a whole number of bytes", shape_text(sh, sizeof sh, d, t->rank), dn,
                        t->count, bits);
    }
    if (t->end - t->begin != bytes) {
        char each[32];
        if (bits % 8)
            snprintf(each, sizeof each, "%u bits", bits);
        else
            snprintf(each, sizeof each, "%u byte%s", bits / 8, bits == 8 ? "" : "s");
        return qdq_fail(&p->e, QDQ_EINVAL, "data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                        " bytes but shape %s of %s needs %" PRIu64 " bytes (%" PRIu64 " elements "
                        "of %s)", t->begin, t->end, t->end - t->begin,
                        shape_text(sh, sizeof sh, d, t->rank), dn, bytes, t->count, each);
    }
    for (int i = 0; i < t->rank; i++)
        if (d[i] > (uint64_t)INT64_MAX)
            return qdq_fail(&p->e, PROTO_ETOOBIG, "shape[%d] = %" PRIu64 " is more than 2^63 - 1 "
                            "(the largest dimension this server takes)", i, d[i]);
    return 0;
}

/* One tensor's entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e], others ignored}. */
static int read_entry(parser *p, entry *t)
{
    static const char *const fields[3] = { "dtype", "shape", "data_offsets" };
    proto_jr *r = &p->r;
    unsigned seen = 0;
    bool empty;
    if (proto_jr_peek(r) != '{')
        return proto_jr_type_error(r, "its entry", "an object {\"dtype\", \"shape\", "
                                   "\"data_offsets\"}");
    if (proto_jr_open(r, "its entry", '{', 2, &empty))
        return p->e.code;
    for (int done = empty; !done;) {
        char key[16];
        size_t n;
        if (proto_jr_peek(r) != '"')
            return proto_jr_type_error(r, "its entry", "a key (a string)");
        if (proto_jr_string(r, "a key", key, sizeof key, &n, NULL, NULL) || colon(p))
            return p->e.code;
        int k = 0;
        while (k < 3 && !(n == strlen(fields[k]) && !memcmp(key, fields[k], n)))
            k++;
        if (k < 3 && seen & 1u << k)
            return qdq_fail(&p->e, QDQ_EINVAL, "duplicate key '%s' in its entry at byte %zu",
                            fields[k], proto_jr_off(r));
        if (k < 3)
            seen |= 1u << k;
        if (k == 0) {
            char name[40], tmp[48];
            if (proto_jr_peek(r) != '"')
                return proto_jr_type_error(r, "dtype", "a string");
            if (proto_jr_string(r, "dtype", name, sizeof name, &n, NULL, NULL))
                return p->e.code;
            if (n > sizeof name || !proto_st_dtype_parse(name, n, &t->dtype))
                return qdq_fail(&p->e, QDQ_EINVAL, "unknown dtype '%s' (known: BOOL, U8, I8, "
                                "I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E5M2, "
                                "F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, F4, F6_E2M3, "
                                "F6_E3M2, C64)", proto_printable(tmp, name,
                                n < sizeof name ? n : sizeof name));
        } else if (k == 1) {
            if (read_shape(p, t))
                return p->e.code;
        } else if (k == 2) {
            if (read_offsets(p, t))
                return p->e.code;
        } else if (proto_jr_skip(r, "a value in its entry", 3)) {
            return p->e.code;
        }
        if (proto_jr_next(r, "its entry", '}', &done))
            return p->e.code;
    }
    for (int k = 0; k < 3; k++)
        if (!(seen & 1u << k))
            return qdq_fail(&p->e, QDQ_EINVAL, "its entry has no '%s' (an entry is {\"dtype\", "
                            "\"shape\", \"data_offsets\"})", fields[k]);
    return check_entry(p, t);
}

/* "__metadata__": {"key": "value", ...} or null. */
static int read_meta(parser *p)
{
    proto_jr *r = &p->r;
    bool empty;
    if (p->meta_seen)
        return qdq_fail(&p->e, QDQ_EINVAL, "__metadata__ is given twice (at byte %zu)",
                        proto_jr_off(r));
    p->meta_seen = true;
    if (proto_jr_at(r, "null", 4)) {
        r->p += 4;
        return 0;
    }
    if (proto_jr_peek(r) != '{')
        return proto_jr_type_error(r, "__metadata__", "an object of string to string");
    if (proto_jr_open(r, "__metadata__", '{', 2, &empty))
        return p->e.code;
    p->has_meta = true;
    for (int done = empty; !done;) {
        meta_entry m;
        if (proto_jr_peek(r) != '"')
            return proto_jr_type_error(r, "__metadata__", "a key (a string)");
        if (read_string(p, "a key of __metadata__", &m.key, &m.key_len) || colon(p))
            return p->e.code;
        if (proto_jr_peek(r) != '"') {
            shown s;
            char what[128];
            snprintf(what, sizeof what, "__metadata__: the value of '%s'",
                     show(&s, p->chars.data + m.key, m.key_len));
            return proto_jr_type_error(r, what, "a string (metadata values are strings)");
        }
        if (read_string(p, "a value of __metadata__", &m.value, &m.value_len) ||
            grow(p, (void **)&p->meta, &p->cap_meta, p->n_meta, sizeof *p->meta))
            return p->e.code;
        p->meta[p->n_meta++] = m;
        if (proto_jr_next(r, "__metadata__", '}', &done))
            return p->e.code;
    }
    return 0;
}

static int read_header(parser *p)
{
    proto_jr *r = &p->r;
    bool empty;
    proto_jr_ws(r);
    if (proto_jr_peek(r) < 0)
        return qdq_fail(&p->e, QDQ_EINVAL, "it is empty: expected a JSON object");
    if (proto_jr_peek(r) != '{')
        return proto_jr_type_error(r, "the header", "a JSON object");
    if (proto_jr_open(r, "the header", '{', 1, &empty))
        return p->e.code;
    for (int done = empty; !done;) {
        size_t off, len;
        if (proto_jr_peek(r) != '"')
            return proto_jr_type_error(r, "the header", "a key (a string)");
        if (read_string(p, "a key of the header", &off, &len) || colon(p))
            return p->e.code;
        if (len == 12 && !memcmp(p->chars.data + off, "__metadata__", 12)) {
            p->chars.len = off; /* not a name */
            if (read_meta(p))
                return p->e.code;
        } else {
            if (grow(p, (void **)&p->ents, &p->cap_ents, p->n_ents, sizeof *p->ents))
                return p->e.code;
            entry *t = &p->ents[p->n_ents];
            memset(t, 0, sizeof *t);
            t->name = off;
            t->name_len = len;
            if (read_entry(p, t)) {
                shown s;
                prefix(&p->e, "tensor '%s': ", show(&s, p->chars.data + off, len));
                return p->e.code;
            }
            p->n_ents++;
        }
        if (proto_jr_next(r, "the header", '}', &done))
            return p->e.code;
    }
    proto_jr_ws(r);
    if (r->p < r->end)
        return qdq_fail(&p->e, QDQ_EINVAL, "invalid JSON: unexpected data after the header's "
                        "object at byte %zu (only JSON white space may pad it)", proto_jr_off(r));
    return 0;
}

static int cmp_name(const void *a, const void *b, void *ctx)
{
    const proto_st_tensor *t = ctx, *x = &t[*(const size_t *)a], *y = &t[*(const size_t *)b];
    int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int cmp_offset(const void *a, const void *b, void *ctx)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const proto_st_tensor *t = ctx, *x = &t[i], *y = &t[j];
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (i > j) - (i < j);
}

/* The header-wide rules: unique names, and the tensors tiling the data section. */
static int check_layout(proto_st_header *h, uint64_t data_len, qdq_error *e)
{
    size_t n = h->n_tensors;
    shown s1, s2;
    for (size_t i = 0; i < n; i++)
        h->by_name[i] = h->by_offset[i] = i;
    qsort_r(h->by_name, n, sizeof *h->by_name, cmp_name, h->tensors);
    for (size_t i = 1; i < n; i++)
        if (!cmp_name(&h->by_name[i - 1], &h->by_name[i], h->tensors)) {
            const proto_st_tensor *t = &h->tensors[h->by_name[i]];
            return qdq_fail(e, QDQ_EINVAL, "tensor '%s' is named twice (names must be unique)",
                            show(&s1, t->name, t->name_len));
        }
    qsort_r(h->by_offset, n, sizeof *h->by_offset, cmp_offset, h->tensors);
    uint64_t at = 0;
    const proto_st_tensor *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const proto_st_tensor *t = &h->tensors[h->by_offset[i]];
        if (t->begin > at && !prev)
            return qdq_fail(e, QDQ_EINVAL, "gap in the data section: no tensor starts at byte 0 "
                            "(the first, '%s', has data_offsets [%" PRIu64 ", %" PRIu64 "]); "
                            "tensors must cover it from 0 without gaps",
                            show(&s1, t->name, t->name_len), t->begin, t->end);
        if (t->begin > at)
            return qdq_fail(e, QDQ_EINVAL, "gap in the data section: bytes [%" PRIu64 ", %" PRIu64
                            ") are in no tensor (between '%s' [%" PRIu64 ", %" PRIu64 "] and "
                            "'%s' [%" PRIu64 ", %" PRIu64 "])", at, t->begin,
                            show(&s1, prev->name, prev->name_len), prev->begin, prev->end,
                            show(&s2, t->name, t->name_len), t->begin, t->end);
        if (t->begin < at)
            return qdq_fail(e, QDQ_EINVAL, "tensors overlap: '%s' [%" PRIu64 ", %" PRIu64 "] "
                            "starts inside '%s' [%" PRIu64 ", %" PRIu64 "]",
                            show(&s1, t->name, t->name_len), t->begin, t->end,
                            show(&s2, prev->name, prev->name_len), prev->begin, prev->end);
        at = t->end;
        prev = t;
    }
    h->data_len = at;
    return data_len == PROTO_LENGTH_UNKNOWN ? 0 : proto_st_check_data_len(h, data_len, e);
}

int proto_st_check_data_len(const proto_st_header *h, uint64_t data_len, qdq_error *err)
{
    shown s;
    const proto_st_tensor *last = h->n_tensors ? &h->tensors[h->by_offset[h->n_tensors - 1]]
                                               : NULL;
    if (data_len == h->data_len)
        return 0;
    if (!last)
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: the header has no tensors but the "
                        "data section is %" PRIu64 " bytes (it must be empty)", data_len);
    if (data_len > h->data_len)
        return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: the data section is %" PRIu64
                        " bytes but its tensors end at byte %" PRIu64 " (the last, '%s', has "
                        "data_offsets [%" PRIu64 ", %" PRIu64 "]): %" PRIu64 " trailing bytes",
                        data_len, h->data_len, show(&s, last->name, last->name_len),
                        last->begin, last->end, data_len - h->data_len);
    return qdq_fail(err, PROTO_ESAFETENSORS, "safetensors: the data section is %" PRIu64 " bytes "
                    "but tensor '%s' ends at byte %" PRIu64 " (data_offsets [%" PRIu64 ", %"
                    PRIu64 "]): %" PRIu64 " bytes short", data_len,
                    show(&s, last->name, last->name_len), h->data_len, last->begin, last->end,
                    h->data_len - data_len);
}

/* The parser's arenas, now the header's. */
static int build(parser *p, proto_st_header *h)
{
    size_t n = p->n_ents;
    h->tensors = malloc((n ? n : 1) * sizeof *h->tensors);
    h->by_offset = malloc((n ? n : 1) * sizeof *h->by_offset);
    h->by_name = malloc((n ? n : 1) * sizeof *h->by_name);
    h->meta = malloc((p->n_meta ? p->n_meta : 1) * sizeof *h->meta);
    if (!h->tensors || !h->by_offset || !h->by_name || !h->meta)
        return qdq_fail(&p->e, PROTO_ENOMEM, "out of memory for the header");
    h->chars = proto_buf_detach(&p->chars, NULL);
    h->dims = (int64_t *)p->dims; /* checked: every dimension is below 2^63 */
    p->dims = NULL;
    for (size_t i = 0; i < n; i++) {
        const entry *e = &p->ents[i];
        h->tensors[i] = (proto_st_tensor){
            .name = h->chars + e->name, .name_len = e->name_len, .dtype = e->dtype,
            .rank = e->rank, .dims = e->rank ? h->dims + e->dims : NULL, .count = e->count,
            .begin = e->begin, .end = e->end,
        };
    }
    h->n_tensors = n;
    for (size_t i = 0; i < p->n_meta; i++) {
        const meta_entry *m = &p->meta[i];
        h->meta[i] = (proto_st_meta){ .key = h->chars + m->key, .key_len = m->key_len,
                                      .value = h->chars + m->value,
                                      .value_len = m->value_len };
    }
    h->n_meta = p->n_meta;
    h->has_meta = p->has_meta;
    return 0;
}

int proto_st_header_parse(const char *json, size_t n, uint64_t data_len, const proto_limits *lim,
                          proto_st_header *h, qdq_error *err)
{
    parser p;
    memset(&p, 0, sizeof p);
    memset(h, 0, sizeof *h);
    proto_limits jl = { 0, 0, lim ? lim->max_depth : 0, 0 };
    proto_jr_init(&p.r, json, n, &jl, &p.e);
    p.max_rank = lim && lim->max_rank > 0 && lim->max_rank < PROTO_MAX_RANK ? lim->max_rank
                                                                           : PROTO_MAX_RANK;
    int rc = n > PROTO_ST_MAX_HEADER
                 ? qdq_fail(&p.e, QDQ_EINVAL, "it is %zu bytes, over the format's limit of %u",
                            n, PROTO_ST_MAX_HEADER)
                 : read_header(&p);
    if (!rc)
        rc = build(&p, h);
    if (!rc)
        rc = check_layout(h, data_len, &p.e);
    free(p.dims);
    free(p.ents);
    free(p.meta);
    proto_buf_free(&p.chars);
    if (rc) {
        proto_st_header_clear(h);
        /* The reader's and the rules' QDQ_EINVAL: this file breaks the format. check_layout's
         * data-length message carries its prefix already. */
        int code = p.e.code == QDQ_EINVAL ? PROTO_ESAFETENSORS : p.e.code;
        if (!strncmp(p.e.msg, "safetensors", 11))
            return qdq_fail(err, code, "%s", p.e.msg);
        return qdq_fail(err, code, "safetensors header: %s", p.e.msg);
    }
    return 0;
}

ptrdiff_t proto_st_find(const proto_st_header *h, const char *name, size_t len)
{
    size_t lo = 0, hi = h->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const proto_st_tensor *t = &h->tensors[h->by_name[mid]];
        int c = memcmp(t->name, name, t->name_len < len ? t->name_len : len);
        if (!c)
            c = (t->name_len > len) - (t->name_len < len);
        if (!c)
            return (ptrdiff_t)h->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

bool proto_st_has_name(const proto_st_header *h, const char *name)
{
    return proto_st_find(h, name, strlen(name)) >= 0;
}

void proto_st_header_clear(proto_st_header *h)
{
    free(h->tensors);
    free(h->by_offset);
    free(h->by_name);
    free(h->meta);
    free(h->chars);
    free(h->dims);
    memset(h, 0, sizeof *h);
}
