/*
 * Native JSON requests (api.md 1a): a small strict pull reader over the body.
 *
 * The request is one object with known keys, so the reader never builds a tree and never
 * recurses: each key's value is read by code that knows its shape. Tensor elements go straight
 * from the text into a typed, growing buffer (proto_num_parse_dtype); nesting is followed with
 * an explicit index stack capped by max_rank, so a body of a million '[' costs nothing.
 *
 * Rules beyond RFC 8259 (all errors; each message names the key, the index path such as
 * input[3][1], or the byte offset):
 *   - the body is one object, with nothing but whitespace after it; a leading BOM is refused;
 *   - unknown and duplicate keys; strings with control characters, bad escapes, lone
 *     surrogates or invalid UTF-8;
 *   - a finite number that rounds to infinity in the dtype ("1e39" for float32): TF Serving
 *     refuses it too, and a silent Infinity would change the op's range. The tokens NaN,
 *     Infinity and -Infinity are accepted; numbers that round to zero are fine.
 *   - limits (proto_limits; a field of 0, or lim == NULL, means no limit beyond the hard cap
 *     PROTO_MAX_RANK): max_body, max_depth (containers from the body's top, the top object
 *     being 1), max_rank, max_elements -> PROTO_ETOOBIG naming the limit and the value.
 *
 * Choices where api.md is open: "dtype" in the object form is optional (float32); "shape" is
 * required with "b64" and optional with "data", where only the element count must agree with
 * it (the nesting of data need not). Keys may come in any order: when "data" precedes
 * "dtype", or the bounds precede "input", they are checked first and read into the dtype after
 * the object closes. integers (num_bits, axis, shape) must be written as integers: 8, not 8.0.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

typedef struct reader {
    const char *base, *p, *end;
    proto_limits lim; /* resolved: no zero fields */
    qdq_error *err;
} reader;

/* A tensor being read: elements of dtype and the shape found so far. */
typedef struct tensor {
    qdq_dtype dtype;
    bool store;        /* false: check and count only (the dtype is not known yet) */
    char *data;
    uint64_t count, cap;
    int rank;
    int64_t dims[PROTO_MAX_RANK];
    char scratch[8];
} tensor;

static size_t off(const reader *r) { return (size_t)(r->p - r->base); }
static int peek(const reader *r) { return r->p < r->end ? (unsigned char)*r->p : -1; }

static void skip_ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* What the value at r->p is, for "expected X, got Y" messages. */
static const char *got(const reader *r, char *tmp, size_t n)
{
    int c = peek(r);
    if (c < 0)
        return "the end of the body";
    switch (c) {
    case '"': return "a string";
    case '{': return "an object";
    case '[': return "an array";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    }
    if (c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9'))
        return "a number";
    if (c >= 0x20 && c < 0x7f)
        snprintf(tmp, n, "'%c'", c);
    else
        snprintf(tmp, n, "byte 0x%02x", (unsigned)c);
    return tmp;
}

static int type_error(reader *r, const char *key, const char *expected)
{
    char tmp[16];
    return qdq_fail(r->err, QDQ_EINVAL, "%s: expected %s, got %s at byte %zu", key, expected,
                got(r, tmp, sizeof tmp), off(r));
}

/* Opening a container at JSON depth `depth`. */
static int enter(reader *r, int depth)
{
    if (depth > r->lim.max_depth)
        return qdq_fail(r->err, PROTO_ETOOBIG, "nesting depth %d at byte %zu exceeds max_depth %d", depth,
                    off(r), r->lim.max_depth);
    return 0;
}

/* "input[3][1]" from a name and the first n indices. */
static const char *path(char *buf, size_t cap, const char *name, const int64_t *idx, int n)
{
    size_t k = (size_t)snprintf(buf, cap, "%s", name);
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "[%lld]", (long long)(idx ? idx[i] : 0));
    return buf;
}

