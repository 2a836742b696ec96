/*
 * Error statistics on the tensor routes (stats=true), against a real server: for each route
 * (JSON, raw, .npy, KServe v2 JSON and binary) and each dtype, the answer's max_abs_error, rmse,
 * sqnr_db and nonfinite agree with a float64 reference computed here from the input sent and
 * the output received (relative 1e-9; the count exactly). Without the flag, no statistics
 * appear. With a given range, inputs also hold NaN and infinities (left out of the statistics,
 * counted as nonfinite); with the range from the data they would make the range itself
 * non-finite.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http_client.h"
#include "qdq_half.h"
#include "server_proc.h"

static sp_server srv;
#define N 1000

typedef struct ref {
    double max_abs, rmse, sqnr;
    bool sqnr_null;
    unsigned long long nonfinite;
} ref;

static double widen(int dt, const void *a, size_t i)
{
    switch (dt) {
    case 0: return ((const float *)a)[i];
    case 1: return ((const double *)a)[i];
    case 2: return qdq_f16_to_f32(((const uint16_t *)a)[i]);
    default: return qdq_bf16_to_f32(((const uint16_t *)a)[i]);
    }
}

static ref reference(int dt, const void *in, const void *out, size_t n)
{
    ref r = { 0, 0, 0, true, 0 };
    double se = 0, si = 0, finite = 0;
    for (size_t i = 0; i < n; i++) {
        double x = widen(dt, in, i), y = widen(dt, out, i);
        if (!isfinite(x)) {
            r.nonfinite++;
            continue;
        }
        double d = y - x;
        r.max_abs = isnan(d) || isnan(r.max_abs) ? NAN : fabs(d) > r.max_abs ? fabs(d) : r.max_abs;
        se += d * d;
        si += x * x;
        finite++;
    }
    r.rmse = finite ? sqrt(se / finite) : 0;
    r.sqnr_null = se == 0 || si == 0;
    r.sqnr = r.sqnr_null ? 0 : 10 * log10(si / se);
    return r;
}

static bool close_to(double got, double want)
{
    return got == want || (isnan(got) && isnan(want)) || fabs(got - want) <= 1e-9 * fabs(want);
}

static void check_stats(const char *what, const ref *w, double max_abs, double rmse,
                        const char *sqnr_text, double nonfinite)
{
    bool sq = w->sqnr_null ? (strcmp(sqnr_text, "null") == 0 || strcmp(sqnr_text, "NaN") == 0)
                           : close_to(strtod(sqnr_text, NULL), w->sqnr);
    CHECK(close_to(max_abs, w->max_abs) && close_to(rmse, w->rmse) && sq &&
              nonfinite == (double)w->nonfinite,
          "%s: got %.17g %.17g %s %.0f, want %.17g %.17g %.17g%s %llu", what, max_abs, rmse,
          sqnr_text, nonfinite, w->max_abs, w->rmse, w->sqnr, w->sqnr_null ? " (null)" : "",
          w->nonfinite);
}

/* n values of dtype dt: a spread, some NaN and infinities when `special`. */
static void *make_input(int dt, size_t n, bool special, unsigned seed)
{
    size_t es = dt == 1 ? 8 : dt == 0 ? 4 : 2;
    char *a = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double v = ((double)(seed >> 8) / 16777216.0 - 0.5) * 7.3;
        if (special && i % 97 == 5)
            v = NAN;
        if (special && i % 131 == 7)
            v = i % 2 ? INFINITY : -INFINITY;
        if (dt == 0) ((float *)a)[i] = (float)v;
        else if (dt == 1) ((double *)a)[i] = v;
        else if (dt == 2) ((uint16_t *)a)[i] = qdq_f32_to_f16((float)v);
        else ((uint16_t *)a)[i] = (uint16_t)(qdq_f32_bits((float)v) >> 16);
    }
    return a;
}

static const char *const dtypes[4] = { "float32", "float64", "float16", "bfloat16" };
static const char *const kserve[4] = { "FP32", "FP64", "FP16", "BF16" };

