/*
 * KServe v2 / Open Inference Protocol with Triton's binary tensor data extension (kserve.h;
 * docs/api.md, "KServe v2").
 *
 * The request's JSON is read with the pull reader (json_pull.h), the same as native JSON: its
 * "data" arrays go straight into typed buffers, never a tree of nodes. An input's keys may
 * come in any order, so each input object is first walked for where its values are (a "data"
 * array is passed over by matching brackets, 16 bytes a step) and then read, data last, once
 * its name, datatype and shape are known. Outside its data arrays a request is names, shapes
 * and a few parameters: more than ENVELOPE_MAX bytes of it is refused.
 */
#include "kserve.h"
#include "json_pull.h"
#include "qdq_half.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

#define ENVELOPE_MAX (64 << 10) /* bytes of JSON outside the data arrays */

static const char *const out_names[PROTO_V2_NOUTPUTS] = {
    "output",     "input_min", "input_max",     "output_min", "output_max", "scale",
    "inverse_scale", "max_abs_error", "rmse", "sqnr_db", "nonfinite",
};
static const char *const in_names[3] = { "input", "input_min", "input_max" };

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

/*
 * Moves the reader past the array at its position (which is '[') without reading its numbers:
 * they are read once, into the tensor, when the input's datatype and shape are known. Strings
 * inside are skipped whole; the array's syntax is checked when it is read.
 */
static int skip_array(proto_jr *r, const char *what)
{
    const char *s = r->base;
    size_t i = proto_jr_off(r), n = (size_t)(r->end - r->base);
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            i++;
        } else {
            if (c == '[')
                depth++;
            else if (c == ']' && --depth == 0) {
                r->p = s + i + 1;
                return 0;
            }
            i = next_bracket_or_quote(s, i + 1, n);
        }
    }
    return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: %s: the array starting at byte %zu does "
                    "not close", what, proto_jr_off(r));
}

/* A JSON number at the reader's position, moving past it; false (nothing recorded, the reader
 * not moved) when there is none: the caller's message says what was expected. */
static bool try_number(proto_jr *r, double *v)
{
    proto_jr at = *r;
    qdq_error scratch = { 0 };
    at.err = &scratch;
    int c = proto_jr_peek(&at);
    if (!(c == '-' || (c >= '0' && c <= '9')) || proto_jr_double(&at, "", v))
        return false;
    r->p = at.p;
    return true;
}

/* One entry of "inputs", as found: where each of its values is, read once the name is known. */
typedef struct in_entry {
    const char *name, *datatype, *shape, *params, *data; /* value positions, or NULL */
    const char *data_end;
    int k;               /* 0 input, 1 input_min, 2 input_max */
    qdq_dtype dt;
    int rank;
    int64_t dims[PROTO_MAX_RANK];
    uint64_t count;
    bool binary;
    size_t boff;         /* binary: its offset in the body */
} in_entry;

/* "name": the string at p (checked already) into buf. */
static void entry_name(proto_jr *r, const char *p, char *buf, size_t cap)
{
    proto_jr at = *r;
    size_t n = 0;
    at.p = p;
    qdq_error ignore = { 0 };
    at.err = &ignore;
    proto_jr_string(&at, "name", buf, cap - 1, &n, NULL, NULL);
    buf[n < cap - 1 ? n : cap - 1] = '\0';
}

/* The datatype named at p, or an error for the input `name`. */
static int entry_datatype(proto_jr *r, const char *p, const char *name, qdq_dtype *dt)
{
    if (!p)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': missing datatype", name);
    char s[40];
    size_t n = 0;
    proto_jr at = *r;
    at.p = p;
    if (proto_jr_peek(&at) != '"')
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': missing datatype", name);
    if (proto_jr_string(&at, "datatype", s, sizeof s - 1, &n, NULL, NULL))
        return r->err->code;
    s[n < sizeof s - 1 ? n : sizeof s - 1] = '\0';
    for (int i = 0; i < 4; i++)
        if (n == 4 && strcmp(s, proto_dtype_kserve((qdq_dtype)i)) == 0) {
            *dt = (qdq_dtype)i;
            return 0;
        }
    char tmp[48];
    return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': datatype '%s' is not supported (FP32, FP64, "
                    "FP16, BF16)", name, proto_printable(tmp, s, n < 32 ? n : 32));
}

