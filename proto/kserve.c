/*
 * KServe v2 / Open Inference Protocol with Triton's binary tensor data extension (kserve.h).
 *
 * The request's JSON is small except for the "data" arrays of its tensors. Those are found by a
 * string-aware scan, read straight into typed buffers (proto_num_parse_dtype: never a cJSON node
 * per element), and replaced in a private copy of the JSON by their index; cJSON then reads the
 * remaining envelope, which holds a few dozen values.
 */
#include "kserve.h"
#include "qdq_half.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define MAX_SPANS 16 /* data arrays in one request (the model has three inputs) */
#define ENVELOPE_MAX (64 << 10) /* bytes of JSON outside the data arrays */

void proto_v2_request_init(proto_v2_request *r)
{
    memset(r, 0, sizeof *r);
    proto_request_init(&r->req);
}

void proto_v2_request_clear(proto_v2_request *r)
{
    proto_request_clear(&r->req);
    proto_v2_request_init(r);
}

typedef struct span {
    size_t begin, end; /* the array's '[' and one past its ']' in the JSON */
} span;

/* Skips a JSON string starting at s[i] == '"'; returns the index after its closing quote. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* The index of the first '[', ']' or '"' in s[i, n), or n. */
static size_t next_bracket_or_quote(const char *s, size_t i, size_t n)
{
#ifdef __SSE2__
    const __m128i lb = _mm_set1_epi8('['), rb = _mm_set1_epi8(']'), q = _mm_set1_epi8('"');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lb), _mm_cmpeq_epi8(v, rb)),
                                   _mm_cmpeq_epi8(v, q));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    for (; i < n; i++)
        if (s[i] == '[' || s[i] == ']' || s[i] == '"')
            return i;
    return n;
}

/* Appends src[0, len) to j at *o when it fits below cap; *o counts every byte either way. */
static void put_piece(char *j, size_t cap, size_t *o, const char *src, size_t len)
{
    if (*o < cap && len < cap - *o)
        memcpy(j + *o, src, len);
    *o += len;
}

/*
 * Copies the JSON text[0, n) (no NUL in it; none after it needed) into j without the arrays
 * that are values of a "data" key: each is replaced by its span index, so cJSON reads only the
 * small envelope. j holds cap bytes: *jlen is the envelope's whole length, and j holds it,
 * NUL-terminated, when *jlen < cap. Returns the number of arrays, or -1 when there are more
 * than MAX_SPANS or one does not close.
 */
