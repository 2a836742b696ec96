/*
 * The native route against a real server, bit for bit.
 *
 * Every case of tests/vectors/cases.json and tf_cases.json (TensorFlow's own test cases) goes
 * through each format: JSON nested (float32), JSON object with "data", JSON object with "b64",
 * raw bytes, and .npy (and raw/npy again with Accept: application/json). Outputs and the six
 * reported ranges must have the exact bits of the expected values (NaN matches NaN; -0.0
 * differs from 0.0); every expected_error case must be a 400 with a JSON {"error": ...} (that
 * contains the expected word, for cases.json).
 *
 * Every vector again as variants: bodies without Content-Length (chunked, also in 3-byte pieces
 * that split elements and the .npy header), .npy 2.0 and 3.0, the other dtype spellings (FP32,
 * half, ...), and nested "data".
 *
 * Then: big tensors (4M float32 raw, 200k-element JSON, 1M npy, thousands of channels) compared
 * with the independent reference run here (tests/lib/ref.h), which exercises the worker pool
 * (bodies over --inline-bytes); Accept; keep-alive; X-Request-Id; the health endpoints; the
 * compressed bodies of docs/api.md, "Compression".
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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


static sp_server srv;
static const char *const srv_args[] = { "--workers", "2", "--drain-timeout", "10", NULL };
static int srv_deaths;

/*
 * After a request got no answer: if the server died, count it as a failure (its output is
 * printed) and start a new one so that the rest of the tests still say something.
 */
static void server_check(const char *what)
{
    if (sp_alive(&srv))
        return;
    srv_deaths++;
    CHECK(0, "the server died at '%s' (exit status %d)", what, srv.exit_status);
    char *log = sp_log_dup(&srv);
    size_t n = log ? strlen(log) : 0;
    fprintf(stderr, "server output:\n%s\n", log ? (n > 3000 ? log + n - 3000 : log) : "");
    free(log);
    sp_release(&srv);
    hc_thread_done();
    if (srv_deaths > 5 || sp_start(&srv, srv_args) != 0) {
        fprintf(stderr, "giving up\n");
        exit(check_done() | 1);
    }
}

/* A number as JSON (and query) text: exact, with the non-finite tokens. */
static void sb_num(sbuf *b, double v)
{
    if (isnan(v))
        sb_add(b, "NaN", 3);
    else if (isinf(v))
        sb_printf(b, "%s", v < 0 ? "-Infinity" : "Infinity");
    else
        sb_printf(b, "%.17g", v);
}

/* The same in a query string, as short as reads back exactly ('+' percent-encoded). */
static void sb_qnum(sbuf *b, double v)
{
    sbuf t = { 0 };
    if (isfinite(v)) {
        char tmp[40];
        for (int digits = 6; digits <= 17; digits++) {
            snprintf(tmp, sizeof tmp, "%.*g", digits, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        sb_add(&t, tmp, strlen(tmp));
    } else {
        sb_num(&t, v);
    }
    for (size_t i = 0; i < t.len; i++) {
        if (t.p[i] == '+')
            sb_add(b, "%2B", 3);
        else
            sb_add(b, &t.p[i], 1);
    }
    free(t.p);
}

/* ---- comparing answers ---- */

/* Compares count elements; reports the first few differences. */
static void compare_tensor(const char *what, const tcase *t, const void *got)
{
    int bad = tc_tensor_diffs(what, t, got);
    CHECK(bad == 0, "%s: %d of %" PRIu64 " output elements differ", what, bad, t->count);
}

/* The output array of a JSON answer, nested by dims[0..rank) (stopping at a zero dim). */
static bool nested_read(const cJSON *j, const tcase *t, int level, void *got, size_t *n)
{
    if (level == t->rank || (level > 0 && t->dims[level - 1] == 0)) {
        if (level > 0 && t->dims[level - 1] == 0)
            return true;
        if (*n >= t->count)
            return false;
        bool ok = tc_elem_parse(t->dt, hc_json_num(j), got, *n);
        (*n)++;
        return ok;
    }
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != t->dims[level])
        return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
        if (!nested_read(e, t, level + 1, got, n))
            return false;
    return true;
}

/* The six ranges of a JSON answer. */
static void check_json_ranges(const char *what, const tcase *t, const cJSON *o)
{
    for (int k = 0; k < 6; k++) {
        const cJSON *e = cJSON_GetObjectItem(o, tu_range_keys[k]);
        if (!t->per_channel) {
            CHECK(tc_range_same(t->dt, hc_json_num(e), t->rng[k][0]), "%s: %s is %s, want %.17g",
                  what, tu_range_keys[k], hc_json_num(e) ? hc_json_num(e) : "(not a number)",
                  t->rng[k][0]);
            continue;
        }
        CHECK(cJSON_IsArray(e) && (uint64_t)cJSON_GetArraySize(e) == t->channels,
              "%s: %s must be an array of %" PRIu64, what, tu_range_keys[k], t->channels);
        if (!cJSON_IsArray(e))
            continue;
        uint64_t c = 0;
        const cJSON *v;
        int bad = 0;
        cJSON_ArrayForEach(v, e) {
            if (c < t->channels && !tc_range_same(t->dt, hc_json_num(v), t->rng[k][c]) && bad++ < 3)
                CHECK(0, "%s: %s[%" PRIu64 "] is %s, want %.17g", what, tu_range_keys[k], c,
                      hc_json_num(v) ? hc_json_num(v) : "(not a number)", t->rng[k][c]);
            c++;
        }
        CHECK(bad == 0, "%s: %s: %d channels differ", what, tu_range_keys[k], bad);
    }
}

typedef enum form { F_NESTED, F_DATA, F_B64, F_RAW, F_NPY } form;

/* Request variants, set around run_form by test_variants. */
static struct {
    int npy_major;          /* .npy format version sent (and expected back): 1, 2 or 3 */
    const char *dtype_name; /* JSON dtype spelling (NULL: the canonical name) */
    bool data_nested;       /* JSON "data" nested by the shape instead of flat */
    bool chunked;           /* bodies sent without Content-Length */
    size_t read_chunk;      /* bodies sent in pieces of this size (0: as curl likes) */
    const char *tag;        /* shown in messages */
} var = { 1, NULL, false, false, 0, "" };
static const char *const form_names[] = { "nested", "data", "b64", "raw", "npy" };

static bool ctype_is(const hc_resp *r, const char *want)
{
    const char *ct = hc_header(r, "Content-Type");
    return ct && strcmp(ct, want) == 0;
}

/* An error answer: status, exact Content-Type, {"error": "..."} containing word. */
static void check_error(const char *what, const hc_resp *r, long status, const char *word)
{
    CHECK(r->status == status, "%s: status %ld, want %ld (body %.300s)", what, r->status, status,
          r->body);
    CHECK(ctype_is(r, "application/json"), "%s: error Content-Type is '%s'", what,
          hc_header(r, "Content-Type") ? hc_header(r, "Content-Type") : "(none)");
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsString(e), "%s: error body is not {\"error\": string}: %.300s", what, r->body);
    if (word && cJSON_IsString(e))
        CHECK(strstr(e->valuestring, word), "%s: message '%s' lacks '%s'", what, e->valuestring,
              word);
    cJSON_Delete(j);
}

