/*
 * KServe v2 codec (proto/kserve.c): requests written the way tritonclient.http (json.dumps,
 * binary tensors after the JSON) and KServe's client (orjson, compact) write them, decoded,
 * run through the op, encoded, and the response parsed back (cJSON) and compared bit for bit
 * with a local qdq_run; the binary framing of the response (header length, sizes, order,
 * little-endian bytes); decode_inplace and encode_split; and a table of malformed requests with
 * their status and pieces of their message.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "kserve.h"
#include "qdq_half.h"
#include "testutil.h"

static const proto_limits lim = { 1u << 20, 8, 32, 1u << 26 };

static const char *const out_names[7] = { "output",     "input_min", "input_max", "output_min",
                                          "output_max", "scale",     "inverse_scale" };

/* ---- a growing string ---- */

typedef struct sb {
    char *s;
    size_t n, cap;
} sb;

__attribute__((format(printf, 2, 3)))
static void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

static void sb_free(sb *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- the reference: a tensor, attributes, bounds, and the op run locally ---- */

typedef struct ref {
    qdq_dtype dt;
    int rank;
    int64_t dims[8];
    uint64_t count;
    void *in;
    qdq_attrs attrs;
    void *min, *max;
    size_t n_min, n_max;
    qdq_plan plan;
    void *out, *acc, *params;
} ref;

static void ref_init(ref *x, qdq_dtype dt, int rank, const int64_t *dims)
{
    static const qdq_attrs def = QDQ_ATTRS_DEFAULT;
    memset(x, 0, sizeof *x);
    x->dt = dt;
    x->rank = rank;
    x->count = 1;
    for (int i = 0; i < rank; i++) {
        x->dims[i] = dims[i];
        x->count *= (uint64_t)dims[i];
    }
    x->attrs = def;
    x->in = calloc(x->count + 1, 8);
}

/* Element i: v rounded once to the dtype. */
static void ref_set(ref *x, size_t i, double v) { tu_store(x->dt, x->in, i, v); }

/* A deterministic mix of values: negatives, fractions, ties, zeros. */
static void ref_fill(ref *x, uint32_t seed)
{
    for (uint64_t i = 0; i < x->count; i++) {
        seed = seed * 1664525u + 1013904223u;
        double v = ((int)(seed >> 8) % 20001 - 10000) / 1237.0;
        if (i % 7 == 3)
            v = (double)((int)(seed >> 20) % 9 - 4) * 0.5; /* ties */
        ref_set(x, (size_t)i, v);
    }
}

static void ref_bounds(ref *x, size_t n, const double *lo, const double *hi)
{
    x->min = calloc(n, 8);
    x->max = calloc(n, 8);
    x->n_min = x->n_max = n;
    for (size_t i = 0; i < n; i++) {
        tu_store(x->dt, x->min, i, lo[i]);
        tu_store(x->dt, x->max, i, hi[i]);
    }
}

static int ref_run(ref *x)
{
    qdq_error e;
    int rc = qdq_plan_init(&x->plan, x->dt, x->dims, x->rank, &x->attrs, &e);
    CHECK(rc == 0, "reference plan: %s", e.msg);
    if (rc)
        return rc;
    x->acc = malloc(qdq_acc_size(&x->plan));
    x->params = malloc(qdq_params_size(&x->plan));
    x->out = calloc(x->count + 1, 8);
    rc = qdq_run(&x->plan, x->in, x->out, x->min, x->n_min, x->max, x->n_max, x->acc, x->params,
                 &e);
    CHECK(rc == 0, "reference run: %s", e.msg);
    return rc;
}

static void ref_free(ref *x)
{
    free(x->in), free(x->min), free(x->max), free(x->out), free(x->acc), free(x->params);
    memset(x, 0, sizeof *x);
}

static size_t isz(qdq_dtype dt) { return qdq_dtype_size(dt); }

/* ---- request text, written as the clients write it ---- */

/* Python's repr of the double a float widens to (what json.dumps writes for val.item()). */
static void put_num(sb *b, double v) { sb_printf(b, "%.17g", v); }

/* "data" of n values of a (dtype dt) from element `from`; nested by dims when nested. */
static void put_data(sb *b, qdq_dtype dt, const void *a, int rank, const int64_t *dims,
                     bool nested, const char *sep)
{
    uint64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (uint64_t)dims[i];
    if (!nested || rank <= 1) {
        sb_printf(b, "[");
        for (uint64_t i = 0; i < n; i++) {
            if (i)
                sb_printf(b, "%s", sep);
            put_num(b, tu_load(dt, a, (size_t)i));
        }
        sb_printf(b, "]");
        return;
    }
    uint64_t inner = n / (uint64_t)dims[0];
    sb_printf(b, "[");
    for (int64_t i = 0; i < dims[0]; i++) {
        if (i)
            sb_printf(b, "%s", sep);
        put_data(b, dt, (const char *)a + (size_t)(i * (int64_t)inner) * isz(dt), rank - 1,
                 dims + 1, true, sep);
    }
    sb_printf(b, "]");
}

static void put_shape(sb *b, int rank, const int64_t *dims, const char *sep)
{
    sb_printf(b, "[");
    for (int i = 0; i < rank; i++)
        sb_printf(b, "%s%lld", i ? sep : "", (long long)dims[i]);
    sb_printf(b, "]");
}

/* tritonclient.http InferInput._get_tensor through json.dumps: name, shape, datatype, then
 * parameters (binary) or data. A binary tensor's bytes are appended to bin. */
static void triton_input(sb *b, sb *bin, const char *name, qdq_dtype dt, int rank,
                         const int64_t *dims, const void *a, bool binary, bool nested)
{
    uint64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (uint64_t)dims[i];
    sb_printf(b, "{\"name\": \"%s\", \"shape\": ", name);
    put_shape(b, rank, dims, ", ");
    sb_printf(b, ", \"datatype\": \"%s\"", proto_dtype_kserve(dt));
    if (binary) {
        size_t nb = (size_t)n * isz(dt);
        sb_printf(b, ", \"parameters\": {\"binary_data_size\": %zu}}", nb);
        if (bin->n + nb + 1 > bin->cap) {
            bin->cap = (bin->n + nb + 1) * 2;
            bin->s = realloc(bin->s, bin->cap);
        }
        memcpy(bin->s + bin->n, a, nb);
        bin->n += nb;
        return;
    }
    sb_printf(b, ", \"data\": ");
    put_data(b, dt, a, rank, dims, nested, ", ");
    sb_printf(b, "}");
}

/* ---- decode, run, encode, check ---- */

/* body = json + bin; header_len = json length when framed. The body is an exact-size copy. */
static int decode_body(const sb *json, const sb *bin, bool framed, proto_v2_request *r,
                       qdq_error *e)
{
    size_t nb = bin ? bin->n : 0, n = json->n + nb;
    char *body = malloc(n ? n : 1);
    memcpy(body, json->s, json->n);
    if (nb)
        memcpy(body + json->n, bin->s, nb);
    memset(e, 0, sizeof *e);
    int rc = proto_v2_decode(body, n, framed ? json->n : SIZE_MAX, &lim, r, e);
    free(body);
    return rc;
}

static bool same_array(qdq_dtype dt, const void *a, const void *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (!tu_same(dt, a, b, (size_t)i))
            return false;
    return true;
}

/* The decoded request against the reference. */
static void check_request(const char *label, const proto_v2_request *r, const ref *x,
                          unsigned outs, unsigned bin, const char *id)
{
    const proto_request *q = &r->req;
    bool shape = q->dtype == x->dt && q->rank == x->rank && q->count == x->count;
    for (int i = 0; shape && i < x->rank; i++)
        shape = q->dims[i] == x->dims[i];
    CHECK(shape, "%s: dtype %d rank %d count %llu", label, (int)q->dtype, q->rank,
          (unsigned long long)q->count);
    CHECK(shape && q->data && same_array(x->dt, q->data, x->in, x->count), "%s: input values",
          label);
    CHECK(!memcmp(&q->attrs, &x->attrs, sizeof q->attrs) ||
              (q->attrs.num_bits == x->attrs.num_bits &&
               q->attrs.signed_input == x->attrs.signed_input &&
               q->attrs.range_given == x->attrs.range_given &&
               q->attrs.round_mode == x->attrs.round_mode &&
               q->attrs.narrow_range == x->attrs.narrow_range && q->attrs.axis == x->attrs.axis),
          "%s: attributes", label);
    CHECK(q->n_min == x->n_min && q->n_max == x->n_max && (!x->min) == (!q->min) &&
              (!x->max) == (!q->max),
          "%s: bounds %zu/%zu, want %zu/%zu", label, q->n_min, q->n_max, x->n_min, x->n_max);
    if (x->min && q->min && q->n_min == x->n_min)
        CHECK(same_array(x->dt, q->min, x->min, x->n_min), "%s: input_min values", label);
    if (x->max && q->max && q->n_max == x->n_max)
        CHECK(same_array(x->dt, q->max, x->max, x->n_max), "%s: input_max values", label);
    CHECK(r->outputs == outs, "%s: outputs 0x%x, want 0x%x", label, r->outputs, outs);
    CHECK(r->binary_outputs == bin, "%s: binary outputs 0x%x, want 0x%x", label,
          r->binary_outputs, bin);
    CHECK(r->has_id == (id != NULL) && (!id || !strcmp(r->id, id)), "%s: id '%s'", label, r->id);
}

/* Output k of the reference as an array of its datatype (n elements). */
static void *expected_output(const ref *x, int k, qdq_dtype *dt, uint64_t *n)
{
    if (k == 0) {
        *dt = x->dt;
        *n = x->count;
        return x->out;
    }
    bool dbl = x->dt == QDQ_FLOAT64;
    *dt = dbl ? QDQ_FLOAT64 : QDQ_FLOAT32;
    *n = x->plan.channels;
    char *a = calloc(*n + 1, 8);
    for (uint64_t c = 0; c < *n; c++) {
        qdq_range rg;
        qdq_params_get(&x->plan, x->params, c, &rg);
        double v[6] = { rg.input_min, rg.input_max, rg.output_min, rg.output_max, rg.scale,
                        rg.inverse_scale };
        if (dbl)
            ((double *)a)[c] = v[k - 1];
        else
            ((float *)a)[c] = (float)v[k - 1];
    }
    return a;
}

/*
 * A response against the reference: model name and version, id, the outputs in canonical
 * order with datatype and shape, JSON data equal bit for bit, binary framing (header length,
 * binary_data_size, the bytes in order, nothing after).
 */
static void check_response(const char *label, const char *body, size_t len, size_t hlen,
                           const ref *x, unsigned outs, unsigned bin, const char *id)
{
    if (bin) {
        CHECK(hlen != SIZE_MAX && hlen < len, "%s: binary response header length %zu of %zu",
              label, hlen, len);
        if (hlen == SIZE_MAX || hlen > len)
            return;
    } else {
        CHECK(hlen == SIZE_MAX, "%s: JSON-only response has header length %zu", label, hlen);
    }
    size_t jl = bin ? hlen : len;
    cJSON *root = cJSON_ParseWithLength(body, jl);
    CHECK(root != NULL, "%s: response JSON does not parse: %.*s", label, (int)(jl < 300 ? jl : 300),
          body);
    if (!root)
        return;
    const char *mn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "model_name"));
    const char *mv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "model_version"));
    CHECK(mn && !strcmp(mn, "quantize_and_dequantize_v2"), "%s: model_name", label);
    CHECK(mv && !strcmp(mv, "1"), "%s: model_version", label);
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id)
        CHECK(cJSON_IsString(jid) && !strcmp(jid->valuestring, id), "%s: id echo", label);
    else
        CHECK(!jid, "%s: an id that was not sent", label);
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    int want = __builtin_popcount(outs);
    CHECK(cJSON_IsArray(os) && cJSON_GetArraySize(os) == want, "%s: %d outputs, want %d", label,
          cJSON_GetArraySize(os), want);
    size_t boff = jl;
    int idx = 0;
    for (int k = 0; k < 7 && cJSON_IsArray(os); k++) {
        if (!(outs & 1u << k))
            continue;
        const cJSON *o = cJSON_GetArrayItem(os, idx++);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
        CHECK(name && !strcmp(name, out_names[k]), "%s: output %d is '%s', want %s", label,
              idx - 1, name ? name : "(none)", out_names[k]);
        qdq_dtype dt;
        uint64_t n;
        void *exp = expected_output(x, k, &dt, &n);
        const char *dtn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "datatype"));
        CHECK(dtn && !strcmp(dtn, proto_dtype_kserve(dt)), "%s: %s datatype %s, want %s", label,
              out_names[k], dtn ? dtn : "(none)", proto_dtype_kserve(dt));
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shape");
        bool shape_ok = cJSON_IsArray(sh);
        if (k == 0) {
            shape_ok = shape_ok && cJSON_GetArraySize(sh) == x->rank;
            for (int i = 0; shape_ok && i < x->rank; i++)
                shape_ok = cJSON_GetArrayItem(sh, i)->valuedouble == (double)x->dims[i];
        } else { /* [1] for axis -1, [C] per channel */
            shape_ok = shape_ok && cJSON_GetArraySize(sh) == 1 &&
                       cJSON_GetArrayItem(sh, 0)->valuedouble == (double)n;
        }
        CHECK(shape_ok, "%s: %s shape", label, out_names[k]);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
        const cJSON *bds = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(o, "parameters"), "binary_data_size");
        size_t nb = (size_t)n * isz(dt);
        if (bin & 1u << k) {
            CHECK(!data && cJSON_IsNumber(bds) && bds->valuedouble == (double)nb,
                  "%s: %s binary_data_size, want %zu", label, out_names[k], nb);
            CHECK(boff + nb <= len && !memcmp(body + boff, exp, nb),
                  "%s: %s binary bytes at %zu", label, out_names[k], boff);
            boff += nb;
        } else {
            CHECK(!bds && cJSON_IsArray(data) && cJSON_GetArraySize(data) == (int)n,
                  "%s: %s data of %llu numbers", label, out_names[k], (unsigned long long)n);
            bool same = cJSON_IsArray(data);
            char got[8];
            for (uint64_t i = 0; same && i < n; i++) {
                const cJSON *v = cJSON_GetArrayItem(data, (int)i);
                same = cJSON_IsNumber(v);
                if (same) {
                    tu_store(dt, got, 0, v->valuedouble);
                    same = tu_same(dt, got, (const char *)exp + i * isz(dt), 0);
                }
                if (!same)
                    CHECK(0, "%s: %s data[%llu] = %.17g, want %.17g", label, out_names[k],
                          (unsigned long long)i, v ? v->valuedouble : NAN,
                          tu_load(dt, exp, (size_t)i));
            }
            if (same)
                CHECK(1, "%s", label);
        }
        if (k)
            free(exp);
    }
    if (bin)
        CHECK(boff == len, "%s: binary part ends at %zu, the body at %zu", label, boff, len);
    cJSON_Delete(root);
}

