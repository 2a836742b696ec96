/*
 * KServe v2 / Open Inference Protocol (docs/api.md, "KServe v2") against a real server, bit for
 * bit.
 *
 * Requests are built the way Triton's Python client (tritonclient.http: json.dumps spacing, no
 * Content-Type, Inference-Header-Content-Length with binary inputs, "binary_data" on requested
 * outputs, "binary_data_output" when no outputs are listed) and KServe's (orjson, compact, "id"
 * and "model_name", JSON "data" or binary with Content-Type application/octet-stream) build them.
 *
 * Every case of tests/vectors/cases.json and tf_cases.json (TensorFlow's own test cases) goes
 * through each layout: JSON only; JSON in with binary out; binary in with JSON out; binary in
 * and out; binary_data_output; a mix of binary and JSON inputs and outputs; nested "data"; the
 * /versions/1/infer route. Attributes go in the request's "parameters", input_min / input_max
 * are input tensors of the input's datatype (shape [1] for axis -1, [C] per channel). The
 * output and the six range outputs must have the exact bits of the expected values (ranges are
 * FP64 for FP64 inputs, FP32 otherwise; shape [1] or [C]); every expected_error case must be a
 * 400 with {"error": ...} (containing the expected word, for cases.json).
 *
 * Then: Triton's exact request layout and binary response framing, "id" echo, "outputs"
 * selection (model order), the metadata / health / ready endpoints, gzip and deflate bodies,
 * big binary tensors against the independent reference run here (tests/lib/ref.h),
 * keep-alive, and more than 30 malformed requests (status, message, Content-Type
 * application/json, {"error": "..."}) followed by a good one.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "cases.h"
#include "check.h"
#include "http_client.h"
#include "qdq.h"
#include "qdq_half.h"
#include "rng.h"
#include "sbuf.h"
#include "server_proc.h"
#include "testutil.h"

#define MODEL "quantize_and_dequantize_v2"
#define INFER "/v2/models/" MODEL "/infer"
#define INFER_V1 "/v2/models/" MODEL "/versions/1/infer"

static sp_server srv;
static const char *const srv_args[] = { "--workers", "2", "--drain-timeout", "10", NULL };
static int srv_deaths;
static int z_answers; /* compressed answers decoded */