/* ---- strings ---- */

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Reads the string at r->p (which must be '"'), checking every rule. The decoded text goes to
 * out (up to cap bytes; *len gets the full decoded length, which may exceed cap). With out
 * NULL only the raw span between the quotes is returned (*raw, *raw_end).
 */
static int read_string(reader *r, const char *what, char *out, size_t cap, size_t *len,
                       const char **raw, const char **raw_end)
{
    const char *start = r->p++;
    size_t n = 0;
    if (raw)
        *raw = r->p;
    for (;;) {
        if (r->p >= r->end)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: unterminated string starting at byte %zu", what,
                        (size_t)(start - r->base));
        unsigned char c = (unsigned char)*r->p;
        if (c == '"')
            break;
        char tmp[4];
        size_t k;
        if (c < 0x20)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: control character 0x%02x in a string at byte %zu "
                        "(escape it)", what, c, off(r));
        if (c == '\\') {
            if (r->end - r->p < 2)
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: unterminated string starting at byte %zu", what,
                            (size_t)(start - r->base));
            char e = r->p[1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                tmp[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
                k = 1;
                r->p += 2;
            } else if (e == 'u') {
                int cp = r->end - r->p >= 6 ? hex4(r->p + 2) : -1;
                if (cp < 0)
                    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: bad \\u escape at byte %zu", what, off(r));
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: lone low surrogate \\u%04x at byte %zu", what,
                                (unsigned)cp, off(r));
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    int lo = r->end - r->p >= 12 && r->p[6] == '\\' && r->p[7] == 'u'
                                 ? hex4(r->p + 8) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: high surrogate \\u%04x without a low "
                                    "one at byte %zu", what, (unsigned)cp, off(r));
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r->p += 6;
                }
                k = put_utf8(tmp, (unsigned)cp);
                r->p += 6;
            } else {
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid escape '\\%c' at byte %zu", what,
                            e >= 0x20 && e < 0x7f ? e : '?', off(r));
            }
        } else {
            k = proto_utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
            if (!k)
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid UTF-8 in a string at byte %zu", what,
                            off(r));
            memcpy(tmp, r->p, k);
            r->p += k;
        }
        if (out) {
            for (size_t i = 0; i < k; i++, n++)
                if (n < cap)
                    out[n] = tmp[i];
        }
    }
    if (raw_end)
        *raw_end = r->p;
    r->p++; /* the closing quote */
    if (len)
        *len = n;
    return 0;
}