/* A JSON answer in form f (nested, data, or b64). */
static void check_json_answer(const char *what, const tcase *t, const hc_resp *r, form f)
{
    if (t->want_err) {
        check_error(what, r, 400, t->want_err);
        return;
    }
    CHECK(r->status == 200, "%s: status %ld (%.300s)", what, r->status, r->body);
    CHECK(ctype_is(r, "application/json"), "%s: Content-Type '%s'", what,
          hc_header(r, "Content-Type") ? hc_header(r, "Content-Type") : "(none)");
    if (r->status != 200)
        return;
    cJSON *j = hc_json_parse_exact(r->body, r->len);
    CHECK(j != NULL, "%s: the answer is not JSON: %.200s", what, r->body);
    if (!j)
        return;
    const cJSON *out = cJSON_GetObjectItem(j, "output");
    size_t es = qdq_dtype_size(t->dt);
    void *got = calloc(t->count + 1, es);
    size_t n = 0;
    bool ok = false;
    if (f == F_NESTED) {
        ok = nested_read(out, t, 0, got, &n) && n == t->count;
        CHECK(ok, "%s: output is not nested like the input", what);
    } else {
        CHECK(cJSON_IsObject(out), "%s: output must be an object", what);
        const cJSON *dt = cJSON_GetObjectItem(out, "dtype");
        const cJSON *sh = cJSON_GetObjectItem(out, "shape");
        if (dt)
            CHECK(cJSON_IsString(dt) && tu_dtype(dt->valuestring) == t->dt, "%s: output dtype",
                  what);
        if (sh) {
            bool same = cJSON_IsArray(sh) && cJSON_GetArraySize(sh) == t->rank;
            for (int i = 0; same && i < t->rank; i++) {
                const char *txt = hc_json_num(cJSON_GetArrayItem(sh, i));
                same = txt && strtoll(txt, NULL, 10) == t->dims[i];
            }
            CHECK(same, "%s: output shape differs from the input's", what);
        }
        if (f == F_B64) {
            const cJSON *b = cJSON_GetObjectItem(out, "b64");
            CHECK(cJSON_IsString(b), "%s: output has no \"b64\" string", what);
            size_t blen = 0;
            unsigned char *bytes = cJSON_IsString(b) ? hc_b64_decode(b->valuestring,
                                                                      strlen(b->valuestring), &blen)
                                                     : NULL;
            ok = bytes && blen == t->count * es;
            CHECK(ok, "%s: b64 decodes to %zu bytes, want %" PRIu64, what, blen, t->count * es);
            if (ok)
                memcpy(got, bytes, blen);
            free(bytes);
        } else {
            const cJSON *d = cJSON_GetObjectItem(out, "data"), *e;
            ok = cJSON_IsArray(d) && (uint64_t)cJSON_GetArraySize(d) == t->count;
            CHECK(ok, "%s: output.data must be a flat array of %" PRIu64, what, t->count);
            if (ok)
                cJSON_ArrayForEach(e, d) {
                    if (!tc_elem_parse(t->dt, hc_json_num(e), got, n)) {
                        CHECK(0, "%s: output.data[%zu] is not a %s number", what, n,
                              qdq_dtype_name(t->dt));
                        ok = false;
                        break;
                    }
                    n++;
                }
        }
    }
    if (ok)
        compare_tensor(what, t, got);
    free(got);
    check_json_ranges(what, t, j);
    cJSON_Delete(j);
}