/* decode -> qdq_run on the decoded request -> encode -> check against the reference. */
static void roundtrip(const char *label, const sb *json, const sb *bin, bool framed, ref *x,
                      unsigned outs, unsigned binout, const char *id)
{
    proto_v2_request r;
    qdq_error e;
    int rc = decode_body(json, bin, framed, &r, &e);
    CHECK(rc == 0, "%s: decode: %s", label, e.msg);
    if (rc)
        return;
    check_request(label, &r, x, outs, binout, id);
    if (ref_run(x)) {
        proto_v2_request_clear(&r);
        return;
    }
    const proto_request *q = &r.req;
    qdq_plan plan;
    rc = qdq_plan_init(&plan, q->dtype, q->dims, q->rank, &q->attrs, &e);
    CHECK(rc == 0, "%s: plan: %s", label, e.msg);
    if (rc) {
        proto_v2_request_clear(&r);
        return;
    }
    void *acc = malloc(qdq_acc_size(&plan)), *params = malloc(qdq_params_size(&plan));
    void *out = malloc((size_t)q->count * isz(q->dtype) + 1);
    rc = qdq_run(&plan, q->data, out, q->min, q->n_min, q->max, q->n_max, acc, params, &e);
    CHECK(rc == 0, "%s: run: %s", label, e.msg);
    proto_buf b = { 0 };
    size_t hlen = 0;
    if (!rc) {
        rc = proto_v2_encode(&r, &plan, params, out, &b, &hlen, &e);
        CHECK(rc == 0, "%s: encode: %s", label, e.msg);
    }
    if (!rc)
        check_response(label, b.data, b.len, hlen, x, outs, binout, id);

    /* encode_split: the same bytes with the output's binary bytes cut out at *split. */
    proto_buf s = { 0 };
    size_t hl2 = 0, split = 0;
    if (!rc && !proto_v2_encode_split(&r, &plan, params, out, &s, &hl2, &split, &e)) {
        size_t ob = (size_t)q->count * isz(q->dtype);
        if (binout & PROTO_V2_OUT_OUTPUT)
            CHECK(split == hl2 && hl2 == hlen && s.len + ob == b.len &&
                      !memcmp(s.data, b.data, split) && !memcmp(b.data + split, out, ob) &&
                      !memcmp(s.data + split, b.data + split + ob, s.len - split),
                  "%s: encode_split around the output", label);
        else
            CHECK(split == SIZE_MAX && hl2 == hlen && s.len == b.len &&
                      !memcmp(s.data, b.data, b.len),
                  "%s: encode_split without a binary output", label);
    } else if (!rc) {
        CHECK(0, "%s: encode_split: %s", label, e.msg);
    }
    proto_buf_free(&s);
    proto_buf_free(&b);
    free(acc), free(params), free(out);
    proto_v2_request_clear(&r);
}