/* After a request got no answer: a dead server is a failure; start a new one to go on. */
static void server_check(const char *what)
{
    /* A dying server (a sanitizer report being written) may still be running for a moment. */
    for (int i = 0; i < 50 && sp_alive(&srv); i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (sp_alive(&srv))
        return;
    srv_deaths++;
    CHECK(0, "the server died at '%s' (exit status %d)", what, srv.exit_status);
    char *log = sp_log_dup(&srv);
    size_t n = log ? strlen(log) : 0;
    fprintf(stderr, "server output:\n%s\n", log ? (n > 4000 ? log + n - 4000 : log) : "");
    free(log);
    sp_release(&srv);
    hc_thread_done();
    if (srv_deaths > 1000 || sp_start(&srv, srv_args) != 0) {
        fprintf(stderr, "giving up\n");
        exit(check_done() | 1);
    }
}

/* A number as Python writes a float (shortest repr of the double; "1.0", not "1"), with the
 * non-finite tokens json.dumps writes. */
static void sb_num(sbuf *b, double v)
{
    if (isnan(v)) {
        sb_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_str(b, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char tmp[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    sb_str(b, tmp);
    if (!strpbrk(tmp, ".e"))
        sb_str(b, ".0");
}

/* A JSON string literal. */
static void sb_jstr(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_add(b, s, 1);
    }
    sb_add(b, "\"", 1);
}

/* ---- a test case: input, attributes, and what must come back ---- */

static const char *const out_names[7] = { "output",     "input_min", "input_max", "output_min",
                                          "output_max", "scale",     "inverse_scale" };
#define OUT_ALL 0x7fu

static const char *kname(qdq_dtype dt)
{
    static const char *const n[4] = { "FP32", "FP64", "FP16", "BF16" };
    return (unsigned)dt < 4 ? n[dt] : "?";
}

/* ---- requests as the clients build them ---- */

typedef enum out_mode {
    OUT_DEFAULT, /* no "outputs", no binary_data_output: everything as JSON */
    OUT_PLAIN,   /* all seven listed by name only (KServe's RequestedOutput) */
    OUT_JSON,    /* all seven listed with "binary_data": false (Triton's binary_data=False) */
    OUT_BIN,     /* all seven listed with "binary_data": true (Triton's default) */
    OUT_BDO,     /* none listed, "binary_data_output": true (Triton with outputs=None) */
    OUT_MIX,     /* binary_data_output true; output, scale inherit it, the others say false */
    OUT_EMPTY,   /* "outputs": [] with binary_data_output true: all of them, binary */
} out_mode;

typedef struct rq {
    bool triton;      /* json.dumps spacing, no Content-Type; else orjson, KServe's headers */
    bool bin_input;   /* "input" as binary data */
    bool bin_bounds;  /* input_min / input_max as binary data */
    bool nested;      /* JSON "data" of "input" nested by the shape */
    bool all_attrs;   /* all six attributes in "parameters" (else only non-default ones) */
    bool json_ctype;  /* Content-Type: application/json on a JSON request */
    bool bounds_first;/* input_min / input_max listed (and their binary data sent) before input */
    bool accept_z;    /* Accept-Encoding: gzip, deflate (httpx's default), answer decoded */
    bool chunked;     /* the body sent chunked, in 7-byte pieces (no Content-Length) */
    out_mode outs;
    const char *id;   /* "id", or NULL */
} rq;

static unsigned expect_binary(out_mode m)
{
    switch (m) {
    case OUT_BIN:
    case OUT_BDO:
    case OUT_EMPTY: return OUT_ALL;
    case OUT_MIX: return 1u << 0 | 1u << 5;
    default: return 0;
    }
}

/* One tensor of the request: JSON into j, binary bytes into bin. */
static void put_tensor(sbuf *j, sbuf *bin, const rq *o, const char *name, qdq_dtype dt,
                       const int64_t *dims, int rank, const void *vals, uint64_t n, bool binary,
                       bool nested)
{
    const char *C = o->triton ? ", " : ",", *K = o->triton ? ": " : ":";
    sb_printf(j, "{\"name\"%s\"%s\"%s\"shape\"%s[", K, name, C, K);
    for (int i = 0; i < rank; i++)
        sb_printf(j, "%s%" PRId64, i ? C : "", dims[i]);
    sb_printf(j, "]%s\"datatype\"%s\"%s\"", C, K, kname(dt));
    size_t es = qdq_dtype_size(dt);
    if (binary) {
        sb_printf(j, "%s\"parameters\"%s{\"binary_data_size\"%s%" PRIu64 "}", C, K, K, n * es);
        sb_add(bin, vals, n * es);
    } else {
        sb_printf(j, "%s\"data\"%s", C, K);
        /* Nested: brackets opened and closed by the row-major index. */
        int lv = nested ? rank : 0;
        uint64_t stride[TC_MAX_RANK + 1];
        stride[lv] = 1;
        for (int i = lv - 1; i >= 0; i--)
            stride[i] = stride[i + 1] * (uint64_t)dims[i];
        if (nested && n == 0) {
            /* An empty nested array still shows the dims up to the first zero. */
            sb_str(j, "[");
            for (int i = 0; i < rank && dims[i] != 0; i++)
                sb_str(j, i ? "[" : "");
            for (int i = 0; i < rank && dims[i] != 0; i++)
                sb_str(j, i ? "]" : "");
            sb_str(j, "]");
        } else {
            for (int i = 0; i < (lv ? lv : 1); i++)
                sb_str(j, "[");
            for (uint64_t e = 0; e < n; e++) {
                if (e) {
                    int close = 0;
                    for (int i = lv - 1; i > 0 && e % stride[i] == 0; i--)
                        close++;
                    for (int i = 0; i < close; i++)
                        sb_str(j, "]");
                    sb_str(j, C);
                    for (int i = 0; i < close; i++)
                        sb_str(j, "[");
                }
                sb_num(j, tu_load(dt, vals, (size_t)e));
            }
            for (int i = 0; i < (lv ? lv : 1); i++)
                sb_str(j, "]");
        }
    }
    sb_str(j, "}");
}

/* The request body; *hlen is the JSON's length when binary data follows, else SIZE_MAX. */
static void build_request(const tcase *t, const rq *o, sbuf *body, size_t *hlen)
{
    const char *C = o->triton ? ", " : ",", *K = o->triton ? ": " : ":";
    sbuf j = { 0 }, bin = { 0 };
    sb_str(&j, "{");
    if (o->id) {
        sb_printf(&j, "\"id\"%s", K);
        sb_jstr(&j, o->id);
        sb_str(&j, C);
    }
    if (!o->triton)
        sb_printf(&j, "\"model_name\"%s\"" MODEL "\"%s", K, C);
    sb_printf(&j, "\"inputs\"%s[", K);
    if (!o->bounds_first)
        put_tensor(&j, &bin, o, "input", t->dt, t->dims, t->rank, t->in, t->count, o->bin_input,
                   o->nested);
    size_t es = qdq_dtype_size(t->dt);
    for (int m = 0; m < 2; m++) {
        if (!(m ? t->has_max : t->has_min))
            continue;
        int n = m ? t->n_max : t->n_min;
        const double *v = m ? t->max : t->min;
        void *vals = calloc((size_t)n + 1, es);
        for (int i = 0; i < n; i++)
            tu_store(t->dt, vals, (size_t)i, v[i]);
        int64_t dim = n;
        if (j.p[j.len - 1] != '[')
            sb_str(&j, C);
        put_tensor(&j, &bin, o, m ? "input_max" : "input_min", t->dt, &dim, 1, vals,
                   (uint64_t)n, o->bin_bounds, false);
        free(vals);
    }
    if (o->bounds_first) {
        if (j.p[j.len - 1] != '[')
            sb_str(&j, C);
        put_tensor(&j, &bin, o, "input", t->dt, t->dims, t->rank, t->in, t->count, o->bin_input,
                   o->nested);
    }
    sb_str(&j, "]");
    if (o->outs == OUT_PLAIN || o->outs == OUT_JSON || o->outs == OUT_BIN ||
        o->outs == OUT_MIX) {
        sb_printf(&j, "%s\"outputs\"%s[", C, K);
        for (int k = 0; k < 7; k++) {
            sb_printf(&j, "%s{\"name\"%s\"%s\"", k ? C : "", K, out_names[k]);
            if (o->outs == OUT_JSON || o->outs == OUT_BIN)
                sb_printf(&j, "%s\"parameters\"%s{\"binary_data\"%s%s}", C, K, K,
                          o->outs == OUT_BIN ? "true" : "false");
            if (o->outs == OUT_MIX && k != 0 && k != 5)
                sb_printf(&j, "%s\"parameters\"%s{\"binary_data\"%sfalse}", C, K, K);
            sb_str(&j, "}");
        }
        sb_str(&j, "]");
    }
    if (o->outs == OUT_EMPTY)
        sb_printf(&j, "%s\"outputs\"%s[]", C, K);
    /* Triton's client puts its "parameters" last; custom parameters join binary_data_output. */
    sbuf p = { 0 };
    const qdq_attrs *a = &t->attrs;
    bool all = o->all_attrs;
#define SEP (p.len ? C : "")
    if (all || a->num_bits != 8)
        sb_printf(&p, "%s\"num_bits\"%s%d", SEP, K, a->num_bits);
    if (all || !a->signed_input)
        sb_printf(&p, "%s\"signed_input\"%s%s", SEP, K, a->signed_input ? "true" : "false");
    if (all || a->range_given)
        sb_printf(&p, "%s\"range_given\"%s%s", SEP, K, a->range_given ? "true" : "false");
    if (all || strcmp(t->round_mode, "HALF_TO_EVEN"))
        sb_printf(&p, "%s\"round_mode\"%s\"%s\"", SEP, K, t->round_mode);
    if (all || a->narrow_range)
        sb_printf(&p, "%s\"narrow_range\"%s%s", SEP, K, a->narrow_range ? "true" : "false");
    if (all || a->axis != -1)
        sb_printf(&p, "%s\"axis\"%s%" PRId64, SEP, K, a->axis);
    if (o->outs == OUT_BDO || o->outs == OUT_MIX || o->outs == OUT_EMPTY)
        sb_printf(&p, "%s\"binary_data_output\"%strue", SEP, K);
#undef SEP
    if (p.len)
        sb_printf(&j, "%s\"parameters\"%s{%s}", C, K, p.p);
    free(p.p);
    sb_str(&j, "}");
    body->len = 0;
    sb_add(body, j.p, j.len);
    /* Triton's client sends the header length whenever an input is binary, even empty. */
    *hlen = o->bin_input || (o->bin_bounds && (t->has_min || t->has_max)) ? j.len : SIZE_MAX;
    if (bin.len)
        sb_add(body, bin.p, bin.len);
    free(j.p);
    free(bin.p);
}

/* ---- sending ---- */

/*
 * POSTs a v2 request as the client of o would: Triton sends Inference-Header-Content-Length
 * (when binary data follows) and no Content-Type; KServe's REST client sends
 * inference-header-content-length and content-type application/octet-stream with binary data,
 * and nothing with JSON. encoding: NULL, "gzip" or "deflate" (the body is compressed).
 */
static void post_v2(const char *path, const rq *o, const char *body, size_t len, size_t hlen,
                    const char *encoding, hc_resp *r)
{
    char url[256], ihcl[96], ce[64];
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    const char *h[8];
    int n = 0;
    if (o->accept_z)
        h[n++] = "Accept-Encoding: gzip, deflate";
    if (hlen != SIZE_MAX) {
        snprintf(ihcl, sizeof ihcl, "%s: %zu",
                 o->triton ? "Inference-Header-Content-Length" : "inference-header-content-length",
                 hlen);
        h[n++] = ihcl;
        if (!o->triton)
            h[n++] = "content-type: application/octet-stream";
    } else if (o->json_ctype) {
        h[n++] = "Content-Type: application/json";
    }
    unsigned char *z = NULL;
    if (encoding) {
        size_t zn;
        z = tu_zcompress(body, len, 6, strcmp(encoding, "gzip") == 0 ? 31 : 15, &zn);
        snprintf(ce, sizeof ce, "Content-Encoding: %s", encoding);
        h[n++] = ce;
        body = (const char *)z, len = zn;
    }
    h[n] = NULL;
    hc_opts opts = { .chunked = o->chunked, .read_chunk = o->chunked ? 7 : 0 };
    hc_request_ex("POST", url, h, body, len, &opts, r);
    free(z);
    if (r->status == 0)
        server_check(path);
    /* As httpx does: a compressed answer is decoded (Inference-Header-Content-Length counts the
     * decoded bytes). */
    const char *rce = hc_header(r, "Content-Encoding");
    if (rce && (strcmp(rce, "gzip") == 0 || strcmp(rce, "deflate") == 0)) {
        CHECK(o->accept_z, "%s: Content-Encoding %s although the request did not accept it",
              path, rce);
        size_t dn = 0;
        char *d = tu_zdecompress(r->body, r->len, &dn);
        CHECK(d != NULL, "%s: the %s answer does not decompress", path, rce);
        if (d) {
            z_answers++;
            free(r->body);
            r->body = d;
            r->len = dn;
        }
    }
}

/* POSTs body to path (the URL is made from the running server's address, which changes when
 * a dead server is replaced); headers may be NULL. */
static void post_raw(const char *path, const char *const *headers, const void *body, size_t len,
                     hc_resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    hc_request("POST", url, headers, body, len, r);
    if (r->status == 0)
        server_check(path);
}

/* ---- checking answers ---- */

static bool ctype_is(const hc_resp *r, const char *want)
{
    const char *ct = hc_header(r, "Content-Type");
    return ct && strcmp(ct, want) == 0;
}

/*
 * An error answer: status, Content-Type exactly application/json, {"error": "..."}; words is
 * '|'-separated, each must be in the message.
 */
static void check_error(const char *what, const hc_resp *r, long status, const char *words)
{
    CHECK(r->status == status, "%s: status %ld, want %ld (body %.300s)", what, r->status, status,
          r->body);
    CHECK(ctype_is(r, "application/json"), "%s: error Content-Type is '%s'", what,
          hc_header(r, "Content-Type") ? hc_header(r, "Content-Type") : "(none)");
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsObject(j) && cJSON_IsString(e) && e->valuestring[0],
          "%s: error body is not {\"error\": \"...\"}: %.300s", what, r->body);
    if (words && cJSON_IsString(e)) {
        char *w = strdup(words), *save = NULL;
        for (char *tok = strtok_r(w, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
            CHECK(strstr(e->valuestring, tok), "%s: message '%s' lacks '%s'", what,
                  e->valuestring, tok);
        free(w);
    }
    cJSON_Delete(j);
}

static void compare_tensor(const char *what, const tcase *t, const void *got)
{
    int bad = tc_tensor_diffs(what, t, got);
    CHECK(bad == 0, "%s: %d of %" PRIu64 " output elements differ", what, bad, t->count);
}

/* Whether JSON array sh holds exactly the n dims. */
static bool shape_is(const cJSON *sh, const int64_t *dims, int n)
{
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) != n)
        return false;
    for (int i = 0; i < n; i++) {
        const char *txt = hc_json_num(cJSON_GetArrayItem(sh, i));
        char *end;
        if (!txt || strtoll(txt, &end, 10) != dims[i] || *end)
            return false;
    }
    return true;
}

static bool strict_size(const char *s, size_t *out)
{
    if (!s || !*s)
        return false;
    size_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > SIZE_MAX / 10 - 1)
            return false;
        v = v * 10 + (size_t)(*s - '0');
    }
    *out = v;
    return true;
}