/* "shape" at p: dims, rank and element count, within the limits. */
static int entry_shape(proto_jr *r, const char *p, const char *name, in_entry *e)
{
    proto_jr at = *r;
    at.p = p;
    bool empty;
    if (!p || proto_jr_peek(&at) != '[')
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': missing shape (an array of integers)",
                        name);
    if (proto_jr_open(&at, "shape", '[', 4, &empty))
        return r->err->code;
    uint64_t c = 1;
    int d = 0;
    for (int done = empty; !done;) {
        if (d == at.lim.max_rank)
            return qdq_fail(r->err, PROTO_ETOOBIG, "inputs '%s': rank %d is over the limit of %d",
                            name, d + 1, at.lim.max_rank);
        double v;
        if (!try_number(&at, &v) || !(v >= 0 && v <= 4611686018427387904.0) ||
            v != (double)(int64_t)v) /* range first: casting an out-of-range double is UB */
            return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': shape[%d] is not a non-negative "
                            "integer", name, d);
        e->dims[d] = (int64_t)v;
        if (e->dims[d] && c > UINT64_MAX / (uint64_t)e->dims[d])
            return qdq_fail(r->err, PROTO_ETOOBIG, "inputs '%s': the shape's element count "
                            "overflows", name);
        c *= (uint64_t)e->dims[d++];
        if (proto_jr_next(&at, "shape", ']', &done))
            return r->err->code;
    }
    if (c > at.lim.max_elements)
        return qdq_fail(r->err, PROTO_ETOOBIG, "inputs '%s': %llu elements is over the limit of "
                        "%llu", name, (unsigned long long)c,
                        (unsigned long long)at.lim.max_elements);
    e->rank = d;
    e->count = c;
    return 0;
}

/* An input's "parameters": binary_data_size only. */
static int entry_params(proto_jr *r, const char *p, const char *name, in_entry *e,
                        uint64_t *bds, bool *has_bds)
{
    *has_bds = false;
    if (!p)
        return 0;
    proto_jr at = *r;
    at.p = p;
    bool empty;
    if (proto_jr_peek(&at) != '{')
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': parameters must be an object", name);
    if (proto_jr_open(&at, "parameters", '{', 4, &empty))
        return r->err->code;
    for (int done = empty; !done;) {
        char key[64];
        if (proto_jr_any_key(&at, "parameters", key, sizeof key, NULL))
            return r->err->code;
        if (strcmp(key, "binary_data_size") != 0)
            return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': unknown parameter '%.64s' (only "
                            "binary_data_size)", name, key);
        double v = -1;
        bool num = try_number(&at, &v);
        size_t es = qdq_dtype_size(e->dt);
        if (!num || !(v >= 0 && v <= 1.8e19) || v != (double)(uint64_t)v ||
            (uint64_t)v != e->count * es)
            return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': binary_data_size is %.0f but shape "
                            "and datatype need %llu bytes", name, num ? v : -1.0,
                            (unsigned long long)(e->count * es));
        *bds = (uint64_t)v;
        *has_bds = true;
        if (proto_jr_next(&at, "parameters", '}', &done))
            return r->err->code;
    }
    return 0;
}

/*
 * One object of "inputs": its values' positions first (the name may come last), then each
 * read in the order that gives the clearest message: name, datatype, shape, parameters, data.
 */