static int strip_data_arrays(const char *text, size_t n, char *j, size_t cap, size_t *jlen,
                             span *spans, unsigned long long nonce)
{
    int count = 0;
    size_t o = 0, copied = 0; /* text[copied, ...) is not yet in j */
    for (size_t i = 0; i < n;) {
        const char *quote = memchr(text + i, '"', n - i);
        if (!quote)
            break;
        i = (size_t)(quote - text);
        size_t end = skip_string(text, i, n);
        bool is_data = end - i == 6 && memcmp(text + i, "\"data\"", 6) == 0;
        i = end;
        if (!is_data)
            continue;
        size_t k = i;
        while (k < n && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n' || text[k] == '\r'))
            k++;
        if (k >= n || text[k] != ':')
            continue; /* a string value "data", not a key */
        k++;
        while (k < n && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n' || text[k] == '\r'))
            k++;
        if (k >= n || text[k] != '[')
            continue;
        /* The matching ']': jump between brackets and quotes (16 bytes a step). */
        int depth = 0;
        size_t e = k;
        while (e < n) {
            char c = text[e];
            if (c == '"') {
                e = skip_string(text, e, n);
                continue;
            }
            if (c == '[')
                depth++;
            else if (c == ']' && --depth == 0)
                break;
            e = next_bracket_or_quote(text, e + 1, n);
        }
        if (e >= n || count == MAX_SPANS)
            return -1;
        spans[count] = (span){ k, e + 1 };
        put_piece(j, cap, &o, text + copied, k - copied);
        /* A marker cJSON keeps as a string; the nonce keeps a client from forging one. */
        char marker[40];
        int m = snprintf(marker, sizeof marker, "\"\x01%016llx:%d\"", nonce, count);
        put_piece(j, cap, &o, marker, (size_t)m);
        copied = e + 1;
        count++;
        i = e + 1;
    }
    put_piece(j, cap, &o, text + copied, n - copied);
    if (o < cap)
        j[o] = '\0';
    *jlen = o;
    return count;
}

/*
 * Reads the numbers of a data array (flat or nested) from the original JSON text into count
 * elements of dtype at out. Checks the array's syntax and that it holds exactly count numbers.
 */
static int read_data(const char *text, span sp, qdq_dtype dt, uint64_t count, void *out,
                     const char *name, qdq_error *err)
{
    const char *p = text + sp.begin, *end = text + sp.end;
    uint64_t got = 0;
    int depth = 0;
    bool want_value = true, after_comma = false; /* after '[' or ',' */
    while (p < end) {
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            p++;
        } else if (c == '[') {
            if (!want_value)
                return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data: expected ',' before '['", name);
            depth++, p++, after_comma = false;
        } else if (c == ']') {
            if (want_value && after_comma)
                return qdq_fail(err, QDQ_EINVAL, "invalid JSON: inputs '%s' data: trailing comma",
                            name);
            depth--, p++, want_value = false;
        } else if (c == ',') {
            if (want_value)
                return qdq_fail(err, QDQ_EINVAL, "invalid JSON: inputs '%s' data: unexpected ','",
                            name);
            p++, want_value = true, after_comma = true;
        } else {
            if (!want_value)
                return qdq_fail(err, QDQ_EINVAL, "invalid JSON: inputs '%s' data: expected ',' "
                            "after element %llu", name, (unsigned long long)got);
            if (got == count)
                return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data has more than the %llu "
                            "elements its shape needs", name, (unsigned long long)count);
            size_t k = proto_num_parse_dtype(dt, p, end, out, (size_t)got);
            if (k == 0)
                return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data[%llu]: not a number (at '%.*s')",
                            name, (unsigned long long)got, (int)(end - p < 12 ? end - p : 12), p);
            double v = dt == QDQ_FLOAT64 ? ((double *)out)[got]
                       : dt == QDQ_FLOAT32 ? ((float *)out)[got]
                       : dt == QDQ_FLOAT16 ? qdq_f16_to_f32(((uint16_t *)out)[got])
                                           : qdq_bf16_to_f32(((uint16_t *)out)[got]);
            if (isinf(v) && p[*p == '-'] != 'I')
                return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data[%llu]: %.*s is out of range for "
                            "%s", name, (unsigned long long)got, (int)(k < 24 ? k : 24), p,
                            proto_dtype_kserve(dt));
            p += k, got++, want_value = false, after_comma = false;
        }
    }
    if (depth != 0)
        return qdq_fail(err, QDQ_EINVAL, "invalid JSON: inputs '%s' data: unbalanced brackets", name);
    if (got != count)
        return qdq_fail(err, QDQ_EINVAL, "inputs '%s' data has %llu elements but its shape needs %llu",
                    name, (unsigned long long)got, (unsigned long long)count);
    return 0;
}

static int parse_datatype(const cJSON *t, const char *name, qdq_dtype *dt, qdq_error *err)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "datatype"));
    if (!s)
        return qdq_fail(err, QDQ_EINVAL, "inputs '%s': missing datatype", name);
    static const char *const names[] = { "FP32", "FP64", "FP16", "BF16" };
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *dt = (qdq_dtype)i;
            return 0;
        }
    return qdq_fail(err, QDQ_EINVAL, "inputs '%s': datatype '%.32s' is not supported (FP32, FP64, "
                "FP16, BF16)", name, s);
}