/*
 * A v2 answer: the outputs in want_outputs (in the model's order), those in want_binary as
 * binary data after the JSON (Content-Type application/octet-stream, Inference-Header-Content-
 * Length), the others as JSON "data"; everything bit for bit.
 */
static void check_v2_answer(const char *what, const tcase *t, const hc_resp *r,
                            unsigned want_outputs, unsigned want_binary, const char *want_id)
{
    if (t->want_err) {
        check_error(what, r, 400, t->want_err);
        return;
    }
    CHECK(r->status == 200, "%s: status %ld (%.300s)", what, r->status, r->body);
    if (r->status != 200)
        return;
    bool any_bin = (want_outputs & want_binary) != 0;
    const char *ih = hc_header(r, "Inference-Header-Content-Length");
    size_t hlen = r->len;
    if (any_bin) {
        CHECK(ctype_is(r, "application/octet-stream"),
              "%s: binary answer Content-Type '%s', want application/octet-stream", what,
              hc_header(r, "Content-Type") ? hc_header(r, "Content-Type") : "(none)");
        bool ok = strict_size(ih, &hlen) && hlen <= r->len;
        CHECK(ok, "%s: Inference-Header-Content-Length '%s' (body %zu bytes)", what,
              ih ? ih : "(none)", r->len);
        if (!ok)
            return;
    } else {
        CHECK(ctype_is(r, "application/json"), "%s: JSON answer Content-Type '%s'", what,
              hc_header(r, "Content-Type") ? hc_header(r, "Content-Type") : "(none)");
        CHECK(ih == NULL, "%s: a JSON-only answer has Inference-Header-Content-Length %s", what,
              ih);
    }
    cJSON *j = hc_json_parse_exact(r->body, hlen);
    CHECK(cJSON_IsObject(j), "%s: the answer's header is not a JSON object: %.200s", what,
          r->body);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return;
    }
    const cJSON *mn = cJSON_GetObjectItem(j, "model_name");
    CHECK(cJSON_IsString(mn) && strcmp(mn->valuestring, MODEL) == 0, "%s: model_name", what);
    const cJSON *mv = cJSON_GetObjectItem(j, "model_version");
    CHECK(!mv || (cJSON_IsString(mv) && strcmp(mv->valuestring, "1") == 0),
          "%s: model_version", what);
    if (want_id) {
        const cJSON *id = cJSON_GetObjectItem(j, "id");
        CHECK(cJSON_IsString(id) && strcmp(id->valuestring, want_id) == 0,
              "%s: id not echoed (want '%s', got '%s')", what, want_id,
              cJSON_IsString(id) ? id->valuestring : "(none)");
    }
    const cJSON *outs = cJSON_GetObjectItem(j, "outputs");
    int want_n = __builtin_popcount(want_outputs);
    CHECK(cJSON_IsArray(outs) && cJSON_GetArraySize(outs) == want_n,
          "%s: outputs has %d entries, want %d", what, cJSON_GetArraySize(outs), want_n);
    size_t off = hlen, es = qdq_dtype_size(t->dt);
    bool dbl = t->dt == QDQ_FLOAT64;
    int idx = 0;
    void *got = calloc(t->count + 1, es);
    for (int k = 0; k < 7 && cJSON_IsArray(outs); k++) {
        if (!(want_outputs & (1u << k)))
            continue;
        const cJSON *o = cJSON_GetArrayItem(outs, idx++);
        const cJSON *nm = cJSON_GetObjectItem(o, "name");
        bool name_ok = cJSON_IsString(nm) && strcmp(nm->valuestring, out_names[k]) == 0;
        CHECK(name_ok, "%s: outputs[%d] is '%s', want '%s' (model order)", what, idx - 1,
              cJSON_IsString(nm) ? nm->valuestring : "?", out_names[k]);
        if (!name_ok)
            break;
        const cJSON *dtn = cJSON_GetObjectItem(o, "datatype");
        const char *want_dt = k == 0 ? kname(t->dt) : dbl ? "FP64" : "FP32";
        CHECK(cJSON_IsString(dtn) && strcmp(dtn->valuestring, want_dt) == 0,
              "%s: %s datatype '%s', want %s", what, out_names[k],
              cJSON_IsString(dtn) ? dtn->valuestring : "?", want_dt);
        int64_t rdim = (int64_t)t->channels;
        bool sh_ok = k == 0 ? shape_is(cJSON_GetObjectItem(o, "shape"), t->dims, t->rank)
                            : shape_is(cJSON_GetObjectItem(o, "shape"), &rdim, 1);
        CHECK(sh_ok, "%s: %s shape wrong (want %s)", what, out_names[k],
              k == 0 ? "the input's" : t->attrs.axis < 0 ? "[1]" : "[C]");
        uint64_t n = k == 0 ? t->count : t->channels;
        size_t ees = k == 0 ? es : dbl ? 8 : 4;
        const cJSON *data = cJSON_GetObjectItem(o, "data");
        const cJSON *bds = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "parameters"),
                                               "binary_data_size");
        double *rv = k ? calloc(n + 1, sizeof *rv) : NULL;
        bool have = false;
        if (want_binary & (1u << k)) {
            size_t sz = 0;
            bool ok = bds && strict_size(hc_json_num(bds), &sz) && sz == n * ees && !data &&
                      off + sz <= r->len;
            CHECK(ok, "%s: binary %s: binary_data_size %s, want %" PRIu64 " (data %s, %zu bytes "
                  "left)", what, out_names[k], bds && hc_json_num(bds) ? hc_json_num(bds) : "?",
                  (uint64_t)(n * ees), data ? "present" : "absent", r->len - off);
            if (ok) {
                const unsigned char *b = (const unsigned char *)r->body + off;
                if (k == 0)
                    memcpy(got, b, sz);
                for (uint64_t i = 0; k && i < n; i++) {
                    if (dbl) {
                        memcpy(&rv[i], b + 8 * i, 8);
                    } else {
                        float f;
                        memcpy(&f, b + 4 * i, 4);
                        rv[i] = f;
                    }
                }
                off += sz;
                have = true;
            }
        } else {
            bool ok = cJSON_IsArray(data) && (uint64_t)cJSON_GetArraySize(data) == n && !bds;
            CHECK(ok, "%s: %s: \"data\" must be a flat array of %" PRIu64 " (and no "
                  "binary_data_size)", what, out_names[k], n);
            uint64_t i = 0;
            const cJSON *e;
            if (ok)
                cJSON_ArrayForEach(e, data) {
                    const char *txt = hc_json_num(e);
                    if (k == 0 && !tc_elem_parse(t->dt, txt, got, (size_t)i)) {
                        CHECK(0, "%s: output.data[%" PRIu64 "] '%s' is not a %s number", what,
                              i, txt ? txt : "?", kname(t->dt));
                        ok = false;
                        break;
                    }
                    if (k) {
                        if (!tc_range_same(t->dt, txt, t->rng[k - 1][i]))
                            CHECK(0, "%s: %s[%" PRIu64 "] is %s, want %.17g", what,
                                  out_names[k], i, txt ? txt : "?", t->rng[k - 1][i]);
                    }
                    i++;
                }
            have = ok && k == 0;
        }
        if (k == 0 && have)
            compare_tensor(what, t, got);
        if (k && have) {
            int bad = 0;
            for (uint64_t i = 0; i < n; i++) {
                bool same = dbl ? tu_same_f64(rv[i], t->rng[k - 1][i])
                                : tu_same_f32((float)rv[i], (float)t->rng[k - 1][i]);
                if (!same && bad++ < 3)
                    CHECK(0, "%s: binary %s[%" PRIu64 "] = %.17g, want %.17g", what,
                          out_names[k], i, rv[i], t->rng[k - 1][i]);
            }
            CHECK(bad == 0, "%s: %s: %d channels differ", what, out_names[k], bad);
        }
        free(rv);
    }
    free(got);
    if (any_bin)
        CHECK(off == r->len, "%s: %zu bytes after the binary outputs (want none)", what,
              r->len - off);
    cJSON_Delete(j);
}