static int read_input(proto_jr *r, size_t header_len, in_entry *e, bool seen[3],
                      proto_v2_request *out, size_t *boff, void **bufs)
{
    static const char *const keys[5] = { "name", "datatype", "shape", "parameters", "data" };
    const char **pos[5] = { &e->name, &e->datatype, &e->shape, &e->params, &e->data };
    bool empty;
    if (proto_jr_peek(r) != '{')
        return qdq_fail(r->err, QDQ_EINVAL, "inputs: every entry needs a \"name\"");
    if (proto_jr_open(r, "inputs", '{', 3, &empty))
        return r->err->code;
    for (int done = empty; !done;) {
        char key[32];
        if (proto_jr_any_key(r, "inputs", key, sizeof key, NULL))
            return r->err->code;
        int k = 0;
        while (k < 5 && strcmp(key, keys[k]) != 0)
            k++;
        if (k < 5 && *pos[k])
            return qdq_fail(r->err, QDQ_EINVAL, "invalid JSON: inputs: duplicate key '%s' at "
                            "byte %zu", keys[k], proto_jr_off(r));
        if (k < 5)
            *pos[k] = r->p;
        if (k == 4 && proto_jr_peek(r) == '[') {
            if (skip_array(r, "inputs data"))
                return r->err->code;
            e->data_end = r->p;
        } else if (proto_jr_skip(r, k < 5 ? keys[k] : key, 4)) {
            return r->err->code;
        }
        if (proto_jr_next(r, "inputs", '}', &done))
            return r->err->code;
    }
    char name[80];
    if (!e->name || *e->name != '"')
        return qdq_fail(r->err, QDQ_EINVAL, "inputs: every entry needs a \"name\"");
    entry_name(r, e->name, name, sizeof name);
    e->k = 0;
    while (e->k < 3 && strcmp(name, in_names[e->k]) != 0)
        e->k++;
    if (e->k == 3)
        return qdq_fail(r->err, QDQ_EINVAL, "unknown input '%.64s' (the model's inputs: input, "
                        "input_min, input_max)", name);
    if (seen[e->k])
        return qdq_fail(r->err, QDQ_EINVAL, "input '%s' is given twice", name);
    seen[e->k] = true;
    if (entry_datatype(r, e->datatype, name, &e->dt) || entry_shape(r, e->shape, name, e))
        return r->err->code;
    if (e->k > 0 && e->rank > 1)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s' must have shape [], [1] or [channels], "
                        "not rank %d", name, e->rank);
    uint64_t bds = 0;
    bool has_bds;
    if (entry_params(r, e->params, name, e, &bds, &has_bds))
        return r->err->code;
    if (e->data && has_bds)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': give data or binary_data_size, not "
                        "both", name);
    if (!e->data && !has_bds)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': missing data (or binary_data_size)",
                        name);
    if (has_bds && header_len == SIZE_MAX)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s' has binary_data_size but the request has "
                        "no Inference-Header-Content-Length header", name);
    if (has_bds) { /* the bytes follow the JSON, in the order of "inputs": taken at the end */
        e->binary = true;
        e->boff = *boff;
        *boff += bds;
        if (*boff < bds)
            *boff = SIZE_MAX;
        return 0;
    }
    if (!e->data_end) /* a value other than an array */
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s': data must be an array of numbers",
                        name);
    size_t es = qdq_dtype_size(e->dt);
    char *buf = malloc(e->count ? e->count * es : 1);
    if (!buf)
        return qdq_fail(r->err, PROTO_ENOMEM, "out of memory for inputs '%s'", name);
    bufs[e->k] = buf;
    char what[100];
    snprintf(what, sizeof what, "inputs '%s' data", name);
    proto_jr at = *r;
    at.p = e->data;
    at.end = e->data_end;
    proto_jtensor t;
    memset(&t, 0, sizeof t);
    t.dtype = e->dt;
    t.store = t.fixed = true;
    t.data = buf;
    t.cap = e->count;
    if (proto_jr_tensor(&at, what, 3, &t))
        return r->err->code;
    if (t.count != e->count)
        return qdq_fail(r->err, QDQ_EINVAL, "inputs '%s' data has %llu elements but its shape "
                        "needs %llu", name, (unsigned long long)t.count,
                        (unsigned long long)e->count);
    if (e->k == 0)
        out->req.form = PROTO_FORM_DATA;
    return 0;
}