/* ---- the well-formed requests ---- */

static const unsigned ALL = PROTO_V2_OUT_ALL;

/* Triton, JSON only: flat data, outputs listed with binary_data false, an id. */
static void test_triton_json(void)
{
    static const int64_t dims[2] = { 2, 3 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 2, dims);
    static const double v[6] = { -1.0, -0.5, 0.0, 0.3, 0.75, 1.0 };
    for (int i = 0; i < 6; i++)
        ref_set(&x, (size_t)i, v[i]);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"id\": \"42\", \"inputs\": [");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 2, dims, x.in, false, false);
    sb_printf(&j, "], \"outputs\": [{\"name\": \"output\", \"parameters\": {\"binary_data\": false}}"
                  ", {\"name\": \"scale\", \"parameters\": {\"binary_data\": false}}]}");
    roundtrip("triton json", &j, NULL, false, &x, PROTO_V2_OUT_OUTPUT | PROTO_V2_OUT_SCALE, 0,
              "42");
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* KServe's client: orjson (compact), a uuid id, model_name at the top (ignored), FP64, the op's
 * attributes in parameters, every output in JSON. */
static void test_kserve_json(void)
{
    static const int64_t dims[2] = { 3, 4 };
    ref x;
    ref_init(&x, QDQ_FLOAT64, 2, dims);
    ref_fill(&x, 7);
    x.attrs.num_bits = 5;
    x.attrs.signed_input = false;
    x.attrs.round_mode = QDQ_HALF_UP;
    x.attrs.narrow_range = true;
    sb j = { 0 };
    sb_printf(&j, "{\"id\":\"9b2c4a1e-55d0-4c4f-9d61-0c8f3e4a7b21\",\"model_name\":"
                  "\"quantize_and_dequantize_v2\",\"inputs\":[{\"name\":\"input\",\"shape\":");
    put_shape(&j, 2, dims, ",");
    sb_printf(&j, ",\"datatype\":\"FP64\",\"data\":");
    put_data(&j, QDQ_FLOAT64, x.in, 2, dims, false, ",");
    sb_printf(&j, "}],\"parameters\":{\"num_bits\":5,\"signed_input\":false,"
                  "\"round_mode\":\"HALF_UP\",\"narrow_range\":true}}");
    roundtrip("kserve json", &j, NULL, false, &x, ALL, 0, "9b2c4a1e-55d0-4c4f-9d61-0c8f3e4a7b21");
    ref_free(&x);
    sb_free(&j);
}