static void raw_route(int dt, bool given, bool want)
{
    size_t es = dt == 1 ? 8 : dt == 0 ? 4 : 2;
    void *in = make_input(dt, N, given, 7 + (unsigned)dt);
    char url[256];
    snprintf(url, sizeof url, "%s/quantize-dequantize?dtype=%s&shape=%d%s&num_bits=5%s", srv.base,
             dtypes[dt], N, want ? "&stats=true" : "",
             given ? "&range_given=true&input_min=-4&input_max=4" : "");
    const char *h[] = { "Content-Type: application/octet-stream", NULL };
    hc_resp r;
    hc_request("POST", url, h, in, N * es, &r);
    char what[96];
    snprintf(what, sizeof what, "raw %s%s%s", dtypes[dt], given ? " range_given" : "",
             want ? " stats=true" : "");
    CHECK(r.status == 200 && r.len == N * es, "%s: status %ld, %zu bytes: %.200s", what, r.status,
          r.len, r.body);
    const char *m = hc_header(&r, "X-QDQ-Max-Abs-Error"), *e = hc_header(&r, "X-QDQ-RMSE"),
               *s = hc_header(&r, "X-QDQ-SQNR-dB"), *k = hc_header(&r, "X-QDQ-Nonfinite");
    if (!want) {
        CHECK(!m && !e && !s && !k, "%s: statistics headers without stats=true", what);
    } else if (r.status == 200 && r.len == N * es) {
        CHECK(m && e && s && k, "%s: missing statistics headers", what);
        if (m && e && s && k) {
            ref w = reference(dt, in, r.body, N);
            check_stats(what, &w, strtod(m, NULL), strtod(e, NULL), s, strtod(k, NULL));
        }
    }
    hc_resp_free(&r);
    free(in);
}

/* A number node of hc_json_parse_exact as a double, NaN/null as NaN. */
static double num(const cJSON *o, const char *key, char *text, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *t = v ? hc_json_num(v) : NULL;
    snprintf(text, n, "%s", t ? t : v && cJSON_IsNull(v) ? "null" : "?");
    return t ? strtod(t, NULL) : NAN;
}

static void json_route(bool want)
{
    void *in = make_input(0, N, true, 3); /* with NaN and infinities: the range is given */
    hc_resp r;
    char url[128];
    snprintf(url, sizeof url, "%s/quantize-dequantize", srv.base);
    char *b64 = hc_b64_encode(in, N * 4);
    size_t bl = strlen(b64) + 200;
    char *body = malloc(bl);
    snprintf(body, bl, "{\"input\": {\"dtype\": \"float32\", \"shape\": [%d], \"b64\": \"%s\"}, "
             "\"num_bits\": 4, \"range_given\": true, \"input_min\": -4, \"input_max\": 4%s}",
             N, b64, want ? ", \"stats\": true" : "");
    const char *h[] = { "Content-Type: application/json", NULL };
    hc_request("POST", url, h, body, strlen(body), &r);
    cJSON *j = r.status == 200 ? hc_json_parse_exact(r.body, r.len) : NULL;
    CHECK(j, "json: status %ld %.200s", r.status, r.body);
    const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "stats") : NULL;
    if (!want) {
        CHECK(j && !st, "json: \"stats\" without stats=true");
    } else if (j) {
        const char *ob64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "output"), "b64"));
        size_t on = 0;
        unsigned char *out = ob64 ? hc_b64_decode(ob64, strlen(ob64), &on) : NULL;
        CHECK(st && out && on == N * 4, "json: stats %p, output %zu bytes", (void *)st, on);
        if (st && out && on == N * 4) {
            ref w = reference(0, in, out, N);
            char t1[48], t2[48], t3[48], t4[48];
            double m = num(st, "max_abs_error", t1, sizeof t1), e = num(st, "rmse", t2, sizeof t2);
            num(st, "sqnr_db", t3, sizeof t3);
            double k = num(st, "nonfinite", t4, sizeof t4);
            check_stats("json", &w, m, e, t3, k);
        }
        free(out);
    }
    cJSON_Delete(j);
    hc_resp_free(&r);
    free(body);
    free(b64);
    free(in);
}