/* A string for a message: printable ASCII, others as '?', cut at 40 characters. */
static const char *printable(char *buf, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < 40; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    if (n > 40)
        memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

/* ---- scalars ---- */

static int read_bool(reader *r, const char *key, bool *out)
{
    if (r->end - r->p >= 4 && !memcmp(r->p, "true", 4)) {
        *out = true;
        r->p += 4;
        return 0;
    }
    if (r->end - r->p >= 5 && !memcmp(r->p, "false", 5)) {
        *out = false;
        r->p += 5;
        return 0;
    }
    return type_error(r, key, "true or false");
}

/* A JSON integer (no fraction, no exponent) in [lo, hi]. */
static int read_int(reader *r, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = r->p;
    bool neg = peek(r) == '-';
    const char *q = s + neg;
    if (q >= r->end || *q < '0' || *q > '9')
        return type_error(r, key, "an integer");
    uint64_t v = 0;
    bool big = false;
    const char *digits = q;
    while (q < r->end && *q >= '0' && *q <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            big = true;
        else
            v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    char tmp[48];
    if (q < r->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return qdq_fail(r->err, QDQ_EINVAL, "%s: expected an integer, got a number with a fraction or "
                    "exponent at byte %zu", key, off(r));
    if (*digits == '0' && q - digits > 1)
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid number (leading zero) at byte %zu", key, off(r));
    if (big || (neg ? v > (uint64_t)-(lo + 1) + 1 : v > (uint64_t)hi) || (neg && v && lo >= 0))
        return qdq_fail(r->err, QDQ_EINVAL, "%s: %s is out of range [%lld, %lld]", key,
                    printable(tmp, s, (size_t)(q - s)), (long long)lo, (long long)hi);
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    r->p = q;
    return 0;
}

/* ---- tensors ---- */

static bool is_inf(qdq_dtype dt, const void *a, uint64_t i)
{
    switch (dt) {
    case QDQ_FLOAT32: { uint32_t u; memcpy(&u, (const char *)a + 4 * i, 4); return (u & 0x7fffffffu) == 0x7f800000u; }
    case QDQ_FLOAT64: { uint64_t u; memcpy(&u, (const char *)a + 8 * i, 8); return (u << 1) == 0xffe0000000000000ULL; }
    case QDQ_FLOAT16: return (((const uint16_t *)a)[i] & 0x7fff) == 0x7c00;
    case QDQ_BFLOAT16: return (((const uint16_t *)a)[i] & 0x7fff) == 0x7f80;
    }
    return false;
}

static int bad_number(reader *r, const char *where)
{
    char tmp[48], g[16];
    int c = peek(r);
    size_t left = (size_t)(r->end - r->p);
    bool literal = (left >= 4 && (!memcmp(r->p, "null", 4) || !memcmp(r->p, "true", 4))) ||
                   (left >= 5 && !memcmp(r->p, "false", 5));
    if (!literal && (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || c == 'i' ||
                     c == 'n' || c == 'N' || c == 'I')) {
        size_t n = 0;
        while (r->p + n < r->end && !strchr(",]} \t\r\n", r->p[n]) && n < 41)
            n++;
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid number '%s' at byte %zu", where,
                    printable(tmp, r->p, n), off(r));
    }
    return qdq_fail(r->err, QDQ_EINVAL, "%s: expected a number, got %s at byte %zu", where,
                got(r, g, sizeof g), off(r));
}

static int grow(reader *r, tensor *t, const char *name)
{
    /* Every element takes at least two bytes of body ("1,"), so this never overflows. */
    uint64_t most = (uint64_t)(r->end - r->base) / 2 + 1;
    uint64_t cap = t->cap ? t->cap * 2 : 256;
    if (cap > most)
        cap = most;
    if (cap > r->lim.max_elements)
        cap = r->lim.max_elements;
    if (cap <= t->count)
        cap = t->count + 1;
    char *p = realloc(t->data, (size_t)cap * qdq_dtype_size(t->dtype));
    if (!p)
        return qdq_fail(r->err, PROTO_ENOMEM, "%s: out of memory for %llu elements", name,
                    (unsigned long long)cap);
    t->data = p;
    t->cap = cap;
    return 0;
}

/* Reads one number at r->p as the next element of t. */
static inline int read_element(reader *r, tensor *t, const char *name, const int64_t *idx, int d)
{
    char where[256];
    if (t->count >= r->lim.max_elements)
        return qdq_fail(r->err, PROTO_ETOOBIG, "%s has more than %llu elements (max_elements)", name,
                    (unsigned long long)r->lim.max_elements);
    if (t->store && t->count == t->cap && grow(r, t, name))
        return r->err->code;
    void *dst = t->store ? t->data : t->scratch;
    uint64_t i = t->store ? t->count : 0;
    size_t k = proto_num_parse_dtype(t->store ? t->dtype : QDQ_FLOAT64, r->p, r->end, dst, i);
    if (!k)
        return bad_number(r, path(where, sizeof where, name, idx, d));
    if (t->store && is_inf(t->dtype, dst, i) && r->p[0] != 'I' && r->p[1] != 'I') {
        char tmp[48];
        return qdq_fail(r->err, QDQ_EINVAL, "%s: %s is out of range for %s", path(where, sizeof where,
                    name, idx, d), printable(tmp, r->p, k), qdq_dtype_name(t->dtype));
    }
    r->p += k;
    t->count++;
    return 0;
}

/*
 * Reads a number (rank 0) or nested arrays of numbers at r->p into t; depth0 is the JSON depth
 * of the container holding the value. The first element at each depth fixes the rank; the
 * first array to close at each depth fixes that dimension (an empty array fixes the rank too:
 * [] is [0], [[],[]] is [2, 0]); every other array must agree.
 */
static int read_tensor(reader *r, const char *name, int depth0, tensor *t)
{
    int64_t idx[PROTO_MAX_RANK]; /* elements completed in each open array */
    bool dim_known[PROTO_MAX_RANK] = { false };
    char pa[128], pb[128];
    int d = 0, rank = -1;
    bool rank_from_number = false;
    bool want_value = true;   /* at a value (after '[' or ','), else after one */
    bool after_comma = false; /* ... and that value follows a comma */

    t->count = 0;
    if (peek(r) != '[') {
        t->rank = 0;
        return read_element(r, t, name, NULL, 0);
    }
    for (;;) {
        skip_ws(r);
        int c = peek(r);
        if (want_value && c == '[') {
            if (rank >= 0 && d >= rank) {
                if (rank_from_number)
                    return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is an array but %s is a number",
                                name, path(pa, sizeof pa, name, idx, d),
                                path(pb, sizeof pb, name, NULL, d));
                return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is an array but %s is empty", name,
                            path(pa, sizeof pa, name, idx, d),
                            path(pb, sizeof pb, name, NULL, rank - 1));
            }
            if (enter(r, depth0 + d + 1))
                return r->err->code;
            if (d + 1 > r->lim.max_rank)
                return qdq_fail(r->err, PROTO_ETOOBIG, "%s: rank %d at byte %zu exceeds max_rank %d",
                            name, d + 1, off(r), r->lim.max_rank);
            r->p++;
            idx[d++] = 0;
            after_comma = false;
            continue;
        }
        if (want_value && c != ']') {
            if (rank < 0) {
                rank = d;
                rank_from_number = true;
            } else if (d < rank) {
                return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is a number but %s is an array",
                            name, path(pa, sizeof pa, name, idx, d),
                            path(pb, sizeof pb, name, NULL, d));
            }
            /* The leaf loop: the hot path of the whole decoder. */
            want_value = false;
            for (;;) {
                if (read_element(r, t, name, idx, d))
                    return r->err->code;
                idx[d - 1]++;
                skip_ws(r);
                if (peek(r) != ',')
                    break;
                r->p++;
                skip_ws(r);
                if (peek(r) == '[' || peek(r) == ']') {
                    want_value = after_comma = true;
                    break;
                }
            }
            continue;
        }
        if (want_value && after_comma)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: trailing comma before ']' at byte %zu",
                        path(pa, sizeof pa, name, idx, d), off(r));
        if (!want_value && c == ',') {
            r->p++;
            want_value = after_comma = true;
            continue;
        }
        if (c != ']') {
            char g[16];
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ',' or ']' after an element, got %s at "
                        "byte %zu", path(pa, sizeof pa, name, idx, d), got(r, g, sizeof g),
                        off(r));
        }
        /* ']' closes the innermost array: its length must match its siblings'. */
        int k = d - 1;
        if (!dim_known[k]) {
            t->dims[k] = idx[k];
            dim_known[k] = true;
            if (rank < 0)
                rank = d; /* an empty array on the leftmost path */
        } else if (t->dims[k] != idx[k]) {
            return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: dims[%d] is %lld at %s but %lld at %s",
                        name, k, (long long)t->dims[k], path(pb, sizeof pb, name, NULL, k),
                        (long long)idx[k], path(pa, sizeof pa, name, idx, k));
        }
        r->p++;
        if (--d == 0)
            break;
        idx[d - 1]++;
        want_value = false;
    }
    t->rank = rank;
    return 0;
}