/* Nested data (rank 3), whitespace of all kinds, keys in another order (data before
 * datatype and shape), no id. */
static void test_nested(void)
{
    static const int64_t dims[3] = { 2, 2, 3 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 3, dims);
    ref_fill(&x, 11);
    x.attrs.num_bits = 3;
    sb j = { 0 };
    sb_printf(&j, "{\n  \"inputs\" : [ {\n    \"name\" : \"input\",\n    \"data\" : ");
    put_data(&j, QDQ_FLOAT32, x.in, 3, dims, true, " ,\n\t");
    sb_printf(&j, ",\r\n    \"datatype\" : \"FP32\", \"shape\" : ");
    put_shape(&j, 3, dims, " , ");
    sb_printf(&j, " } ] ,\n  \"parameters\" : { \"num_bits\" : 3 }\n}\n");
    roundtrip("nested data", &j, NULL, false, &x, ALL, 0, NULL);
    ref_free(&x);
    sb_free(&j);

    /* A scalar (shape []) as [v], and a rank-0 request answered with shape []. */
    ref_init(&x, QDQ_FLOAT32, 0, NULL);
    ref_set(&x, 0, 2.5);
    sb_printf(&j, "{\"inputs\": [{\"name\": \"input\", \"shape\": [], \"datatype\": \"FP32\", "
                  "\"data\": [2.5]}]}");
    roundtrip("scalar", &j, NULL, false, &x, ALL, 0, NULL);
    ref_free(&x);
    sb_free(&j);
}

/* Triton, binary input, outputs in JSON (each with binary_data false). */
static void test_binary_in_json_out(void)
{
    static const int64_t dims[2] = { 4, 5 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 2, dims);
    ref_fill(&x, 3);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"id\": \"bin-in\", \"inputs\": [");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 2, dims, x.in, true, false);
    sb_printf(&j, "], \"outputs\": [");
    for (int k = 0; k < 7; k++)
        sb_printf(&j, "%s{\"name\": \"%s\", \"parameters\": {\"binary_data\": false}}",
                  k ? ", " : "", out_names[k]);
    sb_printf(&j, "]}");
    roundtrip("binary in, json out", &j, &bin, true, &x, ALL, 0, "bin-in");
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* Triton's default: binary input, no outputs list, parameters {"binary_data_output": true}:
 * every output binary. Also float64 (FP64 ranges, 8-byte binary). */
static void test_binary_in_binary_out(void)
{
    static const int64_t dims[1] = { 37 };
    for (int d = 0; d < 2; d++) {
        qdq_dtype dt = d ? QDQ_FLOAT64 : QDQ_FLOAT32;
        ref x;
        ref_init(&x, dt, 1, dims);
        ref_fill(&x, 5 + (uint32_t)d);
        sb j = { 0 }, bin = { 0 };
        sb_printf(&j, "{\"inputs\": [");
        triton_input(&j, &bin, "input", dt, 1, dims, x.in, true, false);
        sb_printf(&j, "], \"parameters\": {\"binary_data_output\": true}}");
        roundtrip(d ? "binary in, binary out FP64" : "binary in, binary out FP32", &j, &bin, true,
                  &x, ALL, ALL, NULL);
        ref_free(&x);
        sb_free(&j), sb_free(&bin);
    }
}

/* binary_data_output true with an outputs list: each output's own binary_data wins. */
static void test_binary_data_output(void)
{
    static const int64_t dims[2] = { 3, 3 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 2, dims);
    ref_fill(&x, 17);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"inputs\": [");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 2, dims, x.in, false, false);
    sb_printf(&j, "], \"outputs\": [{\"name\": \"inverse_scale\"}, {\"name\": \"output\"}, "
                  "{\"name\": \"input_max\", \"parameters\": {\"binary_data\": false}}], "
                  "\"parameters\": {\"binary_data_output\": true}}");
    unsigned outs = PROTO_V2_OUT_OUTPUT | PROTO_V2_OUT_INPUT_MAX | PROTO_V2_OUT_INVERSE_SCALE;
    roundtrip("binary_data_output with overrides", &j, NULL, false, &x, outs,
              PROTO_V2_OUT_OUTPUT | PROTO_V2_OUT_INVERSE_SCALE, NULL);
    sb_free(&j);

    /* Only some outputs binary, chosen per output; the JSON and binary ones interleave. */
    sb_printf(&j, "{\"inputs\": [");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 2, dims, x.in, false, false);
    sb_printf(&j, "], \"outputs\": [{\"name\": \"output\", \"parameters\": {\"binary_data\": "
                  "false}}, {\"name\": \"scale\", \"parameters\": {\"binary_data\": true}}, "
                  "{\"name\": \"input_min\", \"parameters\": {\"binary_data\": true}}]}");
    ref_free(&x);
    ref_init(&x, QDQ_FLOAT32, 2, dims);
    ref_fill(&x, 17);
    roundtrip("per-output binary_data", &j, NULL, false, &x,
              PROTO_V2_OUT_OUTPUT | PROTO_V2_OUT_SCALE | PROTO_V2_OUT_INPUT_MIN,
              PROTO_V2_OUT_SCALE | PROTO_V2_OUT_INPUT_MIN, NULL);
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* FP16 and BF16 as binary (tritonclient: float16 bytes; bf16 from float32 by dropping the low
 * 16 bits), every output binary; and both as JSON numbers (rounded once to the dtype). */
