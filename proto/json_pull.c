/* The JSON pull reader (json_pull.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_pull.h"

void proto_jr_init(proto_jr *r, const char *text, size_t len, const proto_limits *lim,
                   qdq_error *err)
{
    r->base = r->p = text;
    r->end = text + len;
    r->err = err;
    proto_limits none = { 0, 0, 0, 0 };
    if (!lim)
        lim = &none;
    r->lim.max_elements = lim->max_elements ? lim->max_elements : UINT64_MAX;
    r->lim.max_rank = lim->max_rank > 0 && lim->max_rank < PROTO_MAX_RANK ? lim->max_rank
                                                                          : PROTO_MAX_RANK;
    r->lim.max_depth = lim->max_depth > 0 ? lim->max_depth : INT_MAX;
    r->lim.max_body = lim->max_body ? lim->max_body : UINT64_MAX;
}

void proto_jr_ws(proto_jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* What the value at the read position is, for "expected X, got Y" messages. */
static const char *got(const proto_jr *r, char *tmp, size_t n)
{
    int c = proto_jr_peek(r);
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

int proto_jr_type_error(proto_jr *r, const char *what, const char *expected)
{
    char tmp[16];
    return qdq_fail(r->err, QDQ_EINVAL, "%s: expected %s, got %s at byte %zu", what, expected,
                    got(r, tmp, sizeof tmp), proto_jr_off(r));
}

int proto_jr_enter(proto_jr *r, int depth)
{
    if (depth > r->lim.max_depth)
        return qdq_fail(r->err, PROTO_ETOOBIG, "nesting depth %d at byte %zu exceeds max_depth %d",
                        depth, proto_jr_off(r), r->lim.max_depth);
    return 0;
}

const char *proto_jr_path(char *buf, size_t cap, const char *name, const int64_t *idx, int n)
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

/* Writes code point cp (at most U+10FFFF, no surrogate) as UTF-8 at o; returns its length. */
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

int proto_jr_string(proto_jr *r, const char *what, char *out, size_t cap, size_t *len,
                    const char **raw, const char **raw_end)
{
    const char *start = r->p++;
    size_t n = 0;
    if (raw)
        *raw = r->p;
    for (;;) {
        if (r->p >= r->end)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: unterminated string starting "
                            "at byte %zu", what, (size_t)(start - r->base));
        unsigned char c = (unsigned char)*r->p;
        if (c == '"')
            break;
        char tmp[4];
        size_t k;
        if (c < 0x20)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: control character 0x%02x in a "
                            "string at byte %zu (escape it)", what, c, proto_jr_off(r));
        if (c == '\\') {
            if (r->end - r->p < 2)
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: unterminated string "
                                "starting at byte %zu", what, (size_t)(start - r->base));
            char e = r->p[1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                tmp[0] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
                k = 1;
                r->p += 2;
            } else if (e == 'u') {
                int cp = r->end - r->p >= 6 ? hex4(r->p + 2) : -1;
                if (cp < 0)
                    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: bad \\u escape at "
                                    "byte %zu", what, proto_jr_off(r));
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: lone low surrogate "
                                    "\\u%04x at byte %zu", what, (unsigned)cp, proto_jr_off(r));
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    int lo = r->end - r->p >= 12 && r->p[6] == '\\' && r->p[7] == 'u'
                                 ? hex4(r->p + 8) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: high surrogate "
                                        "\\u%04x without a low one at byte %zu", what,
                                        (unsigned)cp, proto_jr_off(r));
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r->p += 6;
                }
                k = put_utf8(tmp, (unsigned)cp);
                r->p += 6;
            } else {
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid escape '\\%c' at "
                                "byte %zu", what, e >= 0x20 && e < 0x7f ? e : '?',
                                proto_jr_off(r));
            }
        } else {
            k = proto_utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
            if (!k)
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid UTF-8 in a string "
                                "at byte %zu", what, proto_jr_off(r));
            memcpy(tmp, r->p, k);
            r->p += k;
        }
        if (out) {
            for (size_t i = 0; i < k; i++, n++)
                if (n < cap)
                    out[n] = tmp[i];
        } else {
            n += k;
        }
    }
    if (raw_end)
        *raw_end = r->p;
    r->p++; /* the closing quote */
    if (len)
        *len = n;
    return 0;
}