int proto_v2_parameter(proto_v2_request *r, const char *k, const proto_v2_value *v,
                       bool *bin_all, qdq_error *err)
{
    qdq_attrs *a = &r->req.attrs;
    bool *flag = strcmp(k, "signed_input") == 0         ? &a->signed_input
                 : strcmp(k, "range_given") == 0        ? &a->range_given
                 : strcmp(k, "narrow_range") == 0       ? &a->narrow_range
                 : strcmp(k, "binary_data_output") == 0 ? bin_all
                 : strcmp(k, "stats") == 0              ? &r->req.want_stats
                                                        : NULL;
    if (flag) {
        if (v->kind != PROTO_V2_VAL_BOOL)
            return qdq_fail(err, QDQ_EINVAL, "parameters.%s must be true or false", k);
        *flag = v->b;
    } else if (strcmp(k, "num_bits") == 0 || strcmp(k, "axis") == 0) {
        double d = v->d; /* the range first: casting an out-of-range double is undefined */
        if (v->kind != PROTO_V2_VAL_NUMBER || !(d >= -1e9 && d <= 1e9) || d != (double)(int)d)
            return qdq_fail(err, QDQ_EINVAL, "parameters.%s must be an integer", k);
        if (k[0] == 'n')
            a->num_bits = (int)d;
        else
            a->axis = (int64_t)d;
    } else if (strcmp(k, "round_mode") == 0) {
        const char *s = v->kind == PROTO_V2_VAL_STRING ? v->s : "";
        if (strcmp(s, "HALF_TO_EVEN") == 0)
            a->round_mode = QDQ_HALF_TO_EVEN;
        else if (strcmp(s, "HALF_UP") == 0)
            a->round_mode = QDQ_HALF_UP;
        else
            return qdq_fail(err, QDQ_EINVAL, "parameters.round_mode must be \"HALF_TO_EVEN\" or "
                            "\"HALF_UP\"");
    } else if (strcmp(k, "priority") != 0 && strcmp(k, "timeout") != 0) {
        /* (Triton's client sends priority and timeout when asked; this server has no use.) */
        return qdq_fail(err, QDQ_EINVAL, "unknown parameter '%.64s' (expected num_bits, "
                        "signed_input, range_given, round_mode, narrow_range, axis, "
                        "binary_data_output, stats)", k);
    }
    return 0;
}

int proto_v2_output(proto_v2_request *r, const char *name, int *kp, qdq_error *err)
{
    int k = 0;
    while (k < PROTO_V2_NOUTPUTS && strcmp(name, out_names[k]) != 0)
        k++;
    if (k == PROTO_V2_NOUTPUTS)
        return qdq_fail(err, QDQ_EINVAL, "unknown output '%.64s' (the model's outputs: output, "
                        "input_min, input_max, output_min, output_max, scale, inverse_scale, and "
                        "the statistics max_abs_error, rmse, sqnr_db, nonfinite)", name);
    r->outputs |= 1u << k;
    if (k >= 7) /* a statistic named: they are computed */
        r->req.want_stats = true;
    *kp = k;
    return 0;
}

void proto_v2_outputs_default(proto_v2_request *r)
{
    if (!r->outputs)
        r->outputs = PROTO_V2_OUT_ALL | (r->req.want_stats ? PROTO_V2_OUT_STATS : 0);
}