static void test_half_types(void)
{
    static const int64_t dims[2] = { 2, 8 };
    for (int d = 0; d < 2; d++) {
        qdq_dtype dt = d ? QDQ_BFLOAT16 : QDQ_FLOAT16;
        ref x;
        ref_init(&x, dt, 2, dims);
        for (size_t i = 0; i < 16; i++) {
            float f = (float)((int)(i * 37 % 23) - 11) / 3.0f;
            if (dt == QDQ_BFLOAT16) { /* serialize_bf16_tensor: the top half of the float32 */
                uint16_t h = (uint16_t)(qdq_f32_bits(f) >> 16);
                memcpy((char *)x.in + 2 * i, &h, 2);
            } else {
                uint16_t h = qdq_f32_to_f16(f);
                memcpy((char *)x.in + 2 * i, &h, 2);
            }
        }
        x.attrs.num_bits = 4;
        sb j = { 0 }, bin = { 0 };
        sb_printf(&j, "{\"inputs\": [");
        triton_input(&j, &bin, "input", dt, 2, dims, x.in, true, false);
        sb_printf(&j, "], \"parameters\": {\"num_bits\": 4, \"binary_data_output\": true}}");
        roundtrip(d ? "BF16 binary" : "FP16 binary", &j, &bin, true, &x, ALL, ALL, NULL);
        sb_free(&j), sb_free(&bin);

        /* JSON: the values as numbers; the response prints output data as numbers too. */
        ref y;
        ref_init(&y, dt, 2, dims);
        memcpy(y.in, x.in, 32);
        y.attrs.num_bits = 4;
        sb_printf(&j, "{\"inputs\": [");
        triton_input(&j, &bin, "input", dt, 2, dims, y.in, false, true);
        sb_printf(&j, "], \"parameters\": {\"num_bits\": 4}}");
        roundtrip(d ? "BF16 json" : "FP16 json", &j, NULL, false, &y, ALL, 0, NULL);
        ref_free(&y);
        sb_free(&j), sb_free(&bin);

        /* Rounded once: 0.1 is not a half; the decoder must store the nearest one. */
        proto_v2_request r;
        qdq_error e;
        sb_printf(&j, "{\"inputs\":[{\"name\":\"input\",\"shape\":[3],\"datatype\":\"%s\","
                      "\"data\":[0.1,-65504,1e-7]}]}", d ? "BF16" : "FP16");
        int rc = decode_body(&j, NULL, false, &r, &e);
        CHECK(rc == 0, "%s json numbers: %s", d ? "BF16" : "FP16", e.msg);
        if (!rc) {
            const uint16_t *h = r.req.data;
            uint16_t w0 = d ? qdq_f64_to_bf16(0.1) : qdq_f64_to_f16(0.1);
            uint16_t w1 = d ? qdq_f64_to_bf16(-65504) : qdq_f64_to_f16(-65504);
            uint16_t w2 = d ? qdq_f64_to_bf16(1e-7) : qdq_f64_to_f16(1e-7);
            CHECK(h[0] == w0 && h[1] == w1 && h[2] == w2, "%s json numbers: %04x %04x %04x",
                  d ? "BF16" : "FP16", h[0], h[1], h[2]);
        }
        proto_v2_request_clear(&r);
        sb_free(&j);
        ref_free(&x);
    }
}

/* Per-channel ranges given as tensors input_min / input_max of shape [C]: binary (Triton's
 * default) and JSON, with range_given and axis in parameters. Also a per-tensor range given as
 * shape [] and [1]. */
static void test_ranges(void)
{
    static const int64_t dims[3] = { 2, 3, 4 };
    static const double lo[3] = { -1.0, -2.5, 0.0 }, hi[3] = { 1.0, 0.5, 3.0 };
    static const int64_t cdim[1] = { 3 };
    for (int binary = 0; binary < 2; binary++) {
        ref x;
        ref_init(&x, QDQ_FLOAT32, 3, dims);
        ref_fill(&x, 23);
        x.attrs.axis = 1;
        x.attrs.range_given = true;
        ref_bounds(&x, 3, lo, hi);
        sb j = { 0 }, bin = { 0 };
        sb_printf(&j, "{\"id\": \"per-channel\", \"inputs\": [");
        triton_input(&j, &bin, "input", QDQ_FLOAT32, 3, dims, x.in, binary, false);
        sb_printf(&j, ", ");
        triton_input(&j, &bin, "input_min", QDQ_FLOAT32, 1, cdim, x.min, binary, false);
        sb_printf(&j, ", ");
        triton_input(&j, &bin, "input_max", QDQ_FLOAT32, 1, cdim, x.max, binary, false);
        sb_printf(&j, "], \"parameters\": {\"range_given\": true, \"axis\": 1, "
                      "\"binary_data_output\": %s}}", binary ? "true" : "false");
        roundtrip(binary ? "per-channel ranges, binary" : "per-channel ranges, json", &j, &bin,
                  binary, &x, ALL, binary ? ALL : 0, "per-channel");
        ref_free(&x);
        sb_free(&j), sb_free(&bin);
    }

    /* input_max before input, input_min of shape [] and input_max of shape [1]. */
    static const int64_t d1[1] = { 6 }, one[1] = { 1 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 1, d1);
    ref_fill(&x, 29);
    x.attrs.range_given = true;
    static const double l1[1] = { -0.75 }, h1[1] = { 0.5 };
    ref_bounds(&x, 1, l1, h1);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"inputs\": [");
    triton_input(&j, &bin, "input_max", QDQ_FLOAT32, 1, one, x.max, false, false);
    sb_printf(&j, ", ");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 1, d1, x.in, true, false);
    sb_printf(&j, ", ");
    triton_input(&j, &bin, "input_min", QDQ_FLOAT32, 0, NULL, x.min, false, false);
    sb_printf(&j, "], \"parameters\": {\"range_given\": true}}");
    roundtrip("per-tensor range, [] and [1]", &j, &bin, true, &x, ALL, 0, NULL);
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* outputs selection: requested out of order, answered in the model's order; the id escaped. */
static void test_outputs_and_id(void)
{
    static const int64_t dims[1] = { 10 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 1, dims);
    ref_fill(&x, 31);
    sb j = { 0 };
    sb_printf(&j, "{\"id\": \"q \\\"7\\\" \\\\ tab\\t \\u00e9\\ud83d\\ude00\", "
                  "\"inputs\": [");
    sb bin = { 0 };
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 1, dims, x.in, false, false);
    sb_printf(&j, "], \"outputs\": [{\"name\": \"scale\"}, {\"name\": \"output_max\"}]}");
    roundtrip("outputs selection and id", &j, NULL, false, &x,
              PROTO_V2_OUT_SCALE | PROTO_V2_OUT_OUTPUT_MAX, 0,
              "q \"7\" \\ tab\t \xc3\xa9\xf0\x9f\x98\x80");
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* An empty tensor decodes (shape [0], binary size 0 or data []). */
static void test_empty(void)
{
    static const char *const bodies[2] = {
        "{\"inputs\":[{\"name\":\"input\",\"shape\":[0],\"datatype\":\"FP32\",\"data\":[]}]}",
        "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,0],\"datatype\":\"FP32\","
        "\"parameters\":{\"binary_data_size\":0}}]}",
    };
    for (int i = 0; i < 2; i++) {
        proto_v2_request r;
        qdq_error e;
        sb j = { 0 };
        sb_printf(&j, "%s", bodies[i]);
        int rc = decode_body(&j, NULL, i == 1, &r, &e);
        CHECK(rc == 0 && r.req.count == 0 && r.req.rank == i + 1 && r.req.data,
              "empty tensor %d: %s", i, e.msg);
        proto_v2_request_clear(&r);
        sb_free(&j);
    }
}