/* ---- scalars ---- */

int proto_jr_bool(proto_jr *r, const char *what, bool *out)
{
    if (proto_jr_at(r, "true", 4)) {
        *out = true;
        r->p += 4;
        return 0;
    }
    if (proto_jr_at(r, "false", 5)) {
        *out = false;
        r->p += 5;
        return 0;
    }
    return proto_jr_type_error(r, what, "true or false");
}

int proto_jr_int(proto_jr *r, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    const char *s = r->p;
    bool neg = proto_jr_peek(r) == '-';
    const char *q = s + neg;
    if (q >= r->end || *q < '0' || *q > '9')
        return proto_jr_type_error(r, what, "an integer");
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
        return qdq_fail(r->err, QDQ_EINVAL, "%s: expected an integer, got a number with a "
                        "fraction or exponent at byte %zu", what, proto_jr_off(r));
    if (*digits == '0' && q - digits > 1)
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid number (leading zero) at "
                        "byte %zu", what, proto_jr_off(r));
    if (big || (neg ? v > (uint64_t)-(lo + 1) + 1 : v > (uint64_t)hi) || (neg && v && lo >= 0))
        return qdq_fail(r->err, QDQ_EINVAL, "%s: %s is out of range [%lld, %lld]", what,
                        proto_printable(tmp, s, (size_t)(q - s)), (long long)lo,
                        (long long)hi);
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    r->p = q;
    return 0;
}

/* "invalid number" for text that starts like one, else "expected a number, got ...". */
static int bad_number(proto_jr *r, const char *where)
{
    char tmp[48], g[16];
    int c = proto_jr_peek(r);
    bool literal = proto_jr_at(r, "null", 4) || proto_jr_at(r, "true", 4) ||
                   proto_jr_at(r, "false", 5);
    if (!literal && (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') || c == 'i' ||
                     c == 'n' || c == 'N' || c == 'I')) {
        size_t n = 0;
        while (r->p + n < r->end && !strchr(",]} \t\r\n", r->p[n]) && n < 41)
            n++;
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: invalid number '%s' at byte %zu",
                        where, proto_printable(tmp, r->p, n), proto_jr_off(r));
    }
    return qdq_fail(r->err, QDQ_EINVAL, "%s: expected a number, got %s at byte %zu", where,
                    got(r, g, sizeof g), proto_jr_off(r));
}

int proto_jr_double(proto_jr *r, const char *what, double *out)
{
    int c = proto_jr_peek(r);
    size_t k = 0;
    /* JSON's numbers only: the tokens NaN and Infinity are for tensor elements. */
    if (c == '-' ? r->p + 1 < r->end && r->p[1] >= '0' && r->p[1] <= '9' : c >= '0' && c <= '9')
        k = proto_num_parse_f64(r->p, r->end, out);
    if (!k)
        return bad_number(r, what);
    r->p += k;
    return 0;
}

/* Something other than a string where a key belongs: the text is not JSON. */
static int key_error(proto_jr *r, const char *where)
{
    char tmp[16];
    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected a key (a string), got %s at "
                    "byte %zu", where, got(r, tmp, sizeof tmp), proto_jr_off(r));
}

/* `"key" :` inside an object being skipped. */
static int skip_key(proto_jr *r, const char *what)
{
    proto_jr_ws(r);
    if (proto_jr_peek(r) != '"')
        return key_error(r, what);
    if (proto_jr_string(r, what, NULL, 0, NULL, NULL, NULL))
        return r->err->code;
    proto_jr_ws(r);
    if (proto_jr_peek(r) != ':')
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ':' after a key at byte "
                        "%zu", what, proto_jr_off(r));
    r->p++;
    return 0;
}