/* The X-QDQ-* headers of a raw or npy answer. */
static void check_range_headers(const char *what, const tcase *t, const hc_resp *r)
{
    const char *dt = hc_header(r, "X-QDQ-Dtype");
    CHECK(dt && strcmp(dt, qdq_dtype_name(t->dt)) == 0, "%s: X-QDQ-Dtype '%s'", what,
          dt ? dt : "(none)");
    sbuf sh = { 0 };
    sb_add(&sh, "", 0);
    for (int i = 0; i < t->rank; i++)
        sb_printf(&sh, "%s%" PRId64, i ? "," : "", t->dims[i]);
    const char *gs = hc_header(r, "X-QDQ-Shape");
    CHECK(gs && strcmp(gs, sh.p) == 0, "%s: X-QDQ-Shape '%s', want '%s'", what, gs ? gs : "(none)",
          sh.p);
    free(sh.p);
    /* Thousands of channels may not fit in response headers: the server may leave them out and
     * say so (the JSON answer has them). Never for a few channels. */
    const char *omitted = hc_header(r, "X-QDQ-Ranges-Omitted");
    if (omitted) {
        CHECK(t->channels >= 512, "%s: ranges omitted for only %" PRIu64 " channels: %s", what,
              t->channels, omitted);
        for (int k = 0; k < 6; k++)
            CHECK(hc_header(r, tc_range_headers[k]) == NULL, "%s: %s sent although omitted", what,
                  tc_range_headers[k]);
        return;
    }
    for (int k = 0; k < 6; k++) {
        const char *v = hc_header(r, tc_range_headers[k]);
        CHECK(v != NULL, "%s: no %s header", what, tc_range_headers[k]);
        if (!v)
            continue;
        char *copy = strdup(v), *save = NULL, *tok;
        uint64_t c = 0;
        int bad = 0;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), c++) {
            while (*tok == ' ')
                tok++;
            if (c < t->channels && !tc_range_same(t->dt, tok, t->rng[k][c]) && bad++ < 3)
                CHECK(0, "%s: %s[%" PRIu64 "] is '%s', want %.17g", what, tc_range_headers[k], c, tok,
                      t->rng[k][c]);
        }
        CHECK(c == t->channels, "%s: %s has %" PRIu64 " values, want %" PRIu64, what,
              tc_range_headers[k], c, t->channels);
        CHECK(bad == 0, "%s: %s: %d values differ", what, tc_range_headers[k], bad);
        free(copy);
    }
}

/* ---- .npy ---- */