/* Builds, sends and checks one request of layout o. */
static void run_layout(const tcase *t, const char *tag, const rq *o, const char *path,
                       const char *encoding)
{
    sbuf body = { 0 };
    size_t hlen;
    build_request(t, o, &body, &hlen);
    hc_resp r;
    post_v2(path, o, body.p, body.len, hlen, encoding, &r);
    char what[256];
    snprintf(what, sizeof what, "%s [%s%s%s]", t->name, tag, encoding ? ", " : "",
             encoding ? encoding : "");
    unsigned outs = OUT_ALL;
    check_v2_answer(what, t, &r, outs, expect_binary(o->outs), o->id);
    hc_resp_free(&r);
    free(body.p);
}

/* ---- every vector in every layout ---- */

static const struct {
    const char *tag;
    rq o;
    const char *path;
} layouts[] = {
    { "kserve JSON", { .triton = false, .all_attrs = true, .outs = OUT_DEFAULT,
                       .id = "0b4c3c1e-6d0a-4f0e-9d1b-3f6a2c1d5e7f" }, INFER },
    { "kserve JSON, outputs listed, Content-Type json",
      { .triton = false, .all_attrs = true, .json_ctype = true, .outs = OUT_PLAIN,
        .id = "k2" }, INFER_V1 },
    { "kserve JSON nested data", { .triton = false, .nested = true, .outs = OUT_DEFAULT },
      INFER },
    { "triton JSON in, JSON out", { .triton = true, .all_attrs = true, .outs = OUT_JSON,
                                     .id = "t-1" }, INFER },
    { "triton JSON in, binary out", { .triton = true, .all_attrs = true, .outs = OUT_BIN },
      INFER },
    { "triton binary in, JSON out", { .triton = true, .bin_input = true, .bin_bounds = true,
                                       .all_attrs = true, .outs = OUT_JSON, .id = "t 3" },
      INFER },
    { "triton binary in and out", { .triton = true, .bin_input = true, .bin_bounds = true,
                                     .all_attrs = true, .outs = OUT_BIN, .id = "t4" }, INFER },
    { "triton binary_data_output", { .triton = true, .bin_input = true, .bin_bounds = true,
                                      .outs = OUT_BDO }, INFER_V1 },
    { "triton binary input, JSON bounds, mixed outputs",
      { .triton = true, .bin_input = true, .bin_bounds = false, .all_attrs = true,
        .outs = OUT_MIX, .id = "mix" }, INFER },
    { "triton JSON input, binary bounds", { .triton = true, .bin_input = false,
                                             .bin_bounds = true, .outs = OUT_JSON }, INFER },
    { "kserve binary in", { .triton = false, .bin_input = true, .bin_bounds = true,
                            .all_attrs = true, .outs = OUT_DEFAULT, .id = "kb" }, INFER_V1 },
    { "kserve JSON, Accept-Encoding gzip", { .triton = false, .all_attrs = true,
                                              .accept_z = true, .outs = OUT_DEFAULT,
                                              .id = "kz" }, INFER },
    { "kserve binary in and out, Accept-Encoding gzip",
      { .triton = false, .bin_input = true, .bin_bounds = true, .accept_z = true,
        .outs = OUT_BIN }, INFER },
    { "triton binary, bounds listed before input", { .triton = true, .bin_input = true,
                                                      .bin_bounds = true, .bounds_first = true,
                                                      .outs = OUT_BIN, .id = "bf" }, INFER },
    { "triton JSON, bounds listed before input", { .triton = true, .bounds_first = true,
                                                    .outs = OUT_JSON }, INFER_V1 },
    { "triton binary, outputs []", { .triton = true, .bin_input = true, .bin_bounds = true,
                                     .outs = OUT_EMPTY }, INFER },
    { "triton binary, chunked upload", { .triton = true, .bin_input = true, .bin_bounds = true,
                                         .chunked = true, .outs = OUT_BIN }, INFER },
    { "kserve JSON, chunked upload", { .triton = false, .chunked = true, .outs = OUT_DEFAULT },
      INFER },
};
#define N_LAYOUTS (sizeof layouts / sizeof layouts[0])

static cJSON *load_vectors(const tc_file *f)
{
    cJSON *cases = tc_load(f);
    CHECK(cJSON_GetArraySize(cases) >= f->min_cases, "%s must parse (%d+ cases)", f->path,
          f->min_cases);
    return cases;
}

/*
 * A layout that has killed the server three times is not sent again (each death costs a
 * restart); the runs left out are counted as failures.
 */
static int layout_deaths[N_LAYOUTS], runs_skipped;

static void run_layout_guarded(const tcase *t, size_t l, const char *encoding)
{
    if (layout_deaths[l] >= 3) {
        runs_skipped++;
        return;
    }
    int before = srv_deaths;
    run_layout(t, layouts[l].tag, &layouts[l].o, layouts[l].path, encoding);
    if (srv_deaths != before && ++layout_deaths[l] == 3)
        fprintf(stderr, "layout '%s' killed the server 3 times: not sent again\n",
                layouts[l].tag);
}

static void test_vectors(const cJSON *cases, const tc_file *f)
{
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases) {
        tcase t;
        tc_from_vector(&t, c, f);
        for (size_t l = 0; l < N_LAYOUTS; l++)
            run_layout_guarded(&t, l, NULL);
        tc_free(&t);
        n++;
    }
    fprintf(stderr, "  %s: %d vectors x %zu layouts\n", f->path, n, N_LAYOUTS);
}

/* Compressed request bodies (docs/api.md, "Compression"), JSON and binary, for a few vectors. */
static void test_compression(const cJSON *cases)
{
    static const char *const pick[] = { "tf_int8_from_data", "per_channel_range_given",
                                        "float16_range_given", "bfloat16_per_channel",
                                        "float64_range_given" };
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        bool take = false;
        for (size_t i = 0; i < sizeof pick / sizeof pick[0]; i++)
            take |= strcmp(name, pick[i]) == 0;
        if (!take)
            continue;
        tcase t;
        tc_from_json(&t, c);
        static const char *const enc[2] = { "gzip", "deflate" };
        for (int e = 0; e < 2; e++) {
            run_layout_guarded(&t, 0, enc[e]); /* kserve JSON */
            run_layout_guarded(&t, 6, enc[e]); /* triton binary in and out */
            run_layout_guarded(&t, 7, enc[e]); /* triton binary_data_output */
        }
        tc_free(&t);
    }
}

/* ---- Triton's exact layout, id, outputs selection ---- */

static void get(const char *path, hc_resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.base, path);
    hc_request("GET", url, NULL, NULL, 0, r);
    if (r->status == 0)
        server_check(path);
}

/* A small tcase made here: input values, dims, attrs (tc_compute gives the expectations). */
static void mini_case(tcase *t, const char *name, qdq_dtype dt, const int64_t *dims, int rank,
                      const double *vals, int64_t axis)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dt = dt;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->count = 1;
    for (int i = 0; i < rank; i++)
        t->count *= (uint64_t)dims[i];
    t->in = calloc(t->count + 1, qdq_dtype_size(dt));
    for (uint64_t i = 0; i < t->count; i++)
        tu_store(dt, t->in, (size_t)i, vals[i]);
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis;
    t->attrs = a;
    snprintf(t->round_mode, sizeof t->round_mode, "HALF_TO_EVEN");
}