int proto_jr_skip(proto_jr *r, const char *what, int depth)
{
    /* An explicit walk, one bit per open container (1: array), so nothing recurses. */
    enum { MAX_OPEN = 4096 };
    unsigned char is_array[MAX_OPEN / 8];
    int open = 0;
    for (;;) {
        proto_jr_ws(r);
        int c = proto_jr_peek(r);
        if (c == '{' || c == '[') {
            if (proto_jr_enter(r, depth + open))
                return r->err->code;
            if (open == MAX_OPEN)
                return qdq_fail(r->err, PROTO_ETOOBIG, "%s: nesting deeper than %d at byte %zu",
                                what, MAX_OPEN, proto_jr_off(r));
            if (c == '[')
                is_array[open / 8] |= (unsigned char)(1u << (open % 8));
            else
                is_array[open / 8] &= (unsigned char)~(1u << (open % 8));
            r->p++;
            open++;
            proto_jr_ws(r);
            if (proto_jr_peek(r) == (c == '[' ? ']' : '}')) {
                r->p++;
                open--;
            } else {
                if (c == '{' && skip_key(r, what))
                    return r->err->code;
                continue;
            }
        } else if (c == '"') {
            if (proto_jr_string(r, what, NULL, 0, NULL, NULL, NULL))
                return r->err->code;
        } else if (proto_jr_at(r, "true", 4) || proto_jr_at(r, "null", 4)) {
            r->p += 4;
        } else if (proto_jr_at(r, "false", 5)) {
            r->p += 5;
        } else {
            double d;
            if (proto_jr_double(r, what, &d))
                return r->err->code;
        }
        /* After a value: close containers, or take a ',' and go on to the next value. */
        while (open > 0) {
            bool arr = is_array[(open - 1) / 8] >> ((open - 1) % 8) & 1;
            proto_jr_ws(r);
            c = proto_jr_peek(r);
            if (c == ',') {
                r->p++;
                if (!arr && skip_key(r, what))
                    return r->err->code;
                break;
            }
            if (c == (arr ? ']' : '}')) {
                r->p++;
                open--;
                continue;
            }
            char g[16];
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ',' or '%c', got %s "
                            "at byte %zu", what, arr ? ']' : '}', got(r, g, sizeof g),
                            proto_jr_off(r));
        }
        if (open == 0)
            return 0;
    }
}

/* ---- objects and arrays ---- */

int proto_jr_key(proto_jr *r, const char *where, const char *const *names, int n,
                 unsigned *seen, int *which)
{
    char key[64], tmp[48];
    size_t len;
    size_t at = proto_jr_off(r);
    if (proto_jr_peek(r) != '"')
        return key_error(r, where);
    if (proto_jr_string(r, where, key, sizeof key - 1, &len, NULL, NULL))
        return r->err->code;
    for (int i = 0; i < n; i++)
        if (len == strlen(names[i]) && !memcmp(key, names[i], len)) {
            if (*seen & 1u << i)
                return qdq_fail(r->err, QDQ_EINVAL, "duplicate key '%s' in %s at byte %zu",
                                names[i], where, at);
            *seen |= 1u << i;
            *which = i;
            proto_jr_ws(r);
            if (proto_jr_peek(r) != ':')
                return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: expected ':' after '%s' at "
                                "byte %zu", names[i], proto_jr_off(r));
            r->p++;
            proto_jr_ws(r);
            return 0;
        }
    char expected[200];
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof expected; i++)
        k += (size_t)snprintf(expected + k, sizeof expected - k, "%s%s", i ? ", " : "", names[i]);
    return qdq_fail(r->err, QDQ_EINVAL, "unknown key '%s' in %s at byte %zu (expected one of: %s)",
                    proto_printable(tmp, key, len < sizeof key - 1 ? len : sizeof key - 1),
                    where, at, expected);
}