/* A .npy v(major).0 header for descr and shape, padded to a multiple of 64. */
static void npy_header(sbuf *b, int major, const char *descr, const int64_t *dims, int rank)
{
    sbuf d = { 0 };
    sb_printf(&d, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++)
        sb_printf(&d, "%" PRId64 "%s", dims[i], rank == 1 ? "," : i + 1 < rank ? ", " : "");
    sb_printf(&d, "), }");
    size_t pre = major == 1 ? 10 : 12;
    size_t total = (pre + d.len + 1 + 63) / 64 * 64;
    while (pre + d.len + 1 < total)
        sb_add(&d, " ", 1);
    sb_add(&d, "\n", 1);
    unsigned char m[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0 };
    if (major == 1) {
        m[8] = (unsigned char)(d.len & 0xff);
        m[9] = (unsigned char)(d.len >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            m[8 + i] = (unsigned char)(d.len >> (8 * i));
    }
    sb_add(b, m, pre);
    sb_add(b, d.p, d.len);
    free(d.p);
}

static const char *npy_descr(qdq_dtype dt, bool bf16_u2)
{
    switch (dt) {
    case QDQ_FLOAT32: return "<f4";
    case QDQ_FLOAT64: return "<f8";
    case QDQ_FLOAT16: return "<f2";
    default: return bf16_u2 ? "<u2" : "<V2";
    }
}

/* Checks a .npy answer's header (version, descr, order, shape); returns the data offset or 0. */
static size_t npy_check_header(const char *what, const tcase *t, const hc_resp *r, int major,
                               const char *descr)
{
    const unsigned char *b = (const unsigned char *)r->body;
    if (r->len < 12 || memcmp(b, "\x93NUMPY", 6) != 0) {
        CHECK(0, "%s: the answer is not a .npy file", what);
        return 0;
    }
    CHECK(b[6] == major && b[7] == 0, "%s: npy version %d.%d, want %d.0", what, b[6], b[7], major);
    size_t pre = b[6] == 1 ? 10 : 12;
    size_t hl = b[6] == 1 ? (size_t)(b[8] | b[9] << 8)
                          : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
                                (size_t)b[11] << 24;
    if (pre + hl > r->len) {
        CHECK(0, "%s: npy header length %zu beyond the body", what, hl);
        return 0;
    }
    char *dict = strndup(r->body + pre, hl);
    char want_descr[32];
    snprintf(want_descr, sizeof want_descr, "'descr': '%s'", descr);
    CHECK(strstr(dict, want_descr), "%s: npy header %s lacks %s", what, dict, want_descr);
    CHECK(strstr(dict, "'fortran_order': False"), "%s: npy header %s not C order", what, dict);
    const char *sh = strstr(dict, "'shape': (");
    bool same = sh != NULL;
    if (sh) {
        const char *p = sh + strlen("'shape': (");
        for (int i = 0; same && i < t->rank; i++) {
            char *end;
            long long v = strtoll(p, &end, 10);
            same = end != p && v == t->dims[i];
            p = end;
            while (*p == ',' || *p == ' ' || *p == 'L')
                p++;
        }
        same = same && *p == ')';
    }
    CHECK(same, "%s: npy shape in %s differs", what, dict);
    CHECK(dict[hl - 1] == '\n', "%s: npy header does not end with a newline", what);
    CHECK((pre + hl) % 16 == 0, "%s: npy data offset %zu is not aligned", what, pre + hl);
    free(dict);
    return pre + hl;
}

/* ---- requests ---- */

static void attrs_json(sbuf *b, const tcase *t, bool all)
{
    const qdq_attrs *a = &t->attrs;
    if (all || a->num_bits != 8)
        sb_printf(b, ", \"num_bits\": %d", a->num_bits);
    if (all || !a->signed_input)
        sb_printf(b, ", \"signed_input\": %s", a->signed_input ? "true" : "false");
    if (all || a->range_given)
        sb_printf(b, ", \"range_given\": %s", a->range_given ? "true" : "false");
    if (all || strcmp(t->round_mode, "HALF_TO_EVEN"))
        sb_printf(b, ", \"round_mode\": \"%s\"", t->round_mode);
    if (all || a->narrow_range)
        sb_printf(b, ", \"narrow_range\": %s", a->narrow_range ? "true" : "false");
    if (all || a->axis != -1)
        sb_printf(b, ", \"axis\": %" PRId64, a->axis);
    for (int m = 0; m < 2; m++) {
        bool has = m ? t->has_max : t->has_min, arr = m ? t->max_array : t->min_array;
        int n = m ? t->n_max : t->n_min;
        const double *v = m ? t->max : t->min;
        if (!has)
            continue;
        sb_printf(b, ", \"%s\": %s", m ? "input_max" : "input_min", arr ? "[" : "");
        for (int i = 0; i < n; i++) {
            if (i)
                sb_add(b, ", ", 2);
            sb_num(b, v[i]);
        }
        if (arr)
            sb_add(b, "]", 1);
    }
}

static void nested_json(sbuf *b, const tcase *t, int level, size_t *i)
{
    if (level == t->rank) {
        sb_num(b, tu_load(t->dt, t->in, (*i)++));
        return;
    }
    sb_add(b, "[", 1);
    for (int64_t k = 0; k < t->dims[level]; k++) {
        if (k)
            sb_add(b, ",", 1);
        nested_json(b, t, level + 1, i);
    }
    sb_add(b, "]", 1);
}

static void json_body(sbuf *b, const tcase *t, form f)
{
    sb_add(b, "{\"input\": ", 10);
    if (f == F_NESTED) {
        size_t i = 0;
        nested_json(b, t, 0, &i);
    } else {
        sb_printf(b, "{\"dtype\": \"%s\", \"shape\": [",
                  var.dtype_name ? var.dtype_name : qdq_dtype_name(t->dt));
        for (int i = 0; i < t->rank; i++)
            sb_printf(b, "%s%" PRId64, i ? ", " : "", t->dims[i]);
        sb_add(b, "], ", 3);
        if (f == F_DATA && var.data_nested && t->rank > 0) {
            size_t i = 0;
            sb_add(b, "\"data\": ", 8);
            nested_json(b, t, 0, &i);
            sb_add(b, "}", 1);
        } else if (f == F_B64) {
            char *s = hc_b64_encode(t->in, t->count * qdq_dtype_size(t->dt));
            sb_printf(b, "\"b64\": \"%s\"}", s);
            free(s);
        } else {
            sb_add(b, "\"data\": [", 9);
            for (uint64_t i = 0; i < t->count; i++) {
                if (i)
                    sb_add(b, ",", 1);
                sb_num(b, tu_load(t->dt, t->in, i));
            }
            sb_add(b, "]}", 2);
        }
    }
    attrs_json(b, t, f != F_NESTED);
    sb_add(b, "}", 1);
}

/* The query string of the raw and npy forms. */
static void query(sbuf *b, const tcase *t, form f, bool bf16_flag)
{
    const qdq_attrs *a = &t->attrs;
    sb_printf(b, "/quantize-dequantize?num_bits=%d&signed_input=%s&range_given=%s&round_mode=%s"
              "&narrow_range=%s&axis=%" PRId64, a->num_bits, a->signed_input ? "true" : "false",
              a->range_given ? "true" : "false", t->round_mode, a->narrow_range ? "true" : "false",
              a->axis);
    if (f == F_RAW) {
        sb_printf(b, "&dtype=%s&shape=", qdq_dtype_name(t->dt));
        for (int i = 0; i < t->rank; i++)
            sb_printf(b, "%s%" PRId64, i ? "," : "", t->dims[i]);
    } else if (bf16_flag) {
        sb_add(b, "&dtype=bfloat16", 15);
    }
    for (int m = 0; m < 2; m++) {
        if (!(m ? t->has_max : t->has_min))
            continue;
        sb_printf(b, "&%s=", m ? "input_max" : "input_min");
        int n = m ? t->n_max : t->n_min;
        for (int i = 0; i < n; i++) {
            if (i)
                sb_add(b, ",", 1);
            sb_qnum(b, (m ? t->max : t->min)[i]);
        }
    }
}

/* Sends t in form f and checks the answer. accept_json: raw/npy asking for JSON back. */
static void run_form(const tcase *t, form f, bool accept_json, bool bf16_u2)
{
    char what[192];
    snprintf(what, sizeof what, "%s [%s%s%s%s]", t->name, form_names[f],
             accept_json ? ", Accept json" : "", bf16_u2 ? ", <u2" : "", var.tag);
    sbuf url = { 0 }, body = { 0 };
    sb_printf(&url, "%s", srv.base);
    const char *ct;
    if (f <= F_B64) {
        sb_add(&url, "/quantize-dequantize", 20);
        json_body(&body, t, f);
        ct = "Content-Type: application/json";
    } else {
        query(&url, t, f, f == F_NPY && t->dt == QDQ_BFLOAT16);
        if (f == F_NPY)
            npy_header(&body, var.npy_major, npy_descr(t->dt, bf16_u2), t->dims, t->rank);
        sb_add(&body, t->in, t->count * qdq_dtype_size(t->dt));
        ct = f == F_RAW ? "Content-Type: application/octet-stream"
                        : "Content-Type: application/x-npy";
    }
    const char *h[] = { ct, accept_json ? "Accept: application/json" : NULL, NULL };
    hc_resp r;
    hc_opts o = { .chunked = var.chunked, .read_chunk = var.read_chunk };
    hc_request_ex("POST", url.p, h, body.p ? body.p : "", body.len, &o, &r);
    CHECK(r.status != 0, "%s: no answer: %s", what, r.err);
    if (r.status == 0) {
        server_check(what);
    } else if (f <= F_B64 || accept_json) {
        check_json_answer(what, t, &r, f <= F_B64 ? f : F_DATA);
    } else if (t->want_err) {
        check_error(what, &r, 400, t->want_err);
    } else {
        CHECK(r.status == 200, "%s: status %ld (%.300s)", what, r.status, r.body);
        const char *want_ct = f == F_RAW ? "application/octet-stream" : "application/x-npy";
        CHECK(ctype_is(&r, want_ct), "%s: Content-Type '%s', want %s", what,
              hc_header(&r, "Content-Type") ? hc_header(&r, "Content-Type") : "(none)", want_ct);
        if (r.status == 200) {
            size_t off = 0;
            if (f == F_NPY)
                off = npy_check_header(what, t, &r, var.npy_major, npy_descr(t->dt, bf16_u2));
            size_t want_len = t->count * qdq_dtype_size(t->dt);
            bool ok = (f == F_RAW || off) && r.len - off == want_len;
            CHECK(ok, "%s: %zu data bytes, want %zu", what, r.len - off, want_len);
            if (ok) {
                void *got = malloc(want_len + 1);
                memcpy(got, r.body + off, want_len);
                compare_tensor(what, t, got);
                free(got);
            }
            check_range_headers(what, t, &r);
        }
    }
    hc_resp_free(&r);
    free(url.p);
    free(body.p);
}

static void run_all_forms(const tcase *t)
{
    if (t->dt == QDQ_FLOAT32)
        run_form(t, F_NESTED, false, false);
    run_form(t, F_DATA, false, false);
    run_form(t, F_B64, false, false);
    run_form(t, F_RAW, false, false);
    run_form(t, F_NPY, false, false);
    if (t->dt == QDQ_BFLOAT16)
        run_form(t, F_NPY, false, true);
    if (!t->want_err) {
        run_form(t, F_RAW, true, false);
        run_form(t, F_NPY, true, false);
    }
}

static void test_vectors(void)
{
    for (int f = 0; f < TC_FILES; f++) {
        cJSON *cases = tc_load(&tc_files[f]);
        CHECK(cJSON_GetArraySize(cases) >= tc_files[f].min_cases, "%s must parse (%d+ cases)",
              tc_files[f].path, tc_files[f].min_cases);
        const cJSON *c;
        cJSON_ArrayForEach(c, cases) {
            tcase t;
            tc_from_vector(&t, c, &tc_files[f]);
            run_all_forms(&t);
            tc_free(&t);
        }
        cJSON_Delete(cases);
    }
}

/* Every vector again: without Content-Length; .npy 2.0 and 3.0; other dtype spellings; nested
 * "data". */
static void test_variants(void)
{
    char *text = tu_read_file(tu_data_path("vectors/cases.json"), NULL);
    cJSON *cases = cJSON_Parse(text);
    const cJSON *c;
    static const char *const aliases[4][2] = { { "FP32", NULL }, { "FP64", NULL },
                                               { "half", "FP16" }, { "BF16", NULL } };
    cJSON_ArrayForEach(c, cases) {
        tcase t;
        tc_from_json(&t, c);
        var.chunked = true;
        var.tag = ", chunked";
        if (t.dt == QDQ_FLOAT32)
            run_form(&t, F_NESTED, false, false);
        run_form(&t, F_DATA, false, false);
        run_form(&t, F_RAW, false, false);
        run_form(&t, F_NPY, false, false);
        /* Pieces of 3 bytes: elements and the .npy header split across chunks. */
        var.read_chunk = 3;
        var.tag = ", chunked in 3-byte pieces";
        run_form(&t, F_RAW, false, false);
        run_form(&t, F_NPY, false, false);
        run_form(&t, F_DATA, false, false);
        var.chunked = false;
        var.tag = ", 3-byte pieces";
        run_form(&t, F_RAW, false, false);
        run_form(&t, F_NPY, false, false);
        var.read_chunk = 0;
        for (int major = 2; major <= 3; major++) {
            var.npy_major = major;
            var.tag = major == 2 ? ", npy 2.0" : ", npy 3.0";
            run_form(&t, F_NPY, false, false);
        }
        var.npy_major = 1;
        for (int k = 0; k < 2 && aliases[t.dt][k]; k++) {
            var.dtype_name = aliases[t.dt][k];
            var.tag = aliases[t.dt][k];
            run_form(&t, F_DATA, false, false);
            run_form(&t, F_B64, false, false);
        }
        var.dtype_name = NULL;
        var.data_nested = true;
        var.tag = ", nested data";
        run_form(&t, F_DATA, false, false);
        var.data_nested = false;
        var.tag = "";
        tc_free(&t);
    }
    cJSON_Delete(cases);
    free(text);
}

/* ---- big tensors against the reference run here ---- */

/* The big tensors' values (seeded in test_big: the same tensors every run). */
static rng_gen big_rng;

static void fill_random(tcase *t, bool per_channel_scale)
{
    size_t es = qdq_dtype_size(t->dt);
    t->count = 1;
    for (int i = 0; i < t->rank; i++)
        t->count *= (uint64_t)t->dims[i];
    t->in = malloc(t->count * es + 1);
    uint64_t inner = 1, ch = 1;
    if (t->attrs.axis >= 0) {
        ch = (uint64_t)t->dims[t->attrs.axis];
        for (int i = (int)t->attrs.axis + 1; i < t->rank; i++)
            inner *= (uint64_t)t->dims[i];
    }
    for (uint64_t i = 0; i < t->count; i++) {
        uint64_t c = (i / inner) % ch;
        double scale = per_channel_scale ? ldexp(1.0, (int)(c % 13) - 6) : 3.0;
        tu_store(t->dt, t->in, i, rng_value(&big_rng, scale));
    }
}

static void big_case(const char *name, qdq_dtype dt, const int64_t *dims, int rank, int64_t axis,
                     bool range_given, int round_mode, int num_bits, form f, bool accept_json)
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
    fill_random(&t, axis >= 0);
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
        run_form(&t, f, accept_json, false);
    else
        CHECK(0, "%s: the local reference failed", name);
    fprintf(stderr, "  %s: %lld ms\n", name, sp_now_ms() - t0);
    tc_free(&t);
}