/* decode_inplace: the binary input is used where it lies in the caller's buffer. */
static void test_inplace(void)
{
    static const int64_t dims[1] = { 16 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 1, dims);
    ref_fill(&x, 37);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"inputs\": [");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 1, dims, x.in, true, false);
    sb_printf(&j, "]}");
    while (j.n % 16) /* the server aligns the binary part; trailing spaces do it here */
        sb_printf(&j, " ");
    size_t n = j.n + bin.n;
    char *body = aligned_alloc(64, (n + 63) / 64 * 64);
    memcpy(body, j.s, j.n);
    memcpy(body + j.n, bin.s, bin.n);
    proto_v2_request r;
    qdq_error e;
    int rc = proto_v2_decode_inplace(body, n, j.n, &lim, &r, &e);
    CHECK(rc == 0, "inplace: %s", e.msg);
    CHECK(!rc && r.req.data == body + j.n && r.req.data_borrowed && r.req.count == 16 &&
              same_array(QDQ_FLOAT32, r.req.data, x.in, 16),
          "inplace: the input points into the body");
    proto_v2_request_clear(&r); /* must not free the borrowed data */
    CHECK(body[0] == '{', "inplace: the body survives clear");
    free(body);
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* A large JSON tensor decodes without a node per element and quickly enough to notice. */
static void test_large(void)
{
    static const int64_t dims[1] = { 200000 };
    ref x;
    ref_init(&x, QDQ_FLOAT32, 1, dims);
    ref_fill(&x, 41);
    sb j = { 0 }, bin = { 0 };
    sb_printf(&j, "{\"inputs\":[");
    triton_input(&j, &bin, "input", QDQ_FLOAT32, 1, dims, x.in, false, false);
    sb_printf(&j, "],\"outputs\":[{\"name\":\"output_min\"}]}");
    proto_v2_request r;
    qdq_error e;
    int rc = decode_body(&j, NULL, false, &r, &e);
    CHECK(rc == 0 && r.req.count == 200000 && same_array(QDQ_FLOAT32, r.req.data, x.in, 200000),
          "200k-element JSON: %s", e.msg);
    proto_v2_request_clear(&r);
    ref_free(&x);
    sb_free(&j), sb_free(&bin);
}

/* ---- malformed requests ---- */

enum { HL_NONE = -1, HL_JSON = -2 };

typedef struct bad {
    const char *json;
    size_t tail;   /* zero bytes after the JSON */
    long hl;       /* HL_NONE: no header; HL_JSON: the JSON's length; else this value */
    int code;
    const char *sub1, *sub2; /* pieces of the message (sub2 may be NULL) */
} bad;

#define INPUT_DATA(shape, data) \
    "{\"name\": \"input\", \"shape\": " shape ", \"datatype\": \"FP32\", \"data\": " data "}"
#define INPUT_BIN(shape, size) \
    "{\"name\": \"input\", \"shape\": " shape ", \"datatype\": \"FP32\", \"parameters\": " \
    "{\"binary_data_size\": " size "}}"
#define REQ(inputs) "{\"inputs\": [" inputs "]}"
#define REQP(inputs, params) "{\"inputs\": [" inputs "], \"parameters\": {" params "}}"
#define GOOD INPUT_DATA("[2]", "[1, 2]")