/* The request's "parameters" (proto_v2_parameter). */
static int read_parameters(proto_jr *r, proto_v2_request *out, bool *bin_all)
{
    bool empty;
    if (proto_jr_peek(r) != '{')
        return qdq_fail(r->err, QDQ_EINVAL, "parameters must be an object");
    if (proto_jr_open(r, "parameters", '{', 2, &empty))
        return r->err->code;
    for (int done = empty; !done;) {
        char k[64], s[64];
        if (proto_jr_any_key(r, "parameters", k, sizeof k, NULL))
            return r->err->code;
        proto_v2_value v = { PROTO_V2_VAL_OTHER, false, 0, "" };
        int c = proto_jr_peek(r);
        if (proto_jr_at(r, "true", 4) || proto_jr_at(r, "false", 5)) {
            v.kind = PROTO_V2_VAL_BOOL;
            proto_jr_bool(r, k, &v.b);
        } else if (try_number(r, &v.d)) {
            v.kind = PROTO_V2_VAL_NUMBER;
        } else if (c == '"') {
            size_t n = 0;
            if (proto_jr_string(r, k, s, sizeof s - 1, &n, NULL, NULL))
                return r->err->code;
            s[n < sizeof s - 1 ? n : sizeof s - 1] = '\0';
            v.kind = n < sizeof s - 1 ? PROTO_V2_VAL_STRING : PROTO_V2_VAL_OTHER;
            v.s = s;
        } else if (proto_jr_skip(r, k, 3)) {
            return r->err->code;
        }
        if (proto_v2_parameter(out, k, &v, bin_all, r->err))
            return r->err->code;
        if (proto_jr_next(r, "parameters", '}', &done))
            return r->err->code;
    }
    return 0;
}

/* "outputs": which outputs, each with its binary_data choice (-1: the request's default). */
static int read_outputs(proto_jr *r, proto_v2_request *out, signed char bin[PROTO_V2_NOUTPUTS])
{
    bool empty;
    if (proto_jr_peek(r) != '[')
        return qdq_fail(r->err, QDQ_EINVAL, "outputs must be an array");
    if (proto_jr_open(r, "outputs", '[', 2, &empty))
        return r->err->code;
    for (int done = empty; !done;) {
        bool e2;
        if (proto_jr_peek(r) != '{')
            return qdq_fail(r->err, QDQ_EINVAL, "outputs: every entry needs a \"name\"");
        if (proto_jr_open(r, "outputs", '{', 3, &e2))
            return r->err->code;
        const char *name_at = NULL, *params_at = NULL;
        for (int d2 = e2; !d2;) {
            char key[32];
            if (proto_jr_any_key(r, "outputs", key, sizeof key, NULL))
                return r->err->code;
            if (strcmp(key, "name") == 0)
                name_at = r->p;
            else if (strcmp(key, "parameters") == 0)
                params_at = r->p;
            if (proto_jr_skip(r, key, 4) || proto_jr_next(r, "outputs", '}', &d2))
                return r->err->code;
        }
        char name[80];
        if (!name_at || *name_at != '"')
            return qdq_fail(r->err, QDQ_EINVAL, "outputs: every entry needs a \"name\"");
        entry_name(r, name_at, name, sizeof name);
        int k;
        if (proto_v2_output(out, name, &k, r->err))
            return r->err->code;
        if (params_at) {
            proto_jr at = *r;
            at.p = params_at;
            bool e3;
            if (proto_jr_peek(&at) != '{')
                return qdq_fail(r->err, QDQ_EINVAL, "outputs '%s': parameters must be an object",
                                name);
            if (proto_jr_open(&at, "parameters", '{', 4, &e3))
                return r->err->code;
            for (int d3 = e3; !d3;) {
                char key[64];
                if (proto_jr_any_key(&at, "parameters", key, sizeof key, NULL))
                    return r->err->code;
                if (strcmp(key, "binary_data") != 0)
                    return qdq_fail(r->err, QDQ_EINVAL, "outputs '%s': unknown parameter '%.64s' "
                                    "(only binary_data)", name, key);
                bool b;
                if (!proto_jr_at(&at, "true", 4) && !proto_jr_at(&at, "false", 5))
                    return qdq_fail(r->err, QDQ_EINVAL, "outputs '%s': binary_data must be true "
                                    "or false", name);
                proto_jr_bool(&at, key, &b);
                bin[k] = b;
                if (proto_jr_next(&at, "parameters", '}', &d3))
                    return r->err->code;
            }
        }
        if (proto_jr_next(r, "outputs", ']', &done))
            return r->err->code;
    }
    return 0;
}