int proto_jr_any_key(proto_jr *r, const char *where, char *key, size_t cap, size_t *len)
{
    size_t n;
    if (proto_jr_peek(r) != '"')
        return key_error(r, where);
    if (proto_jr_string(r, where, key, cap - 1, &n, NULL, NULL))
        return r->err->code;
    key[n < cap - 1 ? n : cap - 1] = '\0';
    if (len)
        *len = n;
    proto_jr_ws(r);
    if (proto_jr_peek(r) != ':')
        return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ':' after a key at byte "
                        "%zu", where, proto_jr_off(r));
    r->p++;
    proto_jr_ws(r);
    return 0;
}

int proto_jr_next(proto_jr *r, const char *where, char close, int *done)
{
    proto_jr_ws(r);
    int c = proto_jr_peek(r);
    if (c == ',') {
        r->p++;
        proto_jr_ws(r);
        if (proto_jr_peek(r) == close)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: trailing comma before '%c' at "
                            "byte %zu", where, close, proto_jr_off(r));
        *done = 0;
        return 0;
    }
    if (c == close) {
        r->p++;
        *done = 1;
        return 0;
    }
    char g[16];
    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ',' or '%c' after a %s, got "
                    "%s at byte %zu", where, close, close == '}' ? "member" : "value",
                    got(r, g, sizeof g), proto_jr_off(r));
}