static void test_triton_layout(void)
{
    /* Byte for byte what tritonclient.http sends for a [2,3] FP32 input with
     * InferRequestedOutput("output") (binary_data=True by default). */
    static const double v6[6] = { -1.0, -0.5, 0.0, 0.30000001192092896, 0.75, 1.0 };
    int64_t d23[2] = { 2, 3 };
    tcase t;
    mini_case(&t, "triton exact layout", QDQ_FLOAT32, d23, 2, v6, -1);
    CHECK(tc_compute(&t) == 0, "local compute");
    const char *json = "{\"inputs\": [{\"name\": \"input\", \"shape\": [2, 3], \"datatype\": "
                       "\"FP32\", \"parameters\": {\"binary_data_size\": 24}}], \"outputs\": "
                       "[{\"name\": \"output\", \"parameters\": {\"binary_data\": true}}]}";
    sbuf body = { 0 };
    sb_str(&body, json);
    sb_add(&body, t.in, 24);
    char ihcl[80];
    snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", strlen(json));
    const char *h[] = { ihcl, NULL };
    hc_resp r;
    post_raw(INFER, h, body.p, body.len, &r);
    check_v2_answer("triton exact layout", &t, &r, 1u, 1u, NULL);
    const char *ih = hc_header(&r, "Inference-Header-Content-Length");
    size_t hl = 0;
    if (strict_size(ih, &hl))
        CHECK(r.len == hl + 24, "triton exact layout: body %zu bytes, want header %zu + 24",
              r.len, hl);
    cJSON *j = cJSON_ParseWithLength(r.body, hl);
    CHECK(cJSON_GetObjectItem(j, "id") == NULL, "triton exact layout: no id sent, none echoed");
    cJSON_Delete(j);
    hc_resp_free(&r);

    /* The same with the client's custom parameters and no outputs: binary_data_output. */
    body.len = 0;
    const char *json2 = "{\"id\": \"42\", \"inputs\": [{\"name\": \"input\", \"shape\": [2, 3], "
                        "\"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": 24}}], "
                        "\"parameters\": {\"binary_data_output\": true, \"num_bits\": 4}}";
    sb_str(&body, json2);
    sb_add(&body, t.in, 24);
    snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", strlen(json2));
    tcase t4;
    mini_case(&t4, "triton custom parameters", QDQ_FLOAT32, d23, 2, v6, -1);
    t4.attrs.num_bits = 4;
    CHECK(tc_compute(&t4) == 0, "local compute");
    post_raw(INFER, h, body.p, body.len, &r);
    check_v2_answer("triton custom parameters + binary_data_output", &t4, &r, OUT_ALL, OUT_ALL,
                    "42");
    hc_resp_free(&r);

    /* Triton's client adds "priority" and "timeout" to the parameters when they are set. */
    body.len = 0;
    const char *json5 = "{\"id\": \"p\", \"inputs\": [{\"name\": \"input\", \"shape\": [2, 3], "
                        "\"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": 24}}], "
                        "\"outputs\": [{\"name\": \"output\", \"parameters\": {\"binary_data\": "
                        "true}}], \"parameters\": {\"priority\": 1, \"timeout\": 1000000}}";
    sb_str(&body, json5);
    sb_add(&body, t.in, 24);
    snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", strlen(json5));
    post_raw(INFER, h, body.p, body.len, &r);
    check_v2_answer("triton priority and timeout parameters", &t, &r, 1u, 1u, "p");
    hc_resp_free(&r);

    /* Inference-Header-Content-Length equal to the whole body: JSON "data", no binary part. */
    body.len = 0;
    const char *json6 = "{\"inputs\": [{\"name\": \"input\", \"shape\": [2, 3], \"datatype\": "
                        "\"FP32\", \"data\": [-1.0, -0.5, 0.0, 0.30000001192092896, 0.75, 1.0]}], "
                        "\"outputs\": [{\"name\": \"output\", \"parameters\": {\"binary_data\": "
                        "true}}]}";
    sb_str(&body, json6);
    snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", strlen(json6));
    post_raw(INFER, h, body.p, body.len, &r);
    check_v2_answer("Inference-Header-Content-Length without binary inputs", &t, &r, 1u, 1u,
                    NULL);
    hc_resp_free(&r);

    /* "id" with characters that need escaping comes back as sent. */
    rq o = { .triton = false, .outs = OUT_DEFAULT, .id = "q\"uote\\back/slash \xc3\xa9 tab\t." };
    sbuf b2 = { 0 };
    size_t hlen;
    build_request(&t4, &o, &b2, &hlen);
    post_v2(INFER, &o, b2.p, b2.len, hlen, NULL, &r);
    check_v2_answer("id with escapes", &t4, &r, OUT_ALL, 0, o.id);
    hc_resp_free(&r);
    free(b2.p);

    /* Shape [] bounds for axis -1 (docs/api.md, "Inference": shape [] or [1]). */
    body.len = 0;
    tcase tg;
    mini_case(&tg, "scalar bounds", QDQ_FLOAT32, d23, 2, v6, -1);
    tg.attrs.range_given = true;
    tc_bounds(&tg, 1, false);
    tg.min[0] = -0.5, tg.max[0] = 0.5;
    CHECK(tc_compute(&tg) == 0, "local compute");
    const char *json3 = "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
                        "\"data\":[-1.0,-0.5,0.0,0.30000001192092896,0.75,1.0]},"
                        "{\"name\":\"input_min\",\"shape\":[],\"datatype\":\"FP32\",\"data\":[-0.5]},"
                        "{\"name\":\"input_max\",\"shape\":[],\"datatype\":\"FP32\",\"data\":[0.5]}],"
                        "\"parameters\":{\"range_given\":true}}";
    post_raw(INFER, NULL, json3, strlen(json3), &r);
    check_v2_answer("bounds of shape []", &tg, &r, OUT_ALL, 0, NULL);
    hc_resp_free(&r);

    tc_free(&t);
    tc_free(&t4);
    tc_free(&tg);
    free(body.p);
}

/* A request's "outputs" selects which outputs come back, in the model's order. */
static void test_outputs_selection(void)
{
    static const double v[12] = { -1, -0.5, 0, 0.25, 0.5, 1, 2, -3, 0.125, 7, -7, 3.5 };
    int64_t d34[2] = { 3, 4 };
    tcase t;
    mini_case(&t, "outputs selection", QDQ_FLOAT32, d34, 2, v, 0);
    CHECK(tc_compute(&t) == 0, "local compute");
    char ihcl[80];
    static const struct {
        const char *outputs; /* the "outputs" array's JSON */
        unsigned want, bin;
        bool binary_in;
    } sel[] = {
        { "[{\"name\": \"scale\"}, {\"name\": \"output\"}, {\"name\": \"input_min\"}]",
          1u << 0 | 1u << 1 | 1u << 5, 0, false },
        { "[{\"name\": \"inverse_scale\", \"parameters\": {\"binary_data\": true}}, "
          "{\"name\": \"output\", \"parameters\": {\"binary_data\": false}}]",
          1u << 0 | 1u << 6, 1u << 6, true },
        { "[{\"name\": \"output_max\", \"parameters\": {\"binary_data\": true}}, "
          "{\"name\": \"output_min\", \"parameters\": {\"binary_data\": true}}]",
          1u << 3 | 1u << 4, 1u << 3 | 1u << 4, true },
        { "[{\"name\": \"scale\", \"parameters\": {\"binary_data\": true}}, "
          "{\"name\": \"output\", \"parameters\": {\"binary_data\": true}}]",
          1u << 0 | 1u << 5, 1u << 0 | 1u << 5, true },
        { "[{\"name\": \"output\"}]", 1u, 0, false },
        { "[{\"name\": \"input_max\"}]", 1u << 2, 0, true },
    };
    for (size_t i = 0; i < sizeof sel / sizeof sel[0]; i++) {
        sbuf b = { 0 };
        sb_printf(&b, "{\"id\": \"sel%zu\", \"inputs\": [{\"name\": \"input\", \"shape\": [3, 4], "
                  "\"datatype\": \"FP32\", ", i);
        if (sel[i].binary_in) {
            sb_str(&b, "\"parameters\": {\"binary_data_size\": 48}}]");
        } else {
            sb_str(&b, "\"data\": [");
            for (int k = 0; k < 12; k++) {
                sb_str(&b, k ? ", " : "");
                sb_num(&b, v[k]);
            }
            sb_str(&b, "]}]");
        }
        sb_printf(&b, ", \"outputs\": %s, \"parameters\": {\"axis\": 0}}", sel[i].outputs);
        size_t hl = b.len;
        if (sel[i].binary_in)
            sb_add(&b, t.in, 48);
        snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", hl);
        const char *h[] = { ihcl, NULL };
        hc_resp r;
        post_raw(INFER, sel[i].binary_in ? h : NULL, b.p, b.len, &r);
        char what[96], id[16];
        snprintf(what, sizeof what, "outputs selection %zu", i);
        snprintf(id, sizeof id, "sel%zu", i);
        check_v2_answer(what, &t, &r, sel[i].want, sel[i].bin, id);
        hc_resp_free(&r);
        free(b.p);
    }
    tc_free(&t);
}