static int decode(const char *body, char *writable, size_t len, size_t header_len,
                  const proto_limits *lim, proto_v2_request *out, qdq_error *err)
{
    proto_v2_request_init(out);
    size_t jlen = header_len == SIZE_MAX ? len : header_len;
    if (jlen > len)
        return qdq_fail(err, QDQ_EINVAL, "Inference-Header-Content-Length is %zu but the body "
                        "has only %zu bytes", header_len, len);
    if (memchr(body, '\0', jlen)) /* before anything else: this is no JSON at all */
        return qdq_fail(err, QDQ_EINVAL, "invalid JSON in the inference request header (it "
                        "holds a NUL byte)");
    proto_jr r;
    proto_jr_init(&r, body, jlen, lim, err);
    enum { T_ID, T_PARAMETERS, T_OUTPUTS, T_INPUTS };
    static const char *const top[4] = { "id", "parameters", "outputs", "inputs" };
    in_entry ins[3];
    int nin = 0;
    bool seen[3] = { false, false, false }, bin_all = false, empty;
    signed char bin[PROTO_V2_NOUTPUTS];
    memset(bin, -1, sizeof bin);
    void *bufs[3] = { NULL, NULL, NULL };
    size_t boff = jlen, data_bytes = 0;
    unsigned got = 0;
    int rc = 0;
    memset(ins, 0, sizeof ins);
    proto_jr_ws(&r);
    if (proto_jr_peek(&r) < 0) {
        rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON: the inference request is empty");
        goto out;
    }
    if (proto_jr_peek(&r) != '{') {
        rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON: the inference request must be an object");
        goto out;
    }
    if ((rc = proto_jr_open(&r, "the inference request", '{', 1, &empty)))
        goto out;
    for (int done = empty; !done;) {
        char key[64];
        size_t at = proto_jr_off(&r);
        if ((rc = proto_jr_any_key(&r, "the inference request", key, sizeof key, NULL)))
            goto out;
        int k = 0;
        while (k < 4 && strcmp(key, top[k]) != 0)
            k++;
        if (k < 4 && (got & 1u << k)) {
            rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON: duplicate key '%s' in the inference "
                          "request at byte %zu", key, at);
            goto out;
        }
        if (k < 4)
            got |= 1u << k;
        switch (k) {
        case T_ID: {
            size_t n = 0;
            if (proto_jr_peek(&r) != '"') {
                rc = qdq_fail(err, QDQ_EINVAL, "id must be a string of at most %zu bytes",
                              sizeof out->id - 1);
                goto out;
            }
            if ((rc = proto_jr_string(&r, "id", out->id, sizeof out->id - 1, &n, NULL, NULL)))
                goto out;
            if (n >= sizeof out->id || memchr(out->id, '\0', n)) {
                rc = qdq_fail(err, QDQ_EINVAL, "id must be a string of at most %zu bytes",
                              sizeof out->id - 1);
                goto out;
            }
            out->id[n] = '\0';
            out->has_id = true;
            break;
        }
        case T_PARAMETERS:
            if ((rc = read_parameters(&r, out, &bin_all)))
                goto out;
            break;
        case T_OUTPUTS:
            if ((rc = read_outputs(&r, out, bin)))
                goto out;
            break;
        case T_INPUTS: {
            bool e1;
            if (proto_jr_peek(&r) != '[') {
                rc = qdq_fail(err, QDQ_EINVAL, "missing inputs (an array with the input "
                              "\"input\")");
                goto out;
            }
            if ((rc = proto_jr_open(&r, "inputs", '[', 2, &e1)))
                goto out;
            for (int d1 = e1; !d1;) {
                proto_jr_ws(&r);
                in_entry e;
                memset(&e, 0, sizeof e);
                if ((rc = read_input(&r, header_len, &e, seen, out, &boff, bufs)))
                    goto out;
                ins[nin++] = e;
                if (e.data_end)
                    data_bytes += (size_t)(e.data_end - e.data);
                if ((rc = proto_jr_next(&r, "inputs", ']', &d1)))
                    goto out;
            }
            break;
        }
        default:
            if ((rc = proto_jr_skip(&r, key, 2)))
                goto out;
        }
        if ((rc = proto_jr_next(&r, "the inference request", '}', &done)))
            goto out;
        /* Outside its data arrays the request is names, shapes and a few parameters. */
        size_t envelope = proto_jr_off(&r) - data_bytes;
        if (envelope > ENVELOPE_MAX)
            break;
    }
    proto_jr_ws(&r);
    size_t envelope = proto_jr_off(&r) - data_bytes;
    if (envelope > ENVELOPE_MAX) {
        rc = qdq_fail(err, PROTO_ETOOBIG, "the inference request's JSON outside its data arrays "
                      "is %zu bytes or more, over the limit of %d", envelope, ENVELOPE_MAX);
        goto out;
    }
    if (r.p < r.end) {
        rc = qdq_fail(err, QDQ_EINVAL, "invalid JSON: unexpected data after the inference "
                      "request at byte %zu", proto_jr_off(&r));
        goto out;
    }
    if (nin == 0) {
        rc = qdq_fail(err, QDQ_EINVAL, "missing inputs (an array with the input \"input\")");
        goto out;
    }
    if (!seen[0]) {
        rc = qdq_fail(err, QDQ_EINVAL, "missing input 'input'");
        goto out;
    }
    /* Outputs: none named means all; binary as each asks, else as binary_data_output says. */
    proto_v2_outputs_default(out);
    for (int k = 0; k < PROTO_V2_NOUTPUTS; k++)
        if ((out->outputs & 1u << k) && (bin[k] < 0 ? bin_all : bin[k]))
            out->binary_outputs |= 1u << k;
    qdq_dtype dt = QDQ_FLOAT32;
    for (int i = 0; i < nin; i++)
        if (ins[i].k == 0)
            dt = ins[i].dt;
    out->req.dtype = dt;
    for (int i = 0; i < nin; i++)
        if (ins[i].dt != dt) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': datatype %s differs from input's %s",
                          in_names[ins[i].k], proto_dtype_kserve(ins[i].dt),
                          proto_dtype_kserve(dt));
            goto out;
        }
    /* Binary data, in the order of "inputs": "input" stays where it is when the body is the
     * caller's writable buffer (the op runs in place there); the rest is copied. */
    size_t es = qdq_dtype_size(dt);
    for (int i = 0; i < nin; i++) {
        in_entry *e = &ins[i];
        if (!e->binary)
            continue;
        size_t n = e->count * es;
        if (e->boff > len || n > len - e->boff) {
            rc = qdq_fail(err, QDQ_EINVAL, "inputs '%s': binary_data_size %zu runs past the body "
                          "(%zu bytes left after the header and earlier inputs)",
                          in_names[e->k], n, e->boff > len ? 0 : len - e->boff);
            goto out;
        }
        if (e->k == 0 && writable) {
            /* Typed access needs alignment: slide the bytes down onto the item size. What
             * lies below (the JSON, read already, or earlier inputs, copied already) is no
             * longer needed; writable itself is aligned, so this stays inside it. */
            size_t skew = (uintptr_t)(writable + e->boff) % es;
            char *dst = writable + e->boff - skew;
            if (skew)
                memmove(dst, writable + e->boff, n);
            out->req.data = dst;
            out->req.data_borrowed = true;
        } else {
            bufs[e->k] = malloc(n ? n : 1);
            if (!bufs[e->k]) {
                rc = qdq_fail(err, PROTO_ENOMEM, "out of memory for inputs '%s'",
                              in_names[e->k]);
                goto out;
            }
            memcpy(bufs[e->k], body + e->boff, n);
        }
        if (e->k == 0)
            out->req.form = PROTO_FORM_RAW;
    }
    if (boff != len) {
        rc = qdq_fail(err, QDQ_EINVAL, "the body has %zu bytes after the header but the inputs' "
                      "binary_data_size add up to %zu", len - jlen,
                      boff == SIZE_MAX ? SIZE_MAX : boff - jlen);
        goto out;
    }
    for (int i = 0; i < nin; i++) {
        in_entry *e = &ins[i];
        if (e->k == 0) {
            if (!out->req.data_borrowed)
                out->req.data = bufs[0];
            out->req.rank = e->rank;
            out->req.count = e->count;
            memcpy(out->req.dims, e->dims, (size_t)e->rank * sizeof e->dims[0]);
        } else if (e->k == 1) {
            out->req.min = bufs[1], out->req.n_min = e->count;
        } else {
            out->req.max = bufs[2], out->req.n_max = e->count;
        }
        bufs[e->k] = NULL;
    }
    if (out->req.attrs.range_given && (!out->req.min || !out->req.max))
        rc = qdq_fail(err, QDQ_EINVAL, "range_given is true but input %s is missing",
                      out->req.min ? "input_max" : "input_min");