static const bad bads[] = {
    /* framing */
    { REQ(INPUT_BIN("[2, 3]", "24")), 24, 4096, QDQ_EINVAL, "Inference-Header-Content-Length",
      "4096" },
    { REQ(INPUT_BIN("[2, 3]", "20")), 20, HL_JSON, QDQ_EINVAL, "binary_data_size", "24" },
    { REQ(INPUT_BIN("[2, 3]", "28")), 28, HL_JSON, QDQ_EINVAL, "binary_data_size", "24" },
    { REQ(INPUT_BIN("[2, 3]", "24")), 30, HL_JSON, QDQ_EINVAL, "24", "30" },
    { REQ(INPUT_BIN("[2, 3]", "24")), 20, HL_JSON, QDQ_EINVAL, "24", "20" },
    { REQ(INPUT_BIN("[2, 3]", "24") ", {\"name\": \"input_min\", \"shape\": [], \"datatype\": "
          "\"FP32\", \"parameters\": {\"binary_data_size\": 4}}"),
      24, HL_JSON, QDQ_EINVAL, "binary_data_size", NULL },
    { REQ(GOOD), 8, HL_JSON, QDQ_EINVAL, "8", NULL }, /* bytes after a JSON-only request */
    { REQ(INPUT_BIN("[2, 3]", "24")), 0, HL_NONE, QDQ_EINVAL, "binary_data_size",
      "Inference-Header-Content-Length" },
    { REQ(INPUT_BIN("[2, 3]", "24")), 24, HL_NONE, QDQ_EINVAL, "JSON", NULL }, /* no header */
    { REQ(INPUT_BIN("[2, 3]", "24")), 24, 0, QDQ_EINVAL, "JSON", NULL },
    { REQ(INPUT_BIN("[2, 3]", "24")), 24, 30, QDQ_EINVAL, "JSON", NULL }, /* cut header */
    { REQ(INPUT_BIN("[2, 3]", "-24")), 0, HL_JSON, QDQ_EINVAL, "binary_data_size", NULL },
    { REQ(INPUT_BIN("[2, 3]", "\"24\"")), 24, HL_JSON, QDQ_EINVAL, "binary_data_size", NULL },
    /* data and binary_data_size */
    { REQ("{\"name\": \"input\", \"shape\": [2], \"datatype\": \"FP32\", \"data\": [1, 2], "
          "\"parameters\": {\"binary_data_size\": 8}}"),
      8, HL_JSON, QDQ_EINVAL, "not both", NULL },
    { REQ("{\"name\": \"input\", \"shape\": [2], \"datatype\": \"FP32\"}"), 0, HL_NONE,
      QDQ_EINVAL, "missing data", NULL },
    /* datatypes */
    { REQ("{\"name\": \"input\", \"shape\": [2], \"datatype\": \"INT8\", \"data\": [1, 2]}"), 0,
      HL_NONE, QDQ_EINVAL, "INT8", "FP32, FP64, FP16, BF16" },
    { REQ("{\"name\": \"input\", \"shape\": [2], \"datatype\": \"float32\", \"data\": [1, 2]}"),
      0, HL_NONE, QDQ_EINVAL, "float32", "FP32" },
    { REQ("{\"name\": \"input\", \"shape\": [2], \"data\": [1, 2]}"), 0, HL_NONE, QDQ_EINVAL,
      "datatype", NULL },
    { REQ(GOOD ", {\"name\": \"input_min\", \"shape\": [], \"datatype\": \"FP64\", \"data\": [0]}"),
      0, HL_NONE, QDQ_EINVAL, "input_min", "FP64" },
    /* inputs */
    { "{\"outputs\": [{\"name\": \"output\"}]}", 0, HL_NONE, QDQ_EINVAL, "missing", "inputs" },
    { "{\"inputs\": []}", 0, HL_NONE, QDQ_EINVAL, "missing", "input" },
    { REQ("{\"name\": \"input_min\", \"shape\": [], \"datatype\": \"FP32\", \"data\": [0]}"), 0,
      HL_NONE, QDQ_EINVAL, "missing input 'input'", NULL },
    { REQ("{\"name\": \"x\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [0]}"), 0, HL_NONE,
      QDQ_EINVAL, "unknown input 'x'", NULL },
    { REQ(GOOD ", " GOOD), 0, HL_NONE, QDQ_EINVAL, "'input'", "twice" },
    { REQ("{\"shape\": [1], \"datatype\": \"FP32\", \"data\": [0]}"), 0, HL_NONE, QDQ_EINVAL,
      "name", NULL },
    { "{\"inputs\": {\"name\": \"input\"}}", 0, HL_NONE, QDQ_EINVAL, "inputs", NULL },
    /* shapes and counts */
    { REQ(INPUT_DATA("[2, 3]", "[1, 2, 3, 4, 5]")), 0, HL_NONE, QDQ_EINVAL, "5 elements",
      "needs 6" },
    { REQ(INPUT_DATA("[2, 3]", "[1, 2, 3, 4, 5, 6, 7]")), 0, HL_NONE, QDQ_EINVAL, "more than",
      "6" },
    { REQ(INPUT_DATA("[2, 3]", "[[1, 2], [3, 4]]")), 0, HL_NONE, QDQ_EINVAL, "4 elements",
      "needs 6" },
    { REQ(INPUT_DATA("[2, -3]", "[]")), 0, HL_NONE, QDQ_EINVAL, "shape[1]", NULL },
    { REQ(INPUT_DATA("[2.5]", "[1, 2]")), 0, HL_NONE, QDQ_EINVAL, "shape[0]", NULL },
    { REQ("{\"name\": \"input\", \"datatype\": \"FP32\", \"data\": [1]}"), 0, HL_NONE,
      QDQ_EINVAL, "shape", NULL },
    { REQ(INPUT_DATA("[1, 1, 1, 1, 1, 1, 1, 1, 1]", "[1]")), 0, HL_NONE, PROTO_ETOOBIG, "rank 9",
      "8" },
    { REQ(INPUT_BIN("[2048, 1024]", "8388608")), 0, HL_JSON, PROTO_ETOOBIG, "2097152", NULL },
    { REQ(INPUT_BIN("[4294967296, 4294967296]", "0")), 0, HL_JSON, PROTO_ETOOBIG, "shape", NULL },
    { REQ(GOOD ", {\"name\": \"input_min\", \"shape\": [2, 1], \"datatype\": \"FP32\", "
          "\"data\": [0, 0]}"),
      0, HL_NONE, QDQ_EINVAL, "input_min", "[]" },
    /* data */
    { REQ(INPUT_DATA("[1]", "5")), 0, HL_NONE, QDQ_EINVAL, "data", "array" },
    { REQ(INPUT_DATA("[2]", "[\"1\", 2]")), 0, HL_NONE, QDQ_EINVAL, "data[0]", NULL },
    { REQ(INPUT_DATA("[2]", "[1, true]")), 0, HL_NONE, QDQ_EINVAL, "data[1]", NULL },
    { REQ(INPUT_DATA("[2]", "[1, 2,]")), 0, HL_NONE, QDQ_EINVAL, "trailing comma", NULL },
    { REQ(INPUT_DATA("[2]", "[1, 2, ]")), 0, HL_NONE, QDQ_EINVAL, "trailing comma", NULL },
    { REQ(INPUT_DATA("[2]", "[1 2]")), 0, HL_NONE, QDQ_EINVAL, "data", NULL },
    { REQ(INPUT_DATA("[2]", "[1, 2")), 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
    { REQ(INPUT_DATA("[2]", "[01, 2]")), 0, HL_NONE, QDQ_EINVAL, "data[0]", NULL },
    { REQ(INPUT_DATA("[2]", "[1, 1e39]")), 0, HL_NONE, QDQ_EINVAL, "data[1]", "out of range" },
    /* a number where the data array belongs must not pick up another input's array */
    { REQ(INPUT_DATA("[1]", "0") ", {\"name\": \"input_min\", \"shape\": [1], \"datatype\": "
          "\"FP32\", \"data\": [7]}"),
      0, HL_NONE, QDQ_EINVAL, "data", "array" },
    { REQ(INPUT_DATA("[1]", "\"\\u0001span0\"") ", {\"name\": \"input_min\", \"shape\": [1], "
          "\"datatype\": \"FP32\", \"data\": [7]}"),
      0, HL_NONE, QDQ_EINVAL, "data", "array" },
    /* outputs */
    { "{\"inputs\": [" GOOD "], \"outputs\": [{\"name\": \"outputz\"}]}", 0, HL_NONE, QDQ_EINVAL,
      "unknown output 'outputz'", NULL },
    { "{\"inputs\": [" GOOD "], \"outputs\": [{\"parameters\": {}}]}", 0, HL_NONE, QDQ_EINVAL,
      "name", NULL },
    { "{\"inputs\": [" GOOD "], \"outputs\": [{\"name\": \"output\", \"parameters\": "
      "{\"binary_data\": \"yes\"}}]}",
      0, HL_NONE, QDQ_EINVAL, "binary_data", "true or false" },
    { "{\"inputs\": [" GOOD "], \"outputs\": [{\"name\": \"output\", \"parameters\": "
      "{\"classification\": 3}}]}",
      0, HL_NONE, QDQ_EINVAL, "classification", NULL },
    { "{\"inputs\": [" GOOD "], \"outputs\": {\"name\": \"output\"}}", 0, HL_NONE, QDQ_EINVAL,
      "outputs", NULL },
    /* parameters */
    { REQP(GOOD, "\"num_bit\": 8"), 0, HL_NONE, QDQ_EINVAL, "num_bit", NULL },
    { REQP(GOOD, "\"num_bits\": \"8\""), 0, HL_NONE, QDQ_EINVAL, "num_bits", "integer" },
    { REQP(GOOD, "\"num_bits\": 8.5"), 0, HL_NONE, QDQ_EINVAL, "num_bits", "integer" },
    { REQP(GOOD, "\"axis\": 1e300"), 0, HL_NONE, QDQ_EINVAL, "axis", NULL },
    { REQP(GOOD, "\"signed_input\": 1"), 0, HL_NONE, QDQ_EINVAL, "signed_input", "true or false" },
    { REQP(GOOD, "\"round_mode\": \"HALF_DOWN\""), 0, HL_NONE, QDQ_EINVAL, "round_mode",
      "HALF_UP" },
    { REQP(GOOD, "\"range_given\": true"), 0, HL_NONE, QDQ_EINVAL, "range_given", "input_min" },
    { REQP(GOOD ", {\"name\": \"input_min\", \"shape\": [], \"datatype\": \"FP32\", \"data\": [0]}",
           "\"range_given\": true"),
      0, HL_NONE, QDQ_EINVAL, "range_given", "input_max" },
    { "{\"inputs\": [" GOOD "], \"parameters\": [1]}", 0, HL_NONE, QDQ_EINVAL, "parameters",
      "object" },
    { REQ("{\"name\": \"input\", \"shape\": [2], \"datatype\": \"FP32\", \"data\": [1, 2], "
          "\"parameters\": {\"shared_memory_region\": \"r0\"}}"),
      0, HL_NONE, QDQ_EINVAL, "shared_memory_region", NULL },
    /* id */
    { "{\"id\": 7, \"inputs\": [" GOOD "]}", 0, HL_NONE, QDQ_EINVAL, "id", "string" },
    { "{\"id\": \"\xff\", \"inputs\": [" GOOD "]}", 0, HL_NONE, QDQ_EINVAL, "UTF-8", NULL },
    { "{\"id\": \"\xed\xa0\x80\", \"inputs\": [" GOOD "]}", 0, HL_NONE, QDQ_EINVAL, "UTF-8",
      NULL }, /* an encoded surrogate */
    { "{\"id\": \"\xe0\x80\xaf\", \"inputs\": [" GOOD "]}", 0, HL_NONE, QDQ_EINVAL, "UTF-8",
      NULL }, /* overlong */
    /* JSON */
    { "", 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
    { "[1]", 0, HL_NONE, QDQ_EINVAL, "JSON", "object" },
    { "{\"inputs\": [" GOOD "]", 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
    { "{\"inputs\": [" GOOD "]} x", 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
    { "{\"inputs\": [" GOOD "],}", 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
    { "{'inputs': []}", 0, HL_NONE, QDQ_EINVAL, "JSON", NULL },
};

/*
 * The envelope (the JSON without its data arrays, which count nothing) may be 64 KiB: at 65536
 * bytes the request decodes, at 65537 it is refused with its size, both with a short data array
 * and with one longer than the limit. The body is an exact-size buffer: nothing may read past
 * it.
 */
static void test_envelope_limit(void)
{
    enum { LIMIT = 65536, MARKER = 0 };
    for (int big = 0; big < 2; big++)
        for (int over = 0; over < 2; over++) {
            int n = big ? 40000 : 10;
            sb head = { 0 }, arr = { 0 }, j = { 0 };
            sb_printf(&head, "{\"inputs\": [{\"name\": \"input\", \"datatype\": \"FP32\", "
                      "\"shape\": [%d], \"data\": ", n);
            for (int i = 0; i < n; i++)
                sb_printf(&arr, "%s%d", i ? ", " : "[", i % 7);
            sb_printf(&arr, "]");
            size_t pad = LIMIT + (size_t)over - head.n - MARKER - 3; /* "}]" ... "}" */
            sb_printf(&j, "%s%s}]%*s}", head.s, arr.s, (int)pad, "");
            proto_v2_request r;
            qdq_error e;
            int rc = decode_body(&j, NULL, false, &r, &e);
            if (!over) {
                bool ok = rc == 0 && r.req.count == (uint64_t)n;
                for (int i = 0; ok && i < n; i++)
                    ok = ((const float *)r.req.data)[i] == (float)(i % 7);
                CHECK(ok, "envelope of %d bytes, %d elements: rc %d '%s'", LIMIT, n, rc, e.msg);
                if (rc == 0)
                    proto_v2_request_clear(&r);
            } else {
                char want[32];
                snprintf(want, sizeof want, "%d bytes", LIMIT + 1);
                CHECK(rc == PROTO_ETOOBIG && strstr(e.msg, want),
                      "envelope of %d bytes, %d elements: rc %d '%s'", LIMIT + 1, n, rc, e.msg);
            }
            sb_free(&head), sb_free(&arr), sb_free(&j);
        }
}

static void test_bad(void)
{
    size_t n = sizeof bads / sizeof bads[0];
    CHECK(n >= 35, "%zu malformed requests", n);
    for (size_t i = 0; i < n; i++) {
        const bad *t = &bads[i];
        size_t jl = strlen(t->json), len = jl + t->tail;
        char *body = malloc(len ? len : 1);
        memcpy(body, t->json, jl);
        memset(body + jl, 0, t->tail);
        size_t hl = t->hl == HL_NONE ? SIZE_MAX : t->hl == HL_JSON ? jl : (size_t)t->hl;
        proto_v2_request r;
        qdq_error e;
        memset(&e, 0, sizeof e);
        int rc = proto_v2_decode(body, len, hl, &lim, &r, &e);
        CHECK(rc == t->code && e.code == rc && strstr(e.msg, t->sub1) &&
                  (!t->sub2 || strstr(e.msg, t->sub2)),
              "malformed #%zu (%.80s): rc %d, want %d, '%s' (want '%s'%s%s)", i, t->json, rc,
              t->code, e.msg, t->sub1, t->sub2 ? " and '" : "", t->sub2 ? t->sub2 : "");
        /* A failed decode leaves the request empty. */
        CHECK(rc == 0 || (r.req.data == NULL && r.req.min == NULL && r.req.max == NULL),
              "malformed #%zu: request not cleared", i);
        if (rc == 0)
            proto_v2_request_clear(&r);
        free(body);
    }
}

int main(void)
{
    test_triton_json();
    test_kserve_json();
    test_nested();
    test_binary_in_json_out();
    test_binary_in_binary_out();
    test_binary_data_output();
    test_half_types();
    test_ranges();
    test_outputs_and_id();
    test_empty();
    test_inplace();
    test_large();
    test_envelope_limit();
    test_bad();
    return check_done();
}