/* The "shape" of tensor t: dims, rank and element count, within the limits. */
static int parse_shape(const cJSON *t, const char *name, const proto_limits *lim, int64_t *dims,
                       int *rank, uint64_t *count, qdq_error *err)
{
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    if (!cJSON_IsArray(sh))
        return qdq_fail(err, QDQ_EINVAL, "inputs '%s': missing shape (an array of integers)", name);
    int max_rank = lim && lim->max_rank ? lim->max_rank : PROTO_MAX_RANK;
    int n = cJSON_GetArraySize(sh);
    if (n > max_rank)
        return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': rank %d is over the limit of %d", name, n,
                    max_rank);
    uint64_t c = 1;
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, sh) {
        double v = cJSON_GetNumberValue(d);
        if (!cJSON_IsNumber(d) || !(v >= 0 && v <= 4611686018427387904.0) ||
            v != (double)(int64_t)v) /* range first: casting an out-of-range double is undefined */
            return qdq_fail(err, QDQ_EINVAL, "inputs '%s': shape[%d] is not a non-negative integer",
                        name, i);
        dims[i] = (int64_t)v;
        if (dims[i] && c > UINT64_MAX / (uint64_t)dims[i])
            return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': the shape's element count overflows",
                        name);
        c *= (uint64_t)dims[i];
        i++;
    }
    if (lim && lim->max_elements && c > lim->max_elements)
        return qdq_fail(err, PROTO_ETOOBIG, "inputs '%s': %llu elements is over the limit of %llu",
                    name, (unsigned long long)c, (unsigned long long)lim->max_elements);
    *rank = n;
    *count = c;
    return 0;
}

static const char *const out_names[7] = { "output",     "input_min", "input_max", "output_min",
                                          "output_max", "scale",     "inverse_scale" };

/* The op attributes and binary_data_output from the request's "parameters". */
static int parse_parameters(const cJSON *pr, proto_v2_request *out, bool *bin_all,
                            qdq_error *err)
{
    if (!pr)
        return 0;
    if (!cJSON_IsObject(pr))
        return qdq_fail(err, QDQ_EINVAL, "parameters must be an object");
    qdq_attrs *a = &out->req.attrs;
    const cJSON *v;
    cJSON_ArrayForEach(v, pr) {
        const char *k = v->string;
        bool *flag = strcmp(k, "signed_input") == 0   ? &a->signed_input
                     : strcmp(k, "range_given") == 0  ? &a->range_given
                     : strcmp(k, "narrow_range") == 0 ? &a->narrow_range
                     : strcmp(k, "binary_data_output") == 0 ? bin_all
                                                             : NULL;
        if (flag) {
            if (!cJSON_IsBool(v))
                return qdq_fail(err, QDQ_EINVAL, "parameters.%s must be true or false", k);
            *flag = cJSON_IsTrue(v);
        } else if (strcmp(k, "num_bits") == 0 || strcmp(k, "axis") == 0) {
            double d = cJSON_GetNumberValue(v);
            if (!cJSON_IsNumber(v) || !(d >= -1e9 && d <= 1e9) || d != (double)(int)d)
                return qdq_fail(err, QDQ_EINVAL, "parameters.%s must be an integer", k);
            if (k[0] == 'n')
                a->num_bits = (int)d;
            else
                a->axis = (int64_t)d;
        } else if (strcmp(k, "round_mode") == 0) {
            const char *s = cJSON_GetStringValue(v);
            if (s && strcmp(s, "HALF_TO_EVEN") == 0)
                a->round_mode = QDQ_HALF_TO_EVEN;
            else if (s && strcmp(s, "HALF_UP") == 0)
                a->round_mode = QDQ_HALF_UP;
            else
                return qdq_fail(err, QDQ_EINVAL, "parameters.round_mode must be \"HALF_TO_EVEN\" or "
                            "\"HALF_UP\"");
        } else if (strcmp(k, "priority") == 0 || strcmp(k, "timeout") == 0) {
            /* Triton's client sends these when asked; this server has no use for them. */
        } else {
            return qdq_fail(err, QDQ_EINVAL, "unknown parameter '%.64s' (expected num_bits, "
                        "signed_input, range_given, round_mode, narrow_range, axis, "
                        "binary_data_output)", k);
        }
    }
    return 0;
}