/* ---- metadata, health, ready ---- */

static bool json_array_has(const cJSON *a, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
        if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
            return true;
    return false;
}

static cJSON *get_json(const char *path, long want_status)
{
    hc_resp r;
    get(path, &r);
    CHECK(r.status == want_status, "GET %s: status %ld, want %ld (%.200s)", path, r.status,
          want_status, r.body);
    CHECK(ctype_is(&r, "application/json"), "GET %s: Content-Type '%s'", path,
          hc_header(&r, "Content-Type") ? hc_header(&r, "Content-Type") : "(none)");
    cJSON *j = cJSON_ParseWithLength(r.body, r.len);
    CHECK(cJSON_IsObject(j), "GET %s: body is not a JSON object: %.200s", path, r.body);
    hc_resp_free(&r);
    return j;
}

static void test_metadata(void)
{
    cJSON *j = get_json("/v2", 200);
    const cJSON *ext = cJSON_GetObjectItem(j, "extensions");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "name")), "GET /v2: no name");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "version")), "GET /v2: no version");
    CHECK(json_array_has(ext, "binary_tensor_data"), "GET /v2: extensions lack binary_tensor_data");
    CHECK(json_array_has(ext, "parameters"), "GET /v2: extensions lack parameters");
    cJSON_Delete(j);

    j = get_json("/v2/health/live", 200);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "live")), "/v2/health/live: live is not true");
    cJSON_Delete(j);
    j = get_json("/v2/health/ready", 200);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "ready")), "/v2/health/ready: ready is not true");
    cJSON_Delete(j);

    static const char *const meta_paths[] = { "/v2/models/" MODEL,
                                              "/v2/models/" MODEL "/versions/1" };
    for (int p = 0; p < 2; p++) {
        j = get_json(meta_paths[p], 200);
        const cJSON *nm = cJSON_GetObjectItem(j, "name");
        CHECK(cJSON_IsString(nm) && strcmp(nm->valuestring, MODEL) == 0, "%s: name",
              meta_paths[p]);
        CHECK(json_array_has(cJSON_GetObjectItem(j, "versions"), "1"), "%s: versions lack \"1\"",
              meta_paths[p]);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "platform")), "%s: no platform",
              meta_paths[p]);
        const cJSON *ins = cJSON_GetObjectItem(j, "inputs"), *outs = cJSON_GetObjectItem(j, "outputs");
        static const char *const in_names[3] = { "input", "input_min", "input_max" };
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(ins, i);
            const cJSON *n = cJSON_GetObjectItem(e, "name");
            CHECK(cJSON_IsString(n) && strcmp(n->valuestring, in_names[i]) == 0,
                  "%s: inputs[%d] is not %s", meta_paths[p], i, in_names[i]);
            CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "datatype")) &&
                      cJSON_IsArray(cJSON_GetObjectItem(e, "shape")),
                  "%s: inputs[%d] lacks datatype/shape", meta_paths[p], i);
        }
        CHECK(cJSON_GetArraySize(outs) == 7, "%s: %d outputs, want 7", meta_paths[p],
              cJSON_GetArraySize(outs));
        for (int i = 0; i < 7; i++) {
            const cJSON *e = cJSON_GetArrayItem(outs, i);
            const cJSON *n = cJSON_GetObjectItem(e, "name");
            CHECK(cJSON_IsString(n) && strcmp(n->valuestring, out_names[i]) == 0,
                  "%s: outputs[%d] is not %s", meta_paths[p], i, out_names[i]);
            CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "datatype")) &&
                      cJSON_IsArray(cJSON_GetObjectItem(e, "shape")),
                  "%s: outputs[%d] lacks datatype/shape", meta_paths[p], i);
        }
        cJSON_Delete(j);
    }
    static const char *const ready_paths[] = { "/v2/models/" MODEL "/ready",
                                               "/v2/models/" MODEL "/versions/1/ready" };
    for (int p = 0; p < 2; p++) {
        hc_resp r;
        get(ready_paths[p], &r);
        CHECK(r.status == 200, "GET %s: status %ld", ready_paths[p], r.status);
        hc_resp_free(&r);
    }
    static const char *const missing[] = { "/v2/models/other/ready", "/v2/models/other",
                                           "/v2/models/" MODEL "/versions/2/ready",
                                           "/v2/models/" MODEL "/versions/2",
                                           "/v2/models/" MODEL "x/ready" };
    for (size_t p = 0; p < sizeof missing / sizeof missing[0]; p++) {
        hc_resp r;
        get(missing[p], &r);
        char what[160];
        snprintf(what, sizeof what, "GET %s", missing[p]);
        check_error(what, &r, 404, NULL);
        hc_resp_free(&r);
    }
    /* HEAD on the health endpoints (Kubernetes probes may use it). */
    hc_resp r;
    char url[256];
    snprintf(url, sizeof url, "%s/v2/health/ready", srv.base);
    hc_request("HEAD", url, NULL, NULL, 0, &r);
    CHECK(r.status == 200, "HEAD /v2/health/ready: %ld", r.status);
    hc_resp_free(&r);
}

/* ---- big tensors against the reference run here ---- */

/* The big tensors' values (seeded in test_big: the same tensors every run). */
static rng_gen big_rng;

static void big_case(const char *name, qdq_dtype dt, const int64_t *dims, int rank, int64_t axis,
                     bool range_given, int round_mode, int num_bits, const rq *o,
                     const char *encoding)
{
    tcase t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dt = dt;
    t.rank = rank;
    memcpy(t.dims, dims, (size_t)rank * sizeof *dims);
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.axis = axis;
    a.range_given = range_given;
    a.round_mode = round_mode;
    a.num_bits = num_bits;
    t.attrs = a;
    snprintf(t.round_mode, sizeof t.round_mode, "%s",
             round_mode == QDQ_HALF_UP ? "HALF_UP" : "HALF_TO_EVEN");
    size_t es = qdq_dtype_size(dt);
    t.count = 1;
    for (int i = 0; i < rank; i++)
        t.count *= (uint64_t)dims[i];
    t.in = malloc(t.count * es + 1);
    uint64_t inner = 1, ch = 1;
    if (axis >= 0) {
        ch = (uint64_t)dims[axis];
        for (int i = (int)axis + 1; i < rank; i++)
            inner *= (uint64_t)dims[i];
    }
    for (uint64_t i = 0; i < t.count; i++) {
        uint64_t c = (i / inner) % ch;
        tu_store(dt, t.in, i, rng_value(&big_rng, axis >= 0 ? ldexp(1.0, (int)(c % 13) - 6) : 3.0));
    }
    if (range_given) {
        int n = axis >= 0 ? (int)dims[axis] : 1;
        tc_bounds(&t, n, axis >= 0);
        for (int c = 0; c < n; c++) {
            double s = axis >= 0 ? ldexp(1.0, c % 13 - 6) : 3.0;
            t.min[c] = -0.6 * s;
            t.max[c] = 0.45 * s;
        }
    }
    long long t0 = sp_now_ms();
    if (tc_compute(&t) == 0)
        run_layout(&t, name, o, INFER, encoding);
    else
        CHECK(0, "%s: the local reference failed", name);
    fprintf(stderr, "  %s: %lld ms\n", name, sp_now_ms() - t0);
    tc_free(&t);
}