static void test_big(void)
{
    rng_seed(&big_rng, 20240611);
    int64_t flat[1] = { 4 << 20 };
    int64_t rows[2] = { 256, 16384 }, cols[2] = { 16384, 256 };
    big_case("big raw 4M per-tensor", QDQ_FLOAT32, flat, 1, -1, false, QDQ_HALF_TO_EVEN, 8, F_RAW,
             false);
    big_case("big raw 4M per-tensor range_given", QDQ_FLOAT32, flat, 1, -1, true, QDQ_HALF_UP, 8,
             F_RAW, false);
    big_case("big raw 4M axis 0", QDQ_FLOAT32, rows, 2, 0, false, QDQ_HALF_TO_EVEN, 6, F_RAW,
             false);
    big_case("big raw 4M last axis", QDQ_FLOAT32, cols, 2, 1, false, QDQ_HALF_UP, 8, F_RAW, false);
    big_case("big raw 4M axis 0 range_given", QDQ_FLOAT32, rows, 2, 0, true, QDQ_HALF_TO_EVEN, 8,
             F_RAW, false);
    big_case("big raw 4M last axis range_given", QDQ_FLOAT32, cols, 2, 1, true, QDQ_HALF_UP, 4,
             F_RAW, false);
    int64_t m1[2] = { 1024, 1024 }, m1f64[1] = { 1 << 20 };
    big_case("big npy 1M float16 axis 1", QDQ_FLOAT16, m1, 2, 1, false, QDQ_HALF_TO_EVEN, 8, F_NPY,
             false);
    big_case("big raw 1M float64", QDQ_FLOAT64, m1f64, 1, -1, false, QDQ_HALF_TO_EVEN, 16, F_RAW,
             false);
    int64_t j200[2] = { 400, 500 }, jflat[1] = { 200000 };
    big_case("big JSON nested 200k", QDQ_FLOAT32, j200, 2, -1, false, QDQ_HALF_TO_EVEN, 8,
             F_NESTED, false);
    big_case("big JSON data 200k axis 1", QDQ_FLOAT32, j200, 2, 1, false, QDQ_HALF_UP, 8, F_DATA,
             false);
    big_case("big JSON data 200k bfloat16", QDQ_BFLOAT16, jflat, 1, -1, true, QDQ_HALF_TO_EVEN, 8,
             F_DATA, false);
    big_case("big JSON b64 200k float64", QDQ_FLOAT64, jflat, 1, -1, false, QDQ_HALF_TO_EVEN, 8,
             F_B64, false);
    big_case("big raw 200k Accept json", QDQ_FLOAT32, jflat, 1, -1, false, QDQ_HALF_TO_EVEN, 8,
             F_RAW, true);
    var.chunked = true;
    var.tag = ", chunked";
    big_case("big raw 4M chunked", QDQ_FLOAT32, flat, 1, -1, false, QDQ_HALF_UP, 8, F_RAW, false);
    big_case("big npy 4M chunked last axis", QDQ_FLOAT32, cols, 2, 1, true, QDQ_HALF_TO_EVEN, 8,
             F_NPY, false);
    var.read_chunk = 4093; /* pieces that split elements */
    var.tag = ", chunked in 4093-byte pieces";
    big_case("big raw 4M range_given odd pieces", QDQ_FLOAT32, flat, 1, -1, true, QDQ_HALF_UP, 8,
             F_RAW, false);
    int64_t h2m[2] = { 256, 8192 }, d512k[2] = { 2048, 256 };
    big_case("big raw 2M float16 axis 0 odd pieces", QDQ_FLOAT16, h2m, 2, 0, true, QDQ_HALF_UP, 8,
             F_RAW, false);
    big_case("big npy 512k float64 odd pieces", QDQ_FLOAT64, d512k, 2, 1, false, QDQ_HALF_TO_EVEN,
             12, F_NPY, false);
    var.read_chunk = 0;
    var.chunked = false;
    var.tag = "";
    /* Many channels: thousands of comma-separated values in each X-QDQ-* header. */
    int64_t c1k[2] = { 2, 1024 }, c4k[2] = { 4, 4096 }, c2k[2] = { 2048, 2 };
    big_case("raw 1024 channels", QDQ_FLOAT32, c1k, 2, 1, false, QDQ_HALF_TO_EVEN, 8, F_RAW, false);
    big_case("raw 4096 channels", QDQ_FLOAT32, c4k, 2, 1, false, QDQ_HALF_TO_EVEN, 8, F_RAW, false);
    big_case("npy float64 1024 channels", QDQ_FLOAT64, c1k, 2, 1, false, QDQ_HALF_UP, 8, F_NPY,
             false);
    /* 2 x 2048 bounds in the query (about 40 KB), answered as JSON. */
    big_case("raw 2048 channels axis 0 range_given Accept json", QDQ_FLOAT32, c2k, 2, 0, true,
             QDQ_HALF_UP, 8, F_RAW, true);
    big_case("raw 4096 channels Accept json", QDQ_FLOAT32, c4k, 2, 1, false, QDQ_HALF_TO_EVEN, 8,
             F_RAW, true);
    big_case("JSON 4096 channels", QDQ_FLOAT32, c4k, 2, 1, true, QDQ_HALF_TO_EVEN, 8, F_DATA,
             false);
    var.chunked = false;
    var.tag = "";
}