/* The "outputs" list: which outputs, and which go binary. */
static int parse_outputs(const cJSON *os, bool bin_all, proto_v2_request *out, qdq_error *err)
{
    if (!os || (cJSON_IsArray(os) && cJSON_GetArraySize(os) == 0)) { /* none named: all */
        out->outputs = PROTO_V2_OUT_ALL;
        out->binary_outputs = bin_all ? PROTO_V2_OUT_ALL : 0;
        return 0;
    }
    if (!cJSON_IsArray(os))
        return qdq_fail(err, QDQ_EINVAL, "outputs must be an array");
    const cJSON *o;
    cJSON_ArrayForEach(o, os) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
        if (!name)
            return qdq_fail(err, QDQ_EINVAL, "outputs: every entry needs a \"name\"");
        int k = 0;
        while (k < 7 && strcmp(name, out_names[k]) != 0)
            k++;
        if (k == 7)
            return qdq_fail(err, QDQ_EINVAL, "unknown output '%.64s' (the model's outputs: output, "
                        "input_min, input_max, output_min, output_max, scale, inverse_scale)",
                        name);
        out->outputs |= 1u << k;
        bool bin = bin_all;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "parameters"), *x;
        if (op && !cJSON_IsObject(op))
            return qdq_fail(err, QDQ_EINVAL, "outputs '%s': parameters must be an object", name);
        cJSON_ArrayForEach(x, op) if (strcmp(x->string, "binary_data") != 0)
            return qdq_fail(err, QDQ_EINVAL, "outputs '%s': unknown parameter '%.64s' (only "
                        "binary_data)", name, x->string);
        const cJSON *bd = cJSON_GetObjectItemCaseSensitive(op, "binary_data");
        if (bd) {
            if (!cJSON_IsBool(bd))
                return qdq_fail(err, QDQ_EINVAL, "outputs '%s': binary_data must be true or false",
                            name);
            bin = cJSON_IsTrue(bd);
        }
        if (bin)
            out->binary_outputs |= 1u << k;
    }
    return 0;
}