static void v2_route(int dt, bool want)
{
    void *in = make_input(dt, 64, false, 11 + (unsigned)dt);
    /* JSON numbers for the input: the dtype's values printed exactly as doubles. */
    size_t cap = 64 * 40 + 512;
    char *body = malloc(cap);
    size_t k = (size_t)snprintf(body, cap, "{\"parameters\": {\"num_bits\": 6%s}, \"inputs\": "
                                "[{\"name\": \"input\", \"shape\": [64], \"datatype\": \"%s\", "
                                "\"data\": [", want ? ", \"stats\": true" : "", kserve[dt]);
    for (int i = 0; i < 64; i++) {
        double v = widen(dt, in, (size_t)i);
        k += (size_t)snprintf(body + k, cap - k, "%s%s", i ? "," : "",
                              isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "Infinity" : "-Infinity")
                                                          : "");
        if (isfinite(v))
            k += (size_t)snprintf(body + k, cap - k, "%.17g", v);
    }
    snprintf(body + k, cap - k, "]}]}");
    char url[160];
    snprintf(url, sizeof url, "%s/v2/models/quantize_and_dequantize_v2/infer", srv.base);
    hc_resp r;
    hc_request("POST", url, NULL, body, strlen(body), &r);
    cJSON *j = r.status == 200 ? hc_json_parse_exact(r.body, r.len) : NULL;
    char what[64];
    snprintf(what, sizeof what, "v2 %s", kserve[dt]);
    CHECK(j, "%s: status %ld %.200s", what, r.status, r.body);
    double got[4] = { NAN, NAN, NAN, NAN };
    char sq[48] = "?";
    int found = 0;
    size_t es = dt == 1 ? 8 : dt == 0 ? 4 : 2;
    char *out = malloc(64 * es);
    const cJSON *o, *outs = j ? cJSON_GetObjectItemCaseSensitive(j, "outputs") : NULL;
    cJSON_ArrayForEach(o, outs) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data"), *d;
        static const char *const sn[4] = { "max_abs_error", "rmse", "sqnr_db", "nonfinite" };
        for (int i = 0; i < 4; i++)
            if (name && strcmp(name, sn[i]) == 0) {
                const char *t = hc_json_num(cJSON_GetArrayItem(data, 0));
                got[i] = t ? strtod(t, NULL) : NAN;
                if (i == 2)
                    snprintf(sq, sizeof sq, "%s", t ? t : "?");
                found++;
            }
        if (name && strcmp(name, "output") == 0) {
            int i = 0;
            cJSON_ArrayForEach(d, data) {
                double v = strtod(hc_json_num(d) ? hc_json_num(d) : "nan", NULL);
                if (i < 64) {
                    if (dt == 0) ((float *)out)[i] = (float)v;
                    else if (dt == 1) ((double *)out)[i] = v;
                    else if (dt == 2) ((uint16_t *)out)[i] = qdq_f32_to_f16((float)v);
                    else ((uint16_t *)out)[i] = (uint16_t)(qdq_f32_bits((float)v) >> 16);
                }
                i++;
            }
        }
    }
    if (!want) {
        CHECK(j && found == 0, "%s: %d statistics outputs without stats", what, found);
    } else if (j) {
        CHECK(found == 4, "%s: %d of 4 statistics outputs", what, found);
        ref w = reference(dt, in, out, 64);
        check_stats(what, &w, got[0], got[1], sq, got[3]);
    }
    cJSON_Delete(j);
    hc_resp_free(&r);
    free(out);
    free(body);
    free(in);
}

int main(void)
{
    const char *args[] = { "--workers", "2", NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
        return check_done();
    }
    for (int want = 0; want < 2; want++) {
        for (int dt = 0; dt < 4; dt++) {
            raw_route(dt, false, want);
            raw_route(dt, true, want);
            v2_route(dt, want);
        }
        json_route(want);
    }
    CHECK(sp_stop(&srv, 15000) == 0, "exit status %d", srv.exit_status);
    sp_release(&srv);
    hc_thread_done();
    return check_done();
}