/* ---- request ids, health, content types ---- */

static bool is_hex16(const char *s)
{
    if (!s || strlen(s) != 16)
        return false;
    for (int i = 0; i < 16; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

static void test_request_id(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    const char *body = "{\"input\": [1.0, -2.0]}";
    const char *h1[] = { "Content-Type: application/json", "X-Request-Id: test-req-42", NULL };
    hc_resp r;
    hc_request("POST", url, h1, body, strlen(body), &r);
    CHECK(r.status == 200, "request id: status %ld", r.status);
    const char *id = hc_header(&r, "X-Request-Id");
    CHECK(id && strcmp(id, "test-req-42") == 0, "X-Request-Id not echoed: '%s'",
          id ? id : "(none)");
    hc_resp_free(&r);

    const char *h2[] = { "Content-Type: application/json", NULL };
    char first[32] = "";
    for (int i = 0; i < 2; i++) {
        hc_request("POST", url, h2, body, strlen(body), &r);
        id = hc_header(&r, "X-Request-Id");
        CHECK(is_hex16(id), "generated X-Request-Id '%s' is not 16 hex digits", id ? id : "(none)");
        if (i == 0 && id)
            snprintf(first, sizeof first, "%s", id);
        else if (id)
            CHECK(strcmp(first, id) != 0, "two requests got the same X-Request-Id %s", id);
        hc_resp_free(&r);
    }
    /* Errors carry one too, echoed or generated. */
    const char *h3[] = { "X-Request-Id: err-id-7", NULL };
    snprintf(url, sizeof url, "%s/no-such-route", srv.base);
    hc_request("GET", url, h3, NULL, 0, &r);
    CHECK(r.status == 404, "unknown route: status %ld", r.status);
    id = hc_header(&r, "X-Request-Id");
    CHECK(id && strcmp(id, "err-id-7") == 0, "X-Request-Id not echoed on an error: '%s'",
          id ? id : "(none)");
    hc_resp_free(&r);
    hc_request("GET", url, NULL, NULL, 0, &r);
    CHECK(is_hex16(hc_header(&r, "X-Request-Id")), "no generated X-Request-Id on an error");
    hc_resp_free(&r);
    snprintf(url, sizeof url, "%s/healthz", srv.base);
    hc_request("GET", url, h3, NULL, 0, &r);
    id = hc_header(&r, "X-Request-Id");
    CHECK(id && strcmp(id, "err-id-7") == 0, "X-Request-Id not echoed on /healthz");
    hc_resp_free(&r);
}

static void test_health(void)
{
    static const char *const paths[] = { "/healthz", "/readyz" };
    for (int i = 0; i < 2; i++) {
        char url[128];
        snprintf(url, sizeof url, "%s%s", srv.base, paths[i]);
        hc_resp r;
        hc_request("GET", url, NULL, NULL, 0, &r);
        CHECK(r.status == 200, "GET %s: status %ld", paths[i], r.status);
        hc_resp_free(&r);
        hc_request("HEAD", url, NULL, NULL, 0, &r);
        CHECK(r.status == 200, "HEAD %s: status %ld", paths[i], r.status);
        CHECK(r.len == 0, "HEAD %s: %zu body bytes", paths[i], r.len);
        hc_resp_free(&r);
    }
}

/* Defaults: a bare nested array and a raw body without query get TensorFlow's defaults. */
static void test_defaults(void)
{
    float in[4] = { -1.0f, -0.5f, 0.0f, 0.3f }, want[4] = { -1.0f, -0.5f, 0.0f, 0.296875f };
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    const char *h[] = { "Content-Type: application/octet-stream", NULL };
    hc_resp r;
    hc_request("POST", url, h, in, sizeof in, &r);
    CHECK(r.status == 200 && r.len == sizeof want && memcmp(r.body, want, sizeof want) == 0,
          "raw with no query: status %ld, %zu bytes", r.status, r.len);
    const char *s = hc_header(&r, "X-QDQ-Shape"), *sc = hc_header(&r, "X-QDQ-Scale");
    CHECK(s && strcmp(s, "4") == 0, "raw with no query: shape '%s', want 1-D '4'", s ? s : "");
    CHECK(tc_range_same(QDQ_FLOAT32, sc, 128.0), "raw with no query: scale '%s'", sc ? sc : "");
    hc_resp_free(&r);
    /* Media types are case-insensitive and take parameters. */
    const char *h2[] = { "Content-Type: Application/JSON; charset=utf-8", NULL };
    const char *body = "{\"input\": [-1, -0.5, 0, 0.3]}";
    hc_request("POST", url, h2, body, strlen(body), &r);
    CHECK(r.status == 200 && strstr(r.body, "0.296875"), "JSON with charset: %ld %.200s",
          r.status, r.body);
    hc_resp_free(&r);
    /* Shortest printing (docs/api.md, "JSON responses"): 0.1f prints as 0.1. */
    body = "{\"input\": [0.1, -1], \"num_bits\": 30}";
    const char *h3[] = { "Content-Type: application/json", NULL };
    hc_request("POST", url, h3, body, strlen(body), &r);
    CHECK(r.status == 200 && (strstr(r.body, "\"input_max\":0.1,") ||
                              strstr(r.body, "\"input_max\": 0.1,")),
          "0.1f must print as 0.1: %.300s", r.body);
    hc_resp_free(&r);
}

/* Accept: only application/json changes the answer's format. */
static void test_accept(void)
{
    float in[4] = { -1.0f, -0.5f, 0.0f, 0.3f }, want[4] = { -1.0f, -0.5f, 0.0f, 0.296875f };
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize?shape=2,2", srv.base);
    static const struct { const char *accept, *ctype; } cases[] = {
        { "Accept: */*", "application/octet-stream" },
        { "Accept: application/octet-stream", "application/octet-stream" },
        { "Accept: application/json", "application/json" },
        { "Accept: application/json; charset=utf-8", "application/json" },
        { "Accept: Application/JSON", "application/json" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *h[] = { "Content-Type: application/octet-stream", cases[i].accept, NULL };
        hc_resp r;
        hc_request("POST", url, h, in, sizeof in, &r);
        const char *ct = hc_header(&r, "Content-Type");
        CHECK(r.status == 200 && ct && strcmp(ct, cases[i].ctype) == 0,
              "raw with '%s': status %ld, Content-Type '%s', want %s", cases[i].accept, r.status,
              ct ? ct : "(none)", cases[i].ctype);
        if (r.status == 200 && ct && !strcmp(ct, "application/octet-stream"))
            CHECK(r.len == sizeof want && memcmp(r.body, want, sizeof want) == 0,
                  "raw with '%s': wrong bytes", cases[i].accept);
        if (r.status == 200 && ct && !strcmp(ct, "application/json"))
            CHECK(strstr(r.body, "0.296875") != NULL, "raw with '%s': %.200s", cases[i].accept,
                  r.body);
        hc_resp_free(&r);
    }
    /* JSON in, JSON out, whatever Accept says. */
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    const char *h[] = { "Content-Type: application/json", "Accept: application/octet-stream",
                        NULL };
    const char *body = "{\"input\": [-1, -0.5, 0, 0.3]}";
    hc_resp r;
    hc_request("POST", url, h, body, strlen(body), &r);
    const char *ct = hc_header(&r, "Content-Type");
    CHECK(r.status == 200 && ct && !strcmp(ct, "application/json") && strstr(r.body, "0.296875"),
          "JSON with Accept octet-stream: %ld '%s'", r.status, ct ? ct : "(none)");
    hc_resp_free(&r);
    /* A client's X-Request-Id that is not a usable token is replaced by a generated one. */
    const char *h2[] = { "Content-Type: application/json", "X-Request-Id: has space", NULL };
    hc_request("POST", url, h2, body, strlen(body), &r);
    CHECK(r.status == 200 && is_hex16(hc_header(&r, "X-Request-Id")),
          "X-Request-Id 'has space' must be replaced: '%s'",
          hc_header(&r, "X-Request-Id") ? hc_header(&r, "X-Request-Id") : "(none)");
    hc_resp_free(&r);
}

/* HTTP/1.1 keep-alive: one connection serves a run of requests, errors included. */
static void test_keepalive(void)
{
    char op[128], health[128];
    snprintf(op, sizeof op, "%s/quantize-dequantize", srv.base);
    snprintf(health, sizeof health, "%s/healthz", srv.base);
    const char *h[] = { "Content-Type: application/json", NULL };
    const char *good = "{\"input\": [1, 2]}", *bad = "{\"input\": [1, 2], \"num_bit\": 3}";
    hc_resp r;
    hc_request("GET", health, NULL, NULL, 0, &r);
    hc_resp_free(&r);
    int opened = 0;
    for (int i = 0; i < 30; i++) {
        if (i % 3 == 0)
            hc_request("GET", health, NULL, NULL, 0, &r);
        else
            hc_request("POST", op, h, i % 3 == 1 ? good : bad, strlen(i % 3 == 1 ? good : bad), &r);
        CHECK(r.status == (i % 3 == 2 ? 400 : 200), "keep-alive run %d: status %ld", i, r.status);
        opened += (int)r.new_conns;
        hc_resp_free(&r);
    }
    CHECK(opened == 0, "keep-alive: %d new connections for 30 requests on an open one", opened);
}

static void test_compression(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    const char *json = "{\"input\": [-1, -0.5, 0, 0.3]}";
    static const struct {
        const char *enc;
        int wbits;
    } encs[] = { { "gzip", 31 }, { "deflate", 15 } };
    for (int i = 0; i < 2; i++) {
        size_t zn;
        unsigned char *z = tu_zcompress(json, strlen(json), 6, encs[i].wbits, &zn);
        char ce[64];
        snprintf(ce, sizeof ce, "Content-Encoding: %s", encs[i].enc);
        const char *h[] = { "Content-Type: application/json", ce, NULL };
        hc_resp r;
        hc_request("POST", url, h, z, zn, &r);
        CHECK(r.status == 200 && strstr(r.body, "0.296875"),
              "Content-Encoding %s request (docs/api.md, Compression): status %ld, %.200s",
              encs[i].enc, r.status, r.body);
        hc_resp_free(&r);
        float raw[4] = { -1.0f, -0.5f, 0.0f, 0.3f };
        free(z);
        z = tu_zcompress(raw, sizeof raw, 6, encs[i].wbits, &zn);
        const char *h2[] = { "Content-Type: application/octet-stream", ce, NULL };
        hc_request("POST", url, h2, z, zn, &r);
        float want[4] = { -1.0f, -0.5f, 0.0f, 0.296875f };
        CHECK(r.status == 200 && r.len == 16 && memcmp(r.body, want, 16) == 0,
              "Content-Encoding %s raw request: status %ld, %zu bytes", encs[i].enc, r.status,
              r.len);
        hc_resp_free(&r);
        free(z);
    }
    /* A JSON response compressed when Accept-Encoding asks for it. */
    sbuf big = { 0 };
    sb_add(&big, "{\"input\": [", 11);
    for (int i = 0; i < 2000; i++)
        sb_printf(&big, "%s%d.25", i ? "," : "", i % 50 - 25);
    sb_add(&big, "]}", 2);
    const char *h[] = { "Content-Type: application/json", "Accept-Encoding: gzip", NULL };
    hc_resp r;
    hc_request("POST", url, h, big.p, big.len, &r);
    const char *ce = hc_header(&r, "Content-Encoding");
    CHECK(r.status == 200 && ce && strcmp(ce, "gzip") == 0,
          "Accept-Encoding: gzip (docs/api.md, Compression): status %ld, Content-Encoding '%s'",
          r.status, ce ? ce : "(none)");
    if (r.status == 200 && ce && strcmp(ce, "gzip") == 0) {
        size_t n;
        char *plain = tu_zdecompress(r.body, r.len, &n);
        cJSON *j = plain ? hc_json_parse_exact(plain, n) : NULL;
        CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "output")) == 2000,
              "gzip response does not decompress to the answer");
        cJSON_Delete(j);
        free(plain);
    }
    hc_resp_free(&r);
    free(big.p);
}

int main(void)
{
    long long t0 = sp_now_ms();
    if (sp_start(&srv, srv_args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&srv);
        return check_done();
    }
    test_health();
    test_vectors();
    fprintf(stderr, "vectors: %lld ms\n", sp_now_ms() - t0);
    test_variants();
    fprintf(stderr, "variants: %lld ms\n", sp_now_ms() - t0);
    test_defaults();
    test_accept();
    test_keepalive();
    test_request_id();
    test_big();
    test_compression();
    test_health();
    hc_thread_done();
    CHECK(sp_alive(&srv), "the server died during the tests");
    CHECK(srv_deaths == 0, "the server died %d times (restarted each time)", srv_deaths);
    CHECK(sp_stop(&srv, 20000) == 0, "the server did not exit 0 on SIGTERM");
    sp_release(&srv);
    fprintf(stderr, "test_native: %lld ms\n", sp_now_ms() - t0);
    return check_done();
}