int proto_jr_open(proto_jr *r, const char *what, char open, int depth, bool *empty)
{
    if (proto_jr_peek(r) != open)
        return proto_jr_type_error(r, what, open == '{' ? "an object" : "an array");
    if (proto_jr_enter(r, depth))
        return r->err->code;
    r->p++;
    proto_jr_ws(r);
    *empty = proto_jr_peek(r) == (open == '{' ? '}' : ']');
    if (*empty)
        r->p++;
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

static int grow(proto_jr *r, proto_jtensor *t, const char *name)
{
    if (t->fixed)
        return qdq_fail(r->err, QDQ_EINVAL, "%s has more than the %llu elements its shape needs",
                        name, (unsigned long long)t->cap);
    /* Every element takes at least two bytes of text ("1,"), so this never overflows. */
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

/* Reads one number at the read position as the next element of t. */
static inline int read_element(proto_jr *r, proto_jtensor *t, const char *name,
                               const int64_t *idx, int d)
{
    char where[256];
    if (t->count >= r->lim.max_elements)
        return qdq_fail(r->err, PROTO_ETOOBIG, "%s has more than %llu elements (max_elements)",
                        name, (unsigned long long)r->lim.max_elements);
    if (t->store && t->count == t->cap && grow(r, t, name))
        return r->err->code;
    void *dst = t->store ? t->data : t->scratch;
    uint64_t i = t->store ? t->count : 0;
    size_t k = proto_num_parse_dtype(t->store ? t->dtype : QDQ_FLOAT64, r->p, r->end, dst, i);
    if (!k)
        return bad_number(r, proto_jr_path(where, sizeof where, name, idx, d));
    if (t->store && is_inf(t->dtype, dst, i) && r->p[0] != 'I' && r->p[1] != 'I') {
        char tmp[48];
        return qdq_fail(r->err, QDQ_EINVAL, "%s: %s is out of range for %s",
                        proto_jr_path(where, sizeof where, name, idx, d),
                        proto_printable(tmp, r->p, k), qdq_dtype_name(t->dtype));
    }
    r->p += k;
    t->count++;
    return 0;
}

int proto_jr_tensor(proto_jr *r, const char *name, int depth0, proto_jtensor *t)
{
    int64_t idx[PROTO_MAX_RANK]; /* elements completed in each open array */
    bool dim_known[PROTO_MAX_RANK] = { false };
    char pa[128], pb[128];
    int d = 0, rank = -1;
    bool rank_from_number = false;
    bool want_value = true;   /* at a value (after '[' or ','), else after one */
    bool after_comma = false; /* ... and that value follows a comma */

    t->count = 0;
    if (proto_jr_peek(r) != '[') {
        t->rank = 0;
        return read_element(r, t, name, NULL, 0);
    }
    for (;;) {
        proto_jr_ws(r);
        int c = proto_jr_peek(r);
        if (want_value && c == '[') {
            if (rank >= 0 && d >= rank) {
                if (rank_from_number)
                    return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is an array but %s is "
                                    "a number", name, proto_jr_path(pa, sizeof pa, name, idx, d),
                                    proto_jr_path(pb, sizeof pb, name, NULL, d));
                return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is an array but %s is "
                                "empty", name, proto_jr_path(pa, sizeof pa, name, idx, d),
                                proto_jr_path(pb, sizeof pb, name, NULL, rank - 1));
            }
            if (proto_jr_enter(r, depth0 + d + 1))
                return r->err->code;
            if (d + 1 > r->lim.max_rank)
                return qdq_fail(r->err, PROTO_ETOOBIG, "%s: rank %d at byte %zu exceeds "
                                "max_rank %d", name, d + 1, proto_jr_off(r), r->lim.max_rank);
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
                return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: %s is a number but %s is an "
                                "array", name, proto_jr_path(pa, sizeof pa, name, idx, d),
                                proto_jr_path(pb, sizeof pb, name, NULL, d));
            }
            /* The leaf loop: the hot path of every JSON tensor. */
            want_value = false;
            for (;;) {
                if (read_element(r, t, name, idx, d))
                    return r->err->code;
                idx[d - 1]++;
                proto_jr_ws(r);
                if (proto_jr_peek(r) != ',')
                    break;
                r->p++;
                proto_jr_ws(r);
                if (proto_jr_peek(r) == '[' || proto_jr_peek(r) == ']') {
                    want_value = after_comma = true;
                    break;
                }
            }
            continue;
        }
        if (want_value && after_comma)
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: trailing comma before ']' at "
                            "byte %zu", proto_jr_path(pa, sizeof pa, name, idx, d),
                            proto_jr_off(r));
        if (!want_value && c == ',') {
            r->p++;
            want_value = after_comma = true;
            continue;
        }
        if (c != ']') {
            char g[16];
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: expected ',' or ']' after an "
                            "element, got %s at byte %zu",
                            proto_jr_path(pa, sizeof pa, name, idx, d), got(r, g, sizeof g),
                            proto_jr_off(r));
        }
        /* ']' closes the innermost array: its length must match its siblings'. */
        int k = d - 1;
        if (!dim_known[k]) {
            t->dims[k] = idx[k];
            dim_known[k] = true;
            if (rank < 0)
                rank = d; /* an empty array on the leftmost path */
        } else if (t->dims[k] != idx[k]) {
            return qdq_fail(r->err, QDQ_EINVAL, "%s is ragged: dims[%d] is %lld at %s but %lld "
                            "at %s", name, k, (long long)t->dims[k],
                            proto_jr_path(pb, sizeof pb, name, NULL, k), (long long)idx[k],
                            proto_jr_path(pa, sizeof pa, name, idx, k));
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

int proto_jr_numbers(proto_jr *r, const char *name, int depth, proto_jtensor *t)
{
    int c = proto_jr_peek(r);
    t->count = 0;
    if (c != '[' && c != '-' && c != 'N' && c != 'I' && !(c >= '0' && c <= '9'))
        return proto_jr_type_error(r, name, "a number or an array of numbers");
    if (c != '[') {
        t->rank = 0;
        return read_element(r, t, name, NULL, 0);
    }
    t->rank = 1;
    if (proto_jr_enter(r, depth))
        return r->err->code;
    r->p++;
    proto_jr_ws(r);
    if (proto_jr_peek(r) != ']')
        for (;;) {
            int64_t i = (int64_t)t->count;
            if (proto_jr_peek(r) == '[')
                return proto_jr_type_error(r, name, "numbers in a flat array");
            if (read_element(r, t, name, &i, 1))
                return r->err->code;
            proto_jr_ws(r);
            if (proto_jr_peek(r) != ',')
                break;
            r->p++;
            proto_jr_ws(r);
        }
    if (proto_jr_peek(r) != ']')
        return proto_jr_type_error(r, name, "',' or ']'");
    r->p++;
    t->dims[0] = (int64_t)t->count;
    return 0;
}