static void test_big(void)
{
    rng_seed(&big_rng, 20240611);
    rq bin = { .triton = true, .bin_input = true, .bin_bounds = true, .all_attrs = true,
               .outs = OUT_BIN, .id = "big" };
    rq bdo = { .triton = true, .bin_input = true, .bin_bounds = true, .outs = OUT_BDO };
    rq mix = { .triton = true, .bin_input = true, .bin_bounds = false, .outs = OUT_MIX };
    rq kjson = { .triton = false, .outs = OUT_DEFAULT, .accept_z = true, .id = "bigjson" };
    rq bfirst = { .triton = true, .bin_input = true, .bin_bounds = true, .bounds_first = true,
                  .outs = OUT_MIX };
    rq kbin = { .triton = false, .bin_input = true, .bin_bounds = true, .outs = OUT_BIN };
    int64_t rows[2] = { 1024, 4096 }, cols[2] = { 4096, 1024 }, flat[1] = { 4 << 20 };
    big_case("big binary 4M FP32 axis 0", QDQ_FLOAT32, rows, 2, 0, false, QDQ_HALF_TO_EVEN, 8,
             &bin, NULL);
    big_case("big binary 4M FP32 axis 1 range_given", QDQ_FLOAT32, cols, 2, 1, true, QDQ_HALF_UP,
             6, &bdo, NULL);
    big_case("big binary 4M FP32 per-tensor, mixed outputs", QDQ_FLOAT32, flat, 1, -1, false,
             QDQ_HALF_TO_EVEN, 8, &mix, NULL);
    int64_t m1[2] = { 256, 4096 }, f1[1] = { 1 << 20 };
    big_case("big binary 1M FP16 axis 0", QDQ_FLOAT16, m1, 2, 0, false, QDQ_HALF_TO_EVEN, 8, &bin,
             NULL);
    big_case("big binary 1M BF16 range_given", QDQ_BFLOAT16, f1, 1, -1, true, QDQ_HALF_UP, 8,
             &bdo, NULL);
    big_case("big binary 1M FP64 axis 1", QDQ_FLOAT64, m1, 2, 1, false, QDQ_HALF_TO_EVEN, 12,
             &kbin, NULL);
    big_case("big binary 1M FP32 gzip", QDQ_FLOAT32, f1, 1, -1, false, QDQ_HALF_TO_EVEN, 8, &bin,
             "gzip");
    int64_t j2[2] = { 200, 500 };
    big_case("big JSON 100k FP32 axis 1", QDQ_FLOAT32, j2, 2, 1, false, QDQ_HALF_UP, 8, &kjson,
             NULL);
    int64_t c4k[2] = { 4, 4096 };
    big_case("binary 4096 channels range_given", QDQ_FLOAT32, c4k, 2, 1, true, QDQ_HALF_TO_EVEN,
             8, &bin, NULL);
    /* JSON ranges of 4096 channels: a response header bigger than the room before the output. */
    big_case("binary 4096 channels, JSON ranges, bounds first", QDQ_FLOAT32, c4k, 2, 1, true,
             QDQ_HALF_UP, 8, &bfirst, NULL);
    int64_t c64k[2] = { 2, 65536 };
    big_case("binary 65536 channels, JSON ranges", QDQ_FLOAT32, c64k, 2, 1, false,
             QDQ_HALF_TO_EVEN, 8, &mix, NULL);
    CHECK(z_answers > 0, "no answer came compressed although Accept-Encoding asked for it");
}

/* ---- keep-alive ---- */

static void test_keepalive(void)
{
    static const double v[4] = { -1, -0.5, 0, 0.3 };
    int64_t d4[1] = { 4 };
    tcase t;
    mini_case(&t, "keep-alive", QDQ_FLOAT32, d4, 1, v, -1);
    CHECK(tc_compute(&t) == 0, "local compute");
    rq o = { .triton = true, .bin_input = true, .outs = OUT_BIN };
    sbuf b = { 0 };
    size_t hlen;
    build_request(&t, &o, &b, &hlen);
    hc_resp r;
    post_v2(INFER, &o, b.p, b.len, hlen, NULL, &r); /* opens the connection if needed */
    hc_resp_free(&r);
    long opened = 0;
    for (int i = 0; i < 20; i++) {
        post_v2(INFER, &o, b.p, b.len, hlen, NULL, &r);
        CHECK(r.status == 200, "keep-alive %d: status %ld", i, r.status);
        opened += r.new_conns;
        bool dead = r.status == 0;
        hc_resp_free(&r);
        if (dead)
            break;
    }
    CHECK(opened == 0, "keep-alive: %ld new connections for 20 binary v2 requests", opened);
    free(b.p);
    tc_free(&t);
}

/* ---- malformed requests ---- */

typedef struct bad {
    const char *name;
    const char *method;     /* NULL: POST */
    const char *path;       /* NULL: INFER */
    const char *hdr;        /* an extra header, "IHCL" for the JSON's own length, or NULL */
    const char *hdr2;       /* another one, or NULL */
    const char *json;       /* the body's JSON (NULL: no body) */
    size_t nbin;            /* bytes appended after the JSON (a pattern) */
    long status;
    const char *words;      /* '|'-separated, each in the message */
} bad;

static const bad bads[] = {
    /* framing lies */
    { "Inference-Header-Content-Length beyond the body", NULL, NULL,
      "Inference-Header-Content-Length: 5000", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "Inference-Header-Content-Length|5000" },
    { "Inference-Header-Content-Length not a number", NULL, NULL,
      "Inference-Header-Content-Length: abc", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "Inference-Header-Content-Length" },
    { "Inference-Header-Content-Length negative", NULL, NULL,
      "Inference-Header-Content-Length: -1", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "Inference-Header-Content-Length" },
    { "Inference-Header-Content-Length cuts the JSON", NULL, NULL,
      "Inference-Header-Content-Length: 20", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "JSON" },
    { "Inference-Header-Content-Length 0", NULL, NULL, "Inference-Header-Content-Length: 0",
      NULL, "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "JSON" },
    { "binary_data_size not shape x itemsize", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":20}}]}", 20, 400, "binary_data_size|20|24" },
    { "binary_data_size for FP16 counted as FP32", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[4],\"datatype\":\"FP16\","
      "\"parameters\":{\"binary_data_size\":16}}]}", 16, 400, "binary_data_size|16|8" },
    { "binary_data_size past the body", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":24}}]}", 16, 400, "binary_data_size|16" },
    { "sizes not summing to the body (bounds missing)", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"input_min\",\"shape\":[1],"
      "\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":4}},{\"name\":\"input_max\","
      "\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":4}}],"
      "\"parameters\":{\"range_given\":true}}", 12, 400, "binary_data_size|input_max" },
    { "extra trailing bytes", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":24}}]}", 25, 400, "binary_data_size|25|24" },
    { "binary bytes but no binary input", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      8, 400, "8" },
    { "both data and binary_data_size", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2],"
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "data|binary_data_size" },
    { "binary_data_size without Inference-Header-Content-Length", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 0, 400, "Inference-Header-Content-Length" },
    { "binary_data_size a string", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":\"8\"}}]}", 8, 400, "binary_data_size" },
    { "binary_data_size negative", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":-8}}]}", 8, 400, "binary_data_size" },
    /* datatypes */
    { "datatype INT8", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"INT8\",\"data\":[1,2]}]}",
      0, 400, "INT8" },
    { "datatype fp32 (lower case)", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"fp32\",\"data\":[1,2]}]}",
      0, 400, "fp32" },
    { "datatype BYTES binary", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[1],\"datatype\":\"BYTES\","
      "\"parameters\":{\"binary_data_size\":8}}]}", 8, 400, "BYTES" },
    { "datatype missing", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"data\":[1,2]}]}", 0, 400, "datatype" },
    { "input_min datatype differs from input", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]},"
      "{\"name\":\"input_min\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[0]},"
      "{\"name\":\"input_max\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
      "\"parameters\":{\"range_given\":true}}", 0, 400, "input_min|FP64" },
    /* missing inputs */
    { "no inputs", NULL, NULL, NULL, NULL, "{\"id\":\"x\"}", 0, 400, "inputs" },
    { "inputs empty", NULL, NULL, NULL, NULL, "{\"inputs\":[]}", 0, 400, "inputs" },
    { "inputs not an array", NULL, NULL, NULL, NULL, "{\"inputs\":{\"name\":\"input\"}}", 0, 400,
      "inputs" },
    { "missing \"input\"", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input_min\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[0]}]}",
      0, 400, "missing|'input'" },
    { "unknown input name", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"INPUT__0\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[0]}]}",
      0, 400, "INPUT__0" },
    { "input without name", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[0]}]}", 0, 400, "name" },
    { "input given twice", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[0]},"
      "{\"name\":\"input\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", 0, 400,
      "twice" },
    { "data missing", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\"}]}", 0, 400, "data" },
    { "range_given without input_min", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]},"
      "{\"name\":\"input_max\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
      "\"parameters\":{\"range_given\":true}}", 0, 400, "input_min" },
    /* shapes and sizes */
    { "data shorter than the shape", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"data\":[1,2,3,4,5]}]}", 0, 400, "5|6" },
    { "data longer than the shape", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"data\":[1,2,3,4,5,6,7]}]}", 0, 400, "6" },
    { "negative dim", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[-1,2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      0, 400, "shape" },
    { "shape missing", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"data\":[1,2]}]}", 0, 400,
      "shape" },
    { "fractional dim", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[1.5],\"datatype\":\"FP32\",\"data\":[1]}]}",
      0, 400, "shape" },
    { "per-channel input_min of the wrong length", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,3],\"datatype\":\"FP32\","
      "\"data\":[1,2,3,4,5,6]},{\"name\":\"input_min\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"data\":[0,0]},{\"name\":\"input_max\",\"shape\":[3],\"datatype\":\"FP32\","
      "\"data\":[1,1,1]}],\"parameters\":{\"range_given\":true,\"axis\":1}}", 0, 400,
      "input_min" },
    { "element limit", NULL, NULL, "IHCL", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[1099511627776],\"datatype\":\"FP32\","
      "\"parameters\":{\"binary_data_size\":4398046511104}}]}", 4, 413, "limit" },
    /* data contents */
    { "data element not a number", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"data\":[1,\"abc\"]}]}", 0, 400, "data" },
    { "data with a trailing comma", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2,]}]}",
      0, 400, "data" },
    /* outputs */
    { "unknown output name", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"outputs\":[{\"name\":\"OUTPUT__0\"}]}", 0, 400, "OUTPUT__0" },
    { "output without name", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"outputs\":[{\"parameters\":{\"binary_data\":true}}]}", 0, 400, "name" },
    { "binary_data not a boolean", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"outputs\":[{\"name\":\"output\",\"parameters\":{\"binary_data\":\"yes\"}}]}", 0, 400,
      "binary_data" },
    { "outputs not an array", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"outputs\":\"output\"}", 0, 400, "outputs" },
    /* parameters */
    { "parameter num_bit (typo)", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"num_bit\":8}}", 0, 400, "num_bit" },
    { "num_bits a string", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"num_bits\":\"8\"}}", 0, 400, "num_bits" },
    { "num_bits fractional", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"num_bits\":8.5}}", 0, 400, "num_bits" },
    { "num_bits huge", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"num_bits\":4294967304}}", 0, 400, "num_bits" },
    { "num_bits 0", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"num_bits\":0}}", 0, 400, "num_bits" },
    { "signed_input a string", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"signed_input\":\"false\"}}", 0, 400, "signed_input" },
    { "round_mode unknown", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"round_mode\":\"HALF_DOWN\"}}", 0, 400, "round_mode" },
    { "axis fractional", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"axis\":0.5}}", 0, 400, "axis" },
    { "axis beyond the rank", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":{\"axis\":3}}", 0, 400, "rank" },
    { "parameters an array", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}],"
      "\"parameters\":[8]}", 0, 400, "parameters" },
    { "id a number", NULL, NULL, NULL, NULL,
      "{\"id\":7,\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\","
      "\"data\":[1,2]}]}", 0, 400, "id" },
    /* JSON */
    { "bad JSON (truncated)", NULL, NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}",
      0, 400, "JSON" },
    { "bad JSON (garbage)", NULL, NULL, NULL, NULL, "inputs=1", 0, 400, "JSON" },
    { "JSON array, not an object", NULL, NULL, NULL, NULL, "[1,2,3]", 0, 400, "object" },
    { "empty body", NULL, NULL, NULL, NULL, "", 0, 400, "JSON" },
    { "binary garbage as JSON header", NULL, NULL, "Inference-Header-Content-Length: 8", NULL,
      "", 16, 400, "JSON" },
    /* routes and methods */
    { "unknown model", NULL, "/v2/models/other/infer", NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      0, 404, "other" },
    { "unknown model version", NULL, "/v2/models/" MODEL "/versions/2/infer", NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      0, 404, "version" },
    { "GET on infer", "GET", NULL, NULL, NULL, NULL, 0, 405, "GET" },
    { "PUT on infer", "PUT", NULL, NULL, NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      0, 405, "PUT" },
    { "DELETE on versions/1/infer", "DELETE", INFER_V1, NULL, NULL, NULL, 0, 405, "DELETE" },
    { "POST on /v2/health/live", NULL, "/v2/health/live", NULL, NULL, "{}", 0, 405, "POST" },
    /* encodings */
    { "Content-Encoding br", NULL, NULL, "Content-Encoding: br", NULL,
      "{\"inputs\":[]}", 0, 415, "br" },
    { "Content-Encoding gzip, body not gzip", NULL, NULL, "Content-Encoding: gzip", NULL,
      "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
      0, 400, "gzip" },
};