static int decode(const char *body, char *writable, size_t len, size_t header_len,
                  const proto_limits *lim, proto_v2_request *out, qdq_error *err)
{
    proto_v2_request_init(out);
    size_t jlen = header_len == SIZE_MAX ? len : header_len;
    if (jlen > len)
        return qdq_fail(err, QDQ_EINVAL, "Inference-Header-Content-Length is %zu but the body has "
                    "only %zu bytes", header_len, len);
    /* The envelope: the JSON without its data arrays, at most ENVELOPE_MAX bytes of it kept
     * (a larger one is refused below; the scan goes on to measure it). */
    size_t cap = (jlen < ENVELOPE_MAX ? jlen : ENVELOPE_MAX) + 40 * MAX_SPANS + 1;
    char *j = malloc(cap);
    if (!j)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory for the request header");
    span spans[MAX_SPANS];
    unsigned long long nonce = (unsigned long long)(uintptr_t)j * 0x9e3779b97f4a7c15ull ^
                               (unsigned long long)clock();
    size_t envelope = 0;
    int nspans = memchr(body, '\0', jlen) ? -1
                 : strip_data_arrays(body, jlen, j, cap, &envelope, spans, nonce);
    /* Without its data arrays the envelope is names, shapes and a few parameters: a large one
     * would only make cJSON build a large tree. */
    if (nspans >= 0 && envelope > ENVELOPE_MAX) {
        int rc = qdq_fail(err, PROTO_ETOOBIG, "the inference request's JSON outside its data arrays is "
                  "%zu bytes, over the limit of %d", envelope, ENVELOPE_MAX);
        free(j);
        proto_v2_request_clear(out);
        return rc;
    }
    cJSON *root = nspans < 0 ? NULL : cJSON_ParseWithOpts(j, NULL, 1);
    int rc = 0;
    if (!root) {
        rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON in the inference request header%s",
                  memchr(body, '\0', jlen) ? " (it holds a NUL byte)"
                  : nspans < 0 ? " (a data array does not close)" : "");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON: the inference request must be an object");
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id) {
        if (!cJSON_IsString(id) || strlen(id->valuestring) >= sizeof out->id) {
            rc = qdq_fail(err, QDQ_EINVAL, "id must be a string of at most %zu bytes",
                      sizeof out->id - 1);
            goto out;
        }
        for (const unsigned char *u = (const unsigned char *)id->valuestring; *u;) {
            size_t n = proto_utf8_len(u, SIZE_MAX);
            if (!n) {
                rc = qdq_fail(err, QDQ_EINVAL, "id is not valid UTF-8");
                goto out;
            }
            u += n;
        }
        snprintf(out->id, sizeof out->id, "%s", id->valuestring);
        out->has_id = true;
    }
    bool bin_all = false;
    if ((rc = parse_parameters(cJSON_GetObjectItemCaseSensitive(root, "parameters"), out,
                               &bin_all, err)))
        goto out;
    if ((rc = parse_outputs(cJSON_GetObjectItemCaseSensitive(root, "outputs"), bin_all, out,
                            err)))
        goto out;
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) == 0) {
        rc = qdq_fail(err, QDQ_EINVAL, "missing inputs (an array with the input \"input\")");
        goto out;
    }
    /* input first: its datatype is the others' too. */
    const cJSON *t, *by_name[3] = { NULL, NULL, NULL };
    static const char *const in_names[3] = { "input", "input_min", "input_max" };
    cJSON_ArrayForEach(t, ins) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
        if (!name) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs: every entry needs a \"name\"");
            goto out;
        }
        int k = 0;
        while (k < 3 && strcmp(name, in_names[k]) != 0)
            k++;
        if (k == 3) {
            rc = qdq_fail(err, QDQ_EINVAL, "unknown input '%.64s' (the model's inputs: input, "
                      "input_min, input_max)", name);
            goto out;
        }
        if (by_name[k]) {
            rc = qdq_fail(err, QDQ_EINVAL, "input '%s' is given twice", name);
            goto out;
        }
        by_name[k] = t;
    }
    if (!by_name[0]) {
        rc = qdq_fail(err, QDQ_EINVAL, "missing input 'input'");
        goto out;
    }
    qdq_dtype dt;
    if ((rc = parse_datatype(by_name[0], "input", &dt, err)))
        goto out;
    out->req.dtype = dt;
    size_t es = qdq_dtype_size(dt);
    /* Binary data follows the header in the order of "inputs". */
    size_t boff = jlen;
    cJSON_ArrayForEach(t, ins) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
        int k = strcmp(name, "input") == 0 ? 0 : strcmp(name, "input_min") == 0 ? 1 : 2;
        qdq_dtype tdt;
        if ((rc = parse_datatype(t, name, &tdt, err)))
            goto out;
        if (tdt != dt) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': datatype %s differs from input's %s", name,
                      proto_dtype_kserve(tdt), proto_dtype_kserve(dt));
            goto out;
        }
        int64_t dims[PROTO_MAX_RANK];
        int rank = 0;
        uint64_t count = 0;
        if ((rc = parse_shape(t, name, lim, dims, &rank, &count, err)))
            goto out;
        if (k > 0 && rank > 1) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s' must have shape [], [1] or [channels], not "
                      "rank %d", name, rank);
            goto out;
        }
        const cJSON *ip = cJSON_GetObjectItemCaseSensitive(t, "parameters"), *x;
        if (ip && !cJSON_IsObject(ip)) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': parameters must be an object", name);
            goto out;
        }
        cJSON_ArrayForEach(x, ip) if (strcmp(x->string, "binary_data_size") != 0) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': unknown parameter '%.64s' (only "
                      "binary_data_size)", name, x->string);
            goto out;
        }
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
        const cJSON *bds = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(t, "parameters"), "binary_data_size");
        if (data && bds) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': give data or binary_data_size, not both",
                      name);
            goto out;
        }
        if (!data && !bds) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': missing data (or binary_data_size)", name);
            goto out;
        }
        if (bds && header_len == SIZE_MAX) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s' has binary_data_size but the request has no "
                      "Inference-Header-Content-Length header", name);
            goto out;
        }
        bool borrow = k == 0 && bds && writable;
        void *buf = borrow ? writable + boff : malloc(count * es + 1);
        size_t skew = borrow ? (uintptr_t)(writable + boff) % es : 0;
        if (borrow && skew && count * es <= len - boff) {
            /* Typed access needs alignment: slide the bytes down onto the item size. What lies
             * below (the JSON header, earlier inputs) has been read already; writable itself
             * is aligned, so this stays inside it. */
            buf = writable + boff - skew;
            memmove(buf, writable + boff, count * es);
        }
        if (!buf) {
            rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for inputs '%s'", name);
            goto out;
        }
        if (k == 0)
            out->req.data = buf, out->req.data_borrowed = borrow;
        else if (k == 1)
            out->req.min = buf, out->req.n_min = count;
        else
            out->req.max = buf, out->req.n_max = count;
        if (bds) {
            double v = cJSON_GetNumberValue(bds);
            if (!cJSON_IsNumber(bds) || !(v >= 0 && v <= 1.8e19) || v != (double)(uint64_t)v ||
                (uint64_t)v != count * es) {
                rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': binary_data_size is %.0f but shape and "
                          "datatype need %llu bytes", name, cJSON_IsNumber(bds) ? v : -1.0,
                          (unsigned long long)(count * es));
                goto out;
            }
            if (count * es > len - boff) {
                rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': binary_data_size %llu runs past the "
                          "body (%zu bytes left after the header and earlier inputs)", name,
                          (unsigned long long)(count * es), len - boff);
                goto out;
            }
            if (!borrow)
                memcpy(buf, body + boff, count * es);
            boff += count * es;
            if (k == 0)
                out->req.form = PROTO_FORM_RAW;
        } else {
            const char *mark = cJSON_GetStringValue(data);
            char want[24];
            snprintf(want, sizeof want, "\x01%016llx:", nonce);
            int si = mark && strncmp(mark, want, 18) == 0 ? atoi(mark + 18) : -1;
            if (si < 0 || si >= nspans) {
                rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': data must be an array of numbers", name);
                goto out;
            }
            if ((rc = read_data(body, spans[si], dt, count, buf, name, err)))
                goto out;
            if (k == 0)
                out->req.form = PROTO_FORM_DATA;
        }
        if (k == 0) {
            out->req.rank = rank;
            out->req.count = count;
            memcpy(out->req.dims, dims, (size_t)rank * sizeof dims[0]);
        }
    }
    if (boff != len) {
        rc = qdq_fail(err, QDQ_EINVAL, "the body has %zu bytes after the header but the inputs' "
                  "binary_data_size add up to %zu", len - jlen, boff - jlen);
        goto out;
    }
    if (out->req.attrs.range_given && (!out->req.min || !out->req.max)) {
        rc = qdq_fail(err, QDQ_EINVAL, "range_given is true but input %s is missing",
                  out->req.min ? "input_max" : "input_min");
        goto out;
    }