/* ---- the request ---- */

enum {
    K_INPUT, K_NUM_BITS, K_SIGNED_INPUT, K_RANGE_GIVEN, K_ROUND_MODE, K_NARROW_RANGE, K_AXIS,
    K_INPUT_MIN, K_INPUT_MAX, K_NKEYS
};
static const char *const top_keys[K_NKEYS] = {
    "input", "num_bits", "signed_input", "range_given", "round_mode", "narrow_range", "axis",
    "input_min", "input_max",
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

/* Reads "key": at r->p into key (decoded, cut to cap - 1); returns the key's index in names,
 * or fails naming it. seen catches duplicates. */
static int read_key(reader *r, const char *where, const char *const *names, int n,
                    unsigned *seen, int *which)
{
    char key[64], tmp[48];
    size_t len;
    size_t at = off(r);
    if (peek(r) != '"')
        return type_error(r, where, "a key (a string)");
    if (read_string(r, where, key, sizeof key - 1, &len, NULL, NULL))
        return r->err->code;
    for (int i = 0; i < n; i++)
        if (len == strlen(names[i]) && !memcmp(key, names[i], len)) {
            if (*seen & 1u << i)
                return qdq_fail(r->err, QDQ_EINVAL, "duplicate key '%s' in %s at byte %zu", names[i],
                            where, at);
            *seen |= 1u << i;
            *which = i;
            skip_ws(r);
            if (peek(r) != ':')
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: expected ':' after '%s' at byte %zu", names[i],
                            off(r));
            r->p++;
            skip_ws(r);
            return 0;
        }
    char expected[200];
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(expected + k, sizeof expected - k, "%s%s", i ? ", " : "", names[i]);
    return qdq_fail(r->err, QDQ_EINVAL, "unknown key '%s' in %s at byte %zu (expected one of: %s)",
                printable(tmp, key, len < sizeof key - 1 ? len : sizeof key - 1), where, at,
                expected);
}