out:
    for (int i = 0; i < 3; i++)
        free(bufs[i]);
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

const char *proto_v2_output_name(int k)
{
    return k >= 0 && k < PROTO_V2_NOUTPUTS ? out_names[k] : "";
}

double proto_v2_stat_value(const proto_request *q, int k)
{
    if (!q->stats || k < 7 || k >= PROTO_V2_NOUTPUTS)
        return NAN;
    qdq_stats_summary s;
    qdq_stats_summarize(q->stats, &s);
    double v[4] = { s.max_abs_error, s.rmse, s.sqnr_null ? NAN : s.sqnr_db,
                    (double)s.nonfinite };
    return v[k - 7];
}

/* The statistics outputs' values, in their order. */
static void stats_values(const proto_request *q, double v[4])
{
    for (int i = 0; i < 4; i++)
        v[i] = proto_v2_stat_value(q, 7 + i);
}

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
    double stat[4];
    stats_values(q, stat);
    for (int k = 0; k < PROTO_V2_NOUTPUTS && !rc; k++) {
        if (!(r->outputs & (1u << k)))
            continue;
        bool bin = r->binary_outputs & (1u << k);
        const char *dtn = k == 0 ? proto_dtype_kserve(q->dtype) : dbl || k >= 7 ? "FP64" : "FP32";
        snprintf(num, sizeof num, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[",
                 first ? "" : ",", out_names[k], dtn);
        rc = put(buf, num);
        first = false;
        uint64_t n = k == 0 ? q->count : k >= 7 ? 1 : C;
        if (k == 0) {
            for (int d = 0; d < q->rank && !rc; d++)
                rc = put(buf, (snprintf(num, sizeof num, "%s%lld", d ? "," : "",
                                        (long long)q->dims[d]), num));
        } else {
            rc = put(buf, (snprintf(num, sizeof num, "%llu",
                                    (unsigned long long)(plan->attrs.axis < 0 || k >= 7 ? 1
                                                                                   : C)), num));
        }
        rc = rc || put(buf, "]");
        size_t es = k == 0 ? qdq_dtype_size(q->dtype) : dbl || k >= 7 ? 8 : 4;
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
        if (k >= 7) {
            rc = rc || proto_buf_append(buf, num, proto_num_format_f64(stat[k - 7], num));
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
    for (int k = 0; k < PROTO_V2_NOUTPUTS && !rc; k++) {
        if (!(r->outputs & r->binary_outputs & (1u << k)))
            continue;
        if (k == 0) {
            if (!skip_output)
                rc = proto_buf_append(buf, out, q->count * qdq_dtype_size(q->dtype));
            continue;
        }
        if (k >= 7) {
            rc = proto_buf_append(buf, &stat[k - 7], 8);
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