out:
    cJSON_Delete(root);
    free(j);
    if (rc)
        proto_v2_request_clear(out);
    return rc;
}

int proto_v2_decode(const char *body, size_t len, size_t header_len, const proto_limits *lim,
                    proto_v2_request *out, qdq_error *err)
{
    return decode(body, NULL, len, header_len, lim, out, err);
}

int proto_v2_decode_inplace(char *body, size_t len, size_t header_len, const proto_limits *lim,
                            proto_v2_request *out, qdq_error *err)
{
    return decode(body, body, len, header_len, lim, out, err);
}

/* Appends a JSON string literal. */
static int put_str(proto_buf *b, const char *s)
{
    int rc = proto_buf_append(b, "\"", 1);
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\')
            esc[0] = '\\', esc[1] = (char)c, rc = proto_buf_append(b, esc, 2);
        else if (c < 0x20)
            rc = proto_buf_append(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
        else
            rc = proto_buf_append(b, s, 1);
    }
    return rc ? rc : proto_buf_append(b, "\"", 1);
}

static int put(proto_buf *b, const char *s) { return proto_buf_append(b, s, strlen(s)); }

static int encode(const proto_v2_request *r, const qdq_plan *plan, const void *params,
                  const void *out, proto_buf *buf, size_t *header_len, bool skip_output,
                  qdq_error *err)
{
    size_t start = buf->len;
    const proto_request *q = &r->req;
    bool dbl = q->dtype == QDQ_FLOAT64;
    uint64_t C = plan->channels;
    int rc = put(buf, "{\"model_name\":\"" PROTO_V2_MODEL_NAME "\",\"model_version\":\""
                      PROTO_V2_MODEL_VERSION "\"");
    if (r->has_id && !rc)
        rc = put(buf, ",\"id\":") || put_str(buf, r->id);
    rc = rc || put(buf, ",\"outputs\":[");
    char num[PROTO_NUM_MAX + 40];
    bool first = true;
    for (int k = 0; k < 7 && !rc; k++) {
        if (!(r->outputs & (1u << k)))
            continue;
        bool bin = r->binary_outputs & (1u << k);
        const char *dtn = k == 0 ? proto_dtype_kserve(q->dtype) : dbl ? "FP64" : "FP32";
        snprintf(num, sizeof num, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[",
                 first ? "" : ",", out_names[k], dtn);
        rc = put(buf, num);
        first = false;
        uint64_t n = k == 0 ? q->count : C;
        if (k == 0) {
            for (int d = 0; d < q->rank && !rc; d++)
                rc = put(buf, (snprintf(num, sizeof num, "%s%lld", d ? "," : "",
                                        (long long)q->dims[d]), num));
        } else {
            rc = put(buf, (snprintf(num, sizeof num, "%llu",
                                    (unsigned long long)(plan->attrs.axis < 0 ? 1 : C)), num));
        }
        rc = rc || put(buf, "]");
        size_t es = k == 0 ? qdq_dtype_size(q->dtype) : dbl ? 8 : 4;
        if (bin) {
            snprintf(num, sizeof num, ",\"parameters\":{\"binary_data_size\":%llu}}",
                     (unsigned long long)(n * es));
            rc = rc || put(buf, num);
            continue;
        }
        rc = rc || put(buf, ",\"data\":[");
        if (k == 0) {
            rc = rc || proto_json_put_numbers(buf, q->dtype, out, 0, n);
            rc = rc || put(buf, "]}");
            continue;
        }
        for (uint64_t i = 0; i < n && !rc; i++) {
            size_t m = 0;
            if (i)
                num[m++] = ',';
            if (k == 0) {
                m += proto_num_format_dtype(q->dtype, out, (size_t)i, num + m);
            } else {
                qdq_range rg;
                qdq_params_get(plan, params, i, &rg);
                double v[6] = { rg.input_min, rg.input_max, rg.output_min, rg.output_max,
                                rg.scale, rg.inverse_scale };
                m += dbl ? proto_num_format_f64(v[k - 1], num + m)
                         : proto_num_format_f32((float)v[k - 1], num + m);
            }
            rc = proto_buf_append(buf, num, m);
        }
        rc = rc || put(buf, "]}");
    }
    rc = rc || put(buf, "]}");
    size_t hlen = buf->len - start;
    /* The binary outputs, in the same order, little-endian. */
    for (int k = 0; k < 7 && !rc; k++) {
        if (!(r->outputs & r->binary_outputs & (1u << k)))
            continue;
        if (k == 0) {
            if (!skip_output)
                rc = proto_buf_append(buf, out, q->count * qdq_dtype_size(q->dtype));
            continue;
        }
        for (uint64_t c = 0; c < C && !rc; c++) {
            qdq_range rg;
            qdq_params_get(plan, params, c, &rg);
            double v[6] = { rg.input_min, rg.input_max, rg.output_min, rg.output_max, rg.scale,
                            rg.inverse_scale };
            float f = (float)v[k - 1];
            rc = dbl ? proto_buf_append(buf, &v[k - 1], 8) : proto_buf_append(buf, &f, 4);
        }
    }
    if (rc) {
        buf->len = start;
        return qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
    }
    *header_len = r->binary_outputs & r->outputs ? hlen : SIZE_MAX;
    return 0;
}

int proto_v2_encode(const proto_v2_request *r, const qdq_plan *plan, const void *params,
                    const void *out, proto_buf *buf, size_t *header_len, qdq_error *err)
{
    return encode(r, plan, params, out, buf, header_len, false, err);
}

int proto_v2_encode_split(const proto_v2_request *r, const qdq_plan *plan, const void *params,
                          const void *out, proto_buf *buf, size_t *header_len, size_t *split,
                          qdq_error *err)
{
    bool skip = (r->outputs & r->binary_outputs & PROTO_V2_OUT_OUTPUT) != 0;
    int rc = encode(r, plan, params, out, buf, header_len, skip, err);
    *split = rc == 0 && skip ? *header_len : SIZE_MAX;
    return rc;
}