/* After a member: ',' (then another key) or the closing '}'. Returns 1 at '}'. */
static int after_member(reader *r, const char *where, int *done)
{
    skip_ws(r);
    int c = peek(r);
    if (c == ',') {
        r->p++;
        skip_ws(r);
        if (peek(r) == '}')
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: trailing comma before '}' at byte %zu", where, off(r));
        *done = 0;
        return 0;
    }
    if (c == '}') {
        r->p++;
        *done = 1;
        return 0;
    }
    char g[16];
    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ',' or '}' after a member, got %s at byte %zu",
                where, got(r, g, sizeof g), off(r));
}

/* "shape": [2, 3] (rank 0 is []). */
static int read_shape(reader *r, int depth, pending *pd)
{
    if (peek(r) != '[')
        return type_error(r, "input.shape", "an array of integers");
    if (enter(r, depth))
        return r->err->code;
    r->p++;
    skip_ws(r);
    pd->shape_rank = 0;
    pd->shape_count = 1;
    bool overflow = false;
    if (peek(r) == ']') {
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
        if (peek(r) == '-' && r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9')
            return qdq_fail(r->err, QDQ_EINVAL, "%s: expected a non-negative integer, got a negative "
                        "number at byte %zu", key, off(r));
        if (read_int(r, key, 0, INT64_MAX, &v))
            return r->err->code;
        pd->shape[pd->shape_rank++] = v;
        if (v && pd->shape_count > UINT64_MAX / (uint64_t)v)
            overflow = true;
        pd->shape_count *= (uint64_t)v;
        skip_ws(r);
        if (peek(r) == ']') {
            r->p++;
            break;
        }
        if (peek(r) != ',')
            return type_error(r, "input.shape", "',' or ']'");
        r->p++;
        skip_ws(r);
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
 * only checks and counts (*n); else stores n elements of dtype at out.
 */
static int read_bound(reader *r, const char *key, int depth, qdq_dtype dtype, void *out,
                      size_t *n)
{
    tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.store = out != NULL;
    int c = peek(r);
    if (c != '[' && c != '-' && c != 'N' && c != 'I' && !(c >= '0' && c <= '9'))
        return type_error(r, key, "a number or an array of numbers");
    if (out) {
        t.data = out;
        t.cap = *n;
    }
    if (c == '[') {
        if (enter(r, depth))
            return r->err->code;
        r->p++;
        skip_ws(r);
        if (peek(r) != ']')
            for (;;) {
                int64_t i = (int64_t)t.count;
                if (peek(r) == '[')
                    return type_error(r, key, "numbers in a flat array");
                if (out && t.count >= t.cap)
                    return qdq_fail(r->err, QDQ_EINVAL, "%s changed length", key); /* cannot happen */
                if (read_element(r, &t, key, &i, 1))
                    return r->err->code;
                skip_ws(r);
                if (peek(r) != ',')
                    break;
                r->p++;
                skip_ws(r);
            }
        if (peek(r) != ']')
            return type_error(r, key, "',' or ']'");
        r->p++;
    } else if (read_element(r, &t, key, NULL, 0)) {
        return r->err->code;
    }
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
static int decode_b64(reader *r, const char *s, const char *e, char *out, uint64_t want,
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

static void tensor_to_request(tensor *t, proto_request *req)
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
static int read_input_object(reader *r, proto_request *req, pending *pd)
{
    unsigned seen = 0;
    int which, done = 0;
    tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = QDQ_FLOAT32;
    if (enter(r, 2))
        return r->err->code;
    r->p++;
    skip_ws(r);
    if (peek(r) == '}')
        return qdq_fail(r->err, QDQ_EINVAL, "input: the object is empty (expected data or b64, with "
                    "dtype and shape)");
    int rc = 0;
    while (!done) {
        if ((rc = read_key(r, "input", input_keys, I_NKEYS, &seen, &which)))
            goto out;
        switch (which) {
        case I_DTYPE: {
            char name[32], tmp[48];
            size_t len;
            if (peek(r) != '"') {
                rc = type_error(r, "input.dtype", "a string");
                goto out;
            }
            if ((rc = read_string(r, "input.dtype", name, sizeof name, &len, NULL, NULL)))
                goto out;
            if (len > sizeof name || proto_dtype_parse(name, len, &t.dtype)) {
                rc = qdq_fail(r->err, QDQ_EINVAL, "input.dtype: unknown dtype '%s' (expected float32, "
                          "float64, float16, half, bfloat16, FP32, FP64, FP16 or BF16)",
                          printable(tmp, name, len < sizeof name ? len : sizeof name));
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
                rc = read_tensor(r, "input.data", 2, &t);
            } else { /* check now, read after the object, once the dtype is known */
                pd->data = r->p;
                rc = read_tensor(r, "input.data", 2, &t);
            }
            if (rc)
                goto out;
            break;
        case I_B64:
            if (peek(r) != '"') {
                rc = type_error(r, "input.b64", "a string");
                goto out;
            }
            if ((rc = read_string(r, "input.b64", NULL, 0, NULL, &pd->b64, &pd->b64_end)))
                goto out;
            break;
        }
        if ((rc = after_member(r, "input", &done)))
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
            reader again = *r;
            again.p = pd->data;
            t.store = true;
            if ((rc = read_tensor(&again, "input.data", 2, &t)))
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

static void limits_resolve(const proto_limits *in, proto_limits *out)
{
    proto_limits none = { 0, 0, 0, 0 };
    if (!in)
        in = &none;
    out->max_elements = in->max_elements ? in->max_elements : UINT64_MAX;
    out->max_rank = in->max_rank > 0 && in->max_rank < PROTO_MAX_RANK ? in->max_rank
                                                                     : PROTO_MAX_RANK;
    out->max_depth = in->max_depth > 0 ? in->max_depth : INT_MAX;
    out->max_body = in->max_body ? in->max_body : UINT64_MAX;
}

static int decode(reader *r, proto_request *req)
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
    skip_ws(r);
    if (peek(r) < 0)
        return qdq_fail(r->err, QDQ_EINVAL, "empty body: expected a JSON object");
    if (peek(r) != '{')
        return type_error(r, "the body", "a JSON object");
    if (enter(r, 1))
        return r->err->code;
    r->p++;
    skip_ws(r);
    if (peek(r) == '}')
        return qdq_fail(r->err, QDQ_EINVAL, "missing key 'input'");
    while (!done) {
        if (read_key(r, "the request", top_keys, K_NKEYS, &seen, &which))
            return r->err->code;
        int64_t v;
        bool b = false;
        switch (which) {
        case K_INPUT: {
            int c = peek(r);
            if (c == '{') {
                if (read_input_object(r, req, &pd))
                    return r->err->code;
            } else if (c == '[' || c == '-' || c == 'N' || c == 'I' || (c >= '0' && c <= '9')) {
                tensor t;
                memset(&t, 0, sizeof t);
                t.dtype = QDQ_FLOAT32;
                t.store = true;
                int rc = read_tensor(r, "input", 1, &t);
                if (rc) {
                    free(t.data);
                    return rc;
                }
                tensor_to_request(&t, req);
                req->dtype = QDQ_FLOAT32;
                req->form = PROTO_FORM_NESTED;
            } else {
                return type_error(r, "input", "an array, a number or an object");
            }
            break;
        }
        case K_NUM_BITS:
            if (read_int(r, "num_bits", INT_MIN, INT_MAX, &v))
                return r->err->code;
            req->attrs.num_bits = (int)v;
            break;
        case K_AXIS:
            if (read_int(r, "axis", INT64_MIN, INT64_MAX, &v))
                return r->err->code;
            req->attrs.axis = v;
            break;
        case K_SIGNED_INPUT:
        case K_RANGE_GIVEN:
        case K_NARROW_RANGE:
            if (read_bool(r, top_keys[which], &b))
                return r->err->code;
            if (which == K_SIGNED_INPUT)
                req->attrs.signed_input = b;
            else if (which == K_RANGE_GIVEN)
                req->attrs.range_given = b;
            else
                req->attrs.narrow_range = b;
            break;
        case K_ROUND_MODE: {
            char mode[16], tmp[48];
            size_t n;
            if (peek(r) != '"')
                return type_error(r, "round_mode", "a string");
            if (read_string(r, "round_mode", mode, sizeof mode, &n, NULL, NULL))
                return r->err->code;
            if (n == 12 && !memcmp(mode, "HALF_TO_EVEN", 12))
                req->attrs.round_mode = QDQ_HALF_TO_EVEN;
            else if (n == 7 && !memcmp(mode, "HALF_UP", 7))
                req->attrs.round_mode = QDQ_HALF_UP;
            else
                return qdq_fail(r->err, QDQ_EINVAL, "round_mode: expected \"HALF_TO_EVEN\" or \"HALF_UP\", "
                            "got '%s'", printable(tmp, mode, n < sizeof mode ? n : sizeof mode));
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
        if (after_member(r, "the request", &done))
            return r->err->code;
    }
    skip_ws(r);
    if (r->p < r->end)
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: unexpected data after the request object at byte %zu",
                    off(r));
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
        reader again = *r;
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
    reader r;
    r.base = r.p = body;
    r.end = body + len;
    r.err = err ? err : &dummy;
    limits_resolve(lim, &r.lim);
    r.err->code = 0;
    r.err->msg[0] = 0;
    int rc = decode(&r, req);
    if (rc)
        proto_request_clear(req);
    return rc;
}