static void test_malformed(void)
{
    int n = 0;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const bad *b = &bads[i];
        sbuf body = { 0 };
        if (b->json)
            sb_str(&body, b->json);
        for (size_t k = 0; k < b->nbin; k++) {
            unsigned char c = (unsigned char)(0x3f + k * 7);
            sb_add(&body, &c, 1);
        }
        char url[256], ihcl[96];
        snprintf(url, sizeof url, "%s%s", srv.base, b->path ? b->path : INFER);
        const char *h[3] = { NULL, NULL, NULL };
        int nh = 0;
        if (b->hdr && strcmp(b->hdr, "IHCL") == 0) {
            snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", strlen(b->json));
            h[nh++] = ihcl;
        } else if (b->hdr) {
            h[nh++] = b->hdr;
        }
        if (b->hdr2)
            h[nh++] = b->hdr2;
        hc_resp r;
        const char *method = b->method ? b->method : "POST";
        bool has_body = b->json || b->nbin;
        hc_request(method, url, h, has_body ? (body.p ? body.p : "") : NULL, body.len, &r);
        if (r.status == 0)
            server_check(b->name);
        char what[160];
        snprintf(what, sizeof what, "malformed: %s", b->name);
        check_error(what, &r, b->status, b->words);
        if (b->status == 405) {
            const char *allow = hc_header(&r, "Allow");
            CHECK(allow && strstr(allow, strcmp(b->path ? b->path : "", "/v2/health/live") == 0
                                             ? "GET" : "POST"),
                  "%s: Allow header '%s'", what, allow ? allow : "(none)");
        }
        hc_resp_free(&r);
        free(body.p);
        n++;
    }
    fprintf(stderr, "  %d malformed requests\n", n);
    CHECK(n >= 30, "at least 30 malformed requests");

    /* After all of them a good request succeeds. */
    static const double v[4] = { -1, -0.5, 0, 0.30000001192092896 };
    int64_t d4[1] = { 4 };
    tcase t;
    mini_case(&t, "good after malformed", QDQ_FLOAT32, d4, 1, v, -1);
    CHECK(tc_compute(&t) == 0, "local compute");
    for (size_t l = 0; l < N_LAYOUTS; l++)
        run_layout(&t, layouts[l].tag, &layouts[l].o, layouts[l].path, NULL);
    tc_free(&t);
}

/* The layouts that killed the server, and the runs left out because of it. */
static void report_skipped(void)
{
    for (size_t l = 0; l < N_LAYOUTS; l++)
        CHECK(layout_deaths[l] == 0, "layout '%s' killed the server %d times", layouts[l].tag,
              layout_deaths[l]);
    CHECK(runs_skipped == 0, "%d vector runs left out after a layout killed the server 3 times",
          runs_skipped);
}

int main(void)
{
    long long t0 = sp_now_ms();
    if (sp_start(&srv, srv_args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&srv);
        return check_done();
    }
    cJSON *cases = load_vectors(&tc_files[0]), *tf = load_vectors(&tc_files[1]);
    test_metadata();
    test_triton_layout();
    test_outputs_selection();
    if (cases) {
        test_vectors(cases, &tc_files[0]);
        fprintf(stderr, "vectors: %lld ms\n", sp_now_ms() - t0);
        test_compression(cases);
    }
    if (tf) {
        test_vectors(tf, &tc_files[1]);
        fprintf(stderr, "TensorFlow's vectors: %lld ms\n", sp_now_ms() - t0);
    }
    test_keepalive();
    test_malformed();
    fprintf(stderr, "malformed: %lld ms\n", sp_now_ms() - t0);
    test_big();
    fprintf(stderr, "big: %lld ms\n", sp_now_ms() - t0);
    test_metadata();
    report_skipped();
    cJSON_Delete(cases);
    cJSON_Delete(tf);
    hc_thread_done();
    CHECK(sp_alive(&srv), "the server died during the tests");
    CHECK(srv_deaths == 0, "the server died %d times (restarted each time)", srv_deaths);
    CHECK(sp_stop(&srv, 20000) == 0, "the server did not exit 0 on SIGTERM");
    sp_release(&srv);
    fprintf(stderr, "test_kserve: %lld ms\n", sp_now_ms() - t0);
    return check_done();
}
