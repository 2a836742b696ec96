/*
 * Many clients at once against a server with --workers 2: 16 threads x 50 requests of mixed
 * formats (JSON nested, data, b64; raw; npy; raw answered as JSON), dtypes, attributes and sizes
 * (1 element to 1M), with a few bad requests mixed in. Every answer is checked bit for bit
 * against the independent reference run here (tests/lib/ref.h); the bad ones must get their
 * 400 without disturbing the rest.
 *
 * Then the admission limits, each on its own server: --max-queue 0 (one request at a time is
 * still served), --max-queue 1 under 12 clients (each answer right or a JSON 503 with
 * Retry-After), --max-inflight 2 under 6 slow uploads (the rest get 503).
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "check.h"
#include "http_client.h"
#include "qdq.h"
#include "qdq_half.h"
#include "ref.h"
#include "rng.h"
#include "sbuf.h"
#include "server_proc.h"
#include "testutil.h"

#define THREADS 16
#define PER_THREAD 50
#define MAX_ELEMS (1u << 20)
#define MAX_JSON_ELEMS 20000
#define MAX_CH 64

static sp_server srv;

/* ---- per-thread results (check.h's counters are not thread-safe) ---- */

typedef struct worker {
    int id;
    rng_gen rng;
    int passed, failed, printed;
    int requests, bad_requests;
    uint64_t elements;
    int by_form[6];
} worker;

#define TCHECK(w, cond, ...)                                                      \
    do {                                                                          \
        if (cond) {                                                               \
            (w)->passed++;                                                        \
        } else {                                                                  \
            (w)->failed++;                                                        \
            if ((w)->printed++ < 10) {                                            \
                char msg_[1024];                                                   \
                snprintf(msg_, sizeof msg_, __VA_ARGS__);                         \
                fprintf(stderr, "FAIL %s:%d [thread %d]: %s\n", __FILE__, __LINE__, \
                        (w)->id, msg_);                                           \
            }                                                                     \
        }                                                                         \
    } while (0)

/* ---- text ---- */

static void sb_num(sbuf *b, double v, bool query)
{
    if (isnan(v)) {
        sb_add(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        sb_printf(b, "%s", v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", v);
    for (int i = 0; i < n; i++) {
        if (query && t[i] == '+')
            sb_add(b, "%2B", 3);
        else
            sb_add(b, &t[i], 1);
    }
}

/* ---- one request ---- */

typedef enum form { F_NESTED, F_DATA, F_B64, F_RAW, F_NPY, F_RAW_JSON } form;
static const char *const form_names[] = { "nested", "data", "b64", "raw", "npy", "raw+json" };

typedef struct job {
    char what[160];
    form f;
    qdq_dtype dt;
    int rank;
    int64_t dims[3];
    uint64_t count;
    qdq_attrs attrs;
    int n_bounds;                 /* given bounds per side (0: none) */
    double min[MAX_CH], max[MAX_CH];
    bool bad;                     /* sent with num_bits 0: a 400 is the answer */
    void *in, *want;
    uint64_t channels;
    double rng[6][MAX_CH];
} job;

static void make_job(worker *w, job *j, int seq)
{
    memset(j, 0, sizeof *j);
    j->dt = (qdq_dtype)(rng_next(&w->rng) % 4);
    j->f = (form)(rng_next(&w->rng) % 6);
    if (j->f == F_NESTED && j->dt != QDQ_FLOAT32)
        j->f = F_DATA;
    bool json = j->f <= F_B64 || j->f == F_RAW_JSON;
    /* Log-uniform size: 1 .. 1M elements (20k for JSON text, 512k for float64). */
    uint64_t cap = json ? MAX_JSON_ELEMS : j->dt == QDQ_FLOAT64 ? MAX_ELEMS / 2 : MAX_ELEMS;
    uint64_t n = (uint64_t)exp(rng_unit(&w->rng) * log((double)cap)) + 1;
    if (n > cap)
        n = cap;
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.signed_input = rng_next(&w->rng) % 4 != 0;
    int max_bits = j->dt == QDQ_FLOAT64 ? 40 : 16;
    a.num_bits = 1 + (int)(rng_next(&w->rng) % (uint64_t)max_bits);
    a.narrow_range = rng_next(&w->rng) % 4 == 0;
    a.round_mode = rng_next(&w->rng) % 2 ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    a.range_given = rng_next(&w->rng) % 3 == 0;
    /* Shape: rank 1..3; per channel: a channel dimension of 1..64. */
    bool per_channel = rng_next(&w->rng) % 2 && n >= 2;
    int rank = 1 + (int)(rng_next(&w->rng) % 3);
    if (per_channel) {
        uint64_t c = 1 + rng_next(&w->rng) % MAX_CH;
        if (c > n)
            c = n;
        uint64_t rest = n / c;
        if (rank == 1) {
            j->dims[0] = (int64_t)c;
            a.axis = 0;
        } else if (rank == 2) {
            bool last = rng_next(&w->rng) % 2;
            j->dims[last ? 1 : 0] = (int64_t)c;
            j->dims[last ? 0 : 1] = (int64_t)rest;
            a.axis = last ? 1 : 0;
        } else {
            uint64_t r1 = 1 + rng_next(&w->rng) % 4;
            j->dims[0] = (int64_t)r1;
            j->dims[1] = (int64_t)c;
            j->dims[2] = (int64_t)(rest / r1 ? rest / r1 : 1);
            a.axis = 1;
        }
    } else if (rank == 1) {
        j->dims[0] = (int64_t)n;
    } else if (rank == 2) {
        j->dims[0] = (int64_t)(1 + rng_next(&w->rng) % 8);
        j->dims[1] = (int64_t)(n / (uint64_t)j->dims[0]);
    } else {
        j->dims[0] = 2;
        j->dims[1] = (int64_t)(1 + rng_next(&w->rng) % 4);
        j->dims[2] = (int64_t)(n / (uint64_t)(2 * j->dims[1]));
    }
    j->rank = rank;
    j->count = 1;
    for (int i = 0; i < rank; i++)
        j->count *= (uint64_t)j->dims[i];
    j->attrs = a;
    j->bad = rng_next(&w->rng) % 25 == 0;

    /* Data: per-channel magnitudes, ties, signed zeros, now and then a NaN. */
    size_t es = qdq_dtype_size(j->dt);
    j->in = malloc(j->count * es + 1);
    j->want = malloc(j->count * es + 1);
    uint64_t inner = 1, ch = 1;
    if (a.axis >= 0) {
        ch = (uint64_t)j->dims[a.axis];
        for (int i = (int)a.axis + 1; i < rank; i++)
            inner *= (uint64_t)j->dims[i];
    }
    double base = ldexp(1.0, (int)(rng_next(&w->rng) % 20) - 10);
    for (uint64_t i = 0; i < j->count; i++) {
        double s = base * (a.axis >= 0 ? (double)((i / inner) % ch % 7 + 1) : 1.0);
        uint64_t r = rng_next(&w->rng);
        double v;
        switch (r % 16) {
        case 0: v = 0.0; break;
        case 1: v = -0.0; break;
        case 2: v = (double)((int64_t)(r >> 40) % 64 - 32) * 0.5 * s / 16; break;
        case 3: v = (r >> 24) % 512 == 0 ? NAN : s; break;
        default: v = ((double)(r >> 11) / 9007199254740992.0 * 2 - 1) * s;
        }
        tu_store(j->dt, j->in, i, v);
    }
    if (a.range_given) {
        j->n_bounds = a.axis >= 0 ? (int)ch : 1;
        for (int c = 0; c < j->n_bounds; c++) {
            double s = base * (a.axis >= 0 ? (double)(c % 7 + 1) : 1.0);
            double lo = -s * (0.25 + rng_unit(&w->rng)), hi = s * (0.25 + rng_unit(&w->rng));
            /* Round the bounds to the dtype so the request and the reference agree. */
            unsigned char tmp[8];
            tu_store(j->dt, tmp, 0, lo);
            j->min[c] = tu_load(j->dt, tmp, 0);
            tu_store(j->dt, tmp, 0, hi);
            j->max[c] = tu_load(j->dt, tmp, 0);
        }
    }
    snprintf(j->what, sizeof j->what,
             "thread %d req %d: %s %s rank %d [%" PRId64 ",%" PRId64 ",%" PRId64 "] axis %" PRId64
             " bits %d%s%s%s",
             w->id, seq, form_names[j->f], qdq_dtype_name(j->dt), rank, j->dims[0],
             rank > 1 ? j->dims[1] : 0, rank > 2 ? j->dims[2] : 0, a.axis, a.num_bits,
             a.range_given ? " range_given" : "", a.round_mode ? " HALF_UP" : "",
             j->bad ? " (bad)" : "");
}

/* The expected answer, from the independent reference (tests/lib/ref.h), not the core. */
static int compute(job *j)
{
    unsigned char mn[MAX_CH * 8], mx[MAX_CH * 8];
    for (int c = 0; c < j->n_bounds; c++) {
        tu_store(j->dt, mn, (size_t)c, j->min[c]);
        tu_store(j->dt, mx, (size_t)c, j->max[c]);
    }
    ref_case c = { .dt = j->dt, .attrs = j->attrs, .rank = j->rank, .dims = j->dims,
                   .in = j->in, .min = mn, .max = mx };
    ref_result res;
    char why[160];
    if (ref_run(&c, &res, NULL, why, sizeof why)) {
        fprintf(stderr, "%s: %s\n", j->what, why);
        return -1;
    }
    memcpy(j->want, res.out, res.count * qdq_dtype_size(j->dt));
    j->channels = res.channels;
    for (uint64_t ch = 0; ch < res.channels && ch < MAX_CH; ch++)
        for (int k = 0; k < 6; k++)
            j->rng[k][ch] = res.par[6 * ch + (uint64_t)k];
    ref_result_free(&res);
    return 0;
}

static void nested(sbuf *b, const job *j, int level, uint64_t *i)
{
    if (level == j->rank) {
        sb_num(b, tu_load(j->dt, j->in, (*i)++), false);
        return;
    }
    sb_add(b, "[", 1);
    for (int64_t k = 0; k < j->dims[level]; k++) {
        if (k)
            sb_add(b, ",", 1);
        nested(b, j, level + 1, i);
    }
    sb_add(b, "]", 1);
}

static void build(const job *j, sbuf *url, sbuf *body, const char **ctype)
{
    const qdq_attrs *a = &j->attrs;
    int bits = j->bad ? 0 : a->num_bits;
    sb_printf(url, "%s/quantize-dequantize", srv.base);
    if (j->f <= F_B64) {
        *ctype = "Content-Type: application/json";
        sb_add(body, "{\"input\": ", 10);
        if (j->f == F_NESTED) {
            uint64_t i = 0;
            nested(body, j, 0, &i);
        } else {
            sb_printf(body, "{\"dtype\": \"%s\", \"shape\": [", qdq_dtype_name(j->dt));
            for (int i = 0; i < j->rank; i++)
                sb_printf(body, "%s%" PRId64, i ? "," : "", j->dims[i]);
            sb_add(body, "], ", 3);
            if (j->f == F_B64) {
                char *s = hc_b64_encode(j->in, j->count * qdq_dtype_size(j->dt));
                sb_add(body, "\"b64\": \"", 8);
                sb_add(body, s, strlen(s));
                sb_add(body, "\"}", 2);
                free(s);
            } else {
                sb_add(body, "\"data\": [", 9);
                for (uint64_t i = 0; i < j->count; i++) {
                    if (i)
                        sb_add(body, ",", 1);
                    sb_num(body, tu_load(j->dt, j->in, i), false);
                }
                sb_add(body, "]}", 2);
            }
        }
        sb_printf(body, ", \"num_bits\": %d, \"signed_input\": %s, \"narrow_range\": %s, "
                  "\"round_mode\": \"%s\", \"axis\": %" PRId64 ", \"range_given\": %s", bits,
                  a->signed_input ? "true" : "false", a->narrow_range ? "true" : "false",
                  a->round_mode ? "HALF_UP" : "HALF_TO_EVEN", a->axis,
                  a->range_given ? "true" : "false");
        for (int m = 0; m < 2 && j->n_bounds; m++) {
            sb_printf(body, ", \"%s\": %s", m ? "input_max" : "input_min", a->axis >= 0 ? "[" : "");
            for (int c = 0; c < j->n_bounds; c++) {
                if (c)
                    sb_add(body, ",", 1);
                sb_num(body, m ? j->max[c] : j->min[c], false);
            }
            if (a->axis >= 0)
                sb_add(body, "]", 1);
        }
        sb_add(body, "}", 1);
        return;
    }
    sb_printf(url, "?num_bits=%d&signed_input=%s&narrow_range=%s&round_mode=%s&axis=%" PRId64
              "&range_given=%s", bits, a->signed_input ? "1" : "0",
              a->narrow_range ? "1" : "0", a->round_mode ? "HALF_UP" : "HALF_TO_EVEN", a->axis,
              a->range_given ? "true" : "false");
    for (int m = 0; m < 2 && j->n_bounds; m++) {
        sb_printf(url, "&%s=", m ? "input_max" : "input_min");
        for (int c = 0; c < j->n_bounds; c++) {
            if (c)
                sb_add(url, ",", 1);
            sb_num(url, m ? j->max[c] : j->min[c], true);
        }
    }
    if (j->f == F_NPY) {
        *ctype = "Content-Type: application/x-npy";
        static const char *const descr[4] = { "<f4", "<f8", "<f2", "<V2" };
        if (j->dt == QDQ_BFLOAT16)
            sb_add(url, "&dtype=bfloat16", 15);
        sbuf d = { 0 };
        sb_printf(&d, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr[j->dt]);
        for (int i = 0; i < j->rank; i++)
            sb_printf(&d, "%" PRId64 "%s", j->dims[i],
                      j->rank == 1 ? "," : i + 1 < j->rank ? ", " : "");
        sb_add(&d, "), }", 4);
        while ((10 + d.len + 1) % 64)
            sb_add(&d, " ", 1);
        sb_add(&d, "\n", 1);
        unsigned char m[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(d.len & 0xff),
                                (unsigned char)(d.len >> 8) };
        sb_add(body, m, 10);
        sb_add(body, d.p, d.len);
        free(d.p);
    } else {
        *ctype = "Content-Type: application/octet-stream";
        sb_printf(url, "&dtype=%s&shape=", qdq_dtype_name(j->dt));
        for (int i = 0; i < j->rank; i++)
            sb_printf(url, "%s%" PRId64, i ? "," : "", j->dims[i]);
    }
    sb_add(body, j->in, j->count * qdq_dtype_size(j->dt));
}

static void compare(worker *w, const job *j, const void *got)
{
    uint64_t bad = 0, first = 0;
    for (uint64_t i = 0; i < j->count; i++)
        if (!tu_same(j->dt, got, j->want, i) && bad++ == 0)
            first = i;
    TCHECK(w, bad == 0, "%s: %" PRIu64 " elements differ; first [%" PRIu64 "] = %.9g, want %.9g",
           j->what, bad, first, bad ? tu_load(j->dt, got, first) : 0.0,
           bad ? tu_load(j->dt, j->want, first) : 0.0);
}

static void flatten(const cJSON *a, const job *j, void *got, uint64_t *n, bool *ok)
{
    const cJSON *e;
    if (!cJSON_IsArray(a)) {
        if (*n >= j->count || !tc_elem_parse(j->dt, hc_json_num(a), got, *n))
            *ok = false;
        (*n)++;
        return;
    }
    cJSON_ArrayForEach(e, a)
        flatten(e, j, got, n, ok);
}

static void check_json(worker *w, const job *j, const hc_resp *r)
{
    cJSON *o = hc_json_parse_exact(r->body, r->len);
    TCHECK(w, o != NULL, "%s: answer is not JSON", j->what);
    if (!o)
        return;
    const cJSON *out = cJSON_GetObjectItem(o, "output");
    size_t es = qdq_dtype_size(j->dt);
    void *got = malloc(j->count * es + 1);
    uint64_t n = 0;
    bool ok = true;
    if (j->f == F_NESTED) {
        /* Nesting: the first level has dims[0] entries; all leaves in order. */
        ok = cJSON_IsArray(out) && cJSON_GetArraySize(out) == j->dims[0];
        flatten(out, j, got, &n, &ok);
    } else if (j->f == F_B64) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(out, "b64"));
        size_t blen = 0;
        unsigned char *bytes = s ? hc_b64_decode(s, strlen(s), &blen) : NULL;
        ok = bytes && blen == j->count * es;
        if (ok)
            memcpy(got, bytes, blen);
        n = blen / es;
        free(bytes);
    } else {
        const cJSON *d = cJSON_GetObjectItem(out, "data");
        ok = cJSON_IsArray(d);
        flatten(d, j, got, &n, &ok);
    }
    TCHECK(w, ok && n == j->count, "%s: output has %" PRIu64 " readable elements, want %" PRIu64,
           j->what, n, j->count);
    if (ok && n == j->count)
        compare(w, j, got);
    free(got);
    for (int k = 0; k < 6; k++) {
        const cJSON *e = cJSON_GetObjectItem(o, tu_range_keys[k]);
        bool same;
        if (j->attrs.axis < 0) {
            same = tc_range_same(j->dt, hc_json_num(e), j->rng[k][0]);
        } else {
            same = cJSON_IsArray(e) && (uint64_t)cJSON_GetArraySize(e) == j->channels;
            for (uint64_t c = 0; same && c < j->channels; c++)
                same = tc_range_same(j->dt, hc_json_num(cJSON_GetArrayItem(e, (int)c)),
                                     j->rng[k][c]);
        }
        TCHECK(w, same, "%s: %s differs", j->what, tu_range_keys[k]);
    }
    cJSON_Delete(o);
}

static void check_binary(worker *w, const job *j, const hc_resp *r)
{
    size_t off = 0;
    if (j->f == F_NPY) {
        bool ok = r->len >= 10 && memcmp(r->body, "\x93NUMPY", 6) == 0;
        TCHECK(w, ok, "%s: answer is not .npy", j->what);
        if (!ok)
            return;
        off = 10 + (size_t)((unsigned char)r->body[8] | (unsigned char)r->body[9] << 8);
    }
    size_t want = j->count * qdq_dtype_size(j->dt);
    TCHECK(w, r->len >= off && r->len - off == want, "%s: %zu data bytes, want %zu", j->what,
           r->len - off, want);
    if (r->len < off || r->len - off != want)
        return;
    void *got = malloc(want + 1);
    memcpy(got, r->body + off, want);
    compare(w, j, got);
    free(got);
    for (int k = 0; k < 6; k++) {
        const char *v = hc_header(r, tc_range_headers[k]);
        bool same = v != NULL;
        uint64_t c = 0;
        if (v) {
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), c++)
                if (c >= j->channels || !tc_range_same(j->dt, t, j->rng[k][c]))
                    same = false;
            free(copy);
        }
        TCHECK(w, same && c == j->channels, "%s: %s '%.80s' differs", j->what, tc_range_headers[k],
               v ? v : "(none)");
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    job *j = malloc(sizeof *j);
    for (int i = 0; i < PER_THREAD; i++) {
        make_job(w, j, i);
        int rc = compute(j);
        TCHECK(w, rc == 0, "%s: the local reference failed", j->what);
        sbuf url = { 0 }, body = { 0 };
        const char *ct = NULL;
        build(j, &url, &body, &ct);
        const char *h[] = { ct, j->f == F_RAW_JSON ? "Accept: application/json" : NULL, NULL };
        hc_resp r;
        hc_opts o = { .timeout_ms = 60000 };
        hc_request_ex("POST", url.p, h, body.p, body.len, &o, &r);
        w->requests++;
        w->by_form[j->f]++;
        if (j->bad) {
            w->bad_requests++;
            const char *ctype = hc_header(&r, "Content-Type");
            TCHECK(w, r.status == 400 && ctype && !strcmp(ctype, "application/json") &&
                   strstr(r.body, "num_bits"), "%s: status %ld, %.200s", j->what, r.status,
                   r.body);
        } else {
            TCHECK(w, r.status == 200, "%s: status %ld %s %.200s", j->what, r.status, r.err,
                   r.body);
            if (r.status == 200 && rc == 0) {
                w->elements += j->count;
                if (j->f <= F_B64 || j->f == F_RAW_JSON)
                    check_json(w, j, &r);
                else
                    check_binary(w, j, &r);
            }
        }
        hc_resp_free(&r);
        free(url.p);
        free(body.p);
        free(j->in);
        free(j->want);
    }
    free(j);
    return NULL;
}

/* ---- the admission limits: --max-queue and --max-inflight ---- */

typedef struct lim_client {
    const sp_server *s;
    int id, requests;
    long long send_bps;
    int ok, unavailable, other, wrong;
    char note[256];
} lim_client;

/* Sends requests of 1M float32 (num_bits varies); counts 200s (checked bit for bit), 503s (JSON
 * with Retry-After) and anything else. */
static void *lim_main(void *arg)
{
    lim_client *c = arg;
    uint32_t n = 1u << 20;
    float *in = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    for (uint32_t i = 0; i < n; i++)
        in[i] = (float)((int)((i * 2654435761u) % 2001) - 1000) * 0.001f * (float)(c->id + 1);
    for (int k = 0; k < c->requests; k++) {
        qdq_attrs a = QDQ_ATTRS_DEFAULT;
        a.num_bits = 2 + (c->id + k) % 12;
        int64_t dims[1] = { n };
        if (tc_reference(QDQ_FLOAT32, dims, 1, &a, in, want))
            c->wrong++; /* cannot happen: counted so that it shows */
        char url[160];
        snprintf(url, sizeof url, "%s/quantize-dequantize?num_bits=%d", c->s->base, a.num_bits);
        const char *h[] = { "Content-Type: application/octet-stream", NULL };
        hc_opts o = { .timeout_ms = 60000, .max_send_bps = c->send_bps };
        hc_resp r;
        hc_request_ex("POST", url, h, in, n * sizeof(float), &o, &r);
        if (r.status == 200) {
            c->ok++;
            if (r.len != n * sizeof(float) || memcmp(r.body, want, r.len) != 0)
                c->wrong++;
        } else if (r.status == 503) {
            const char *ct = hc_header(&r, "Content-Type");
            if (ct && !strcmp(ct, "application/json") && hc_header(&r, "Retry-After") &&
                strstr(r.body, "\"error\""))
                c->unavailable++;
            else
                c->other++;
        } else {
            c->other++;
            snprintf(c->note, sizeof c->note, "status %ld %.80s %.120s", r.status, r.err, r.body);
        }
        hc_resp_free(&r);
    }
    free(in);
    free(want);
    hc_thread_done();
    return NULL;
}

/* Runs `threads` clients against a server started with args; sums their counts into *sum.
 * 0, or -1 when the server did not start (a failure: the caller's checks then cannot run). */
static int lim_run(const char *const *args, int threads, int requests, long long send_bps,
                   lim_client *sum)
{
    sp_server s;
    memset(sum, 0, sizeof *sum);
    if (sp_start(&s, args) != 0) {
        char line[256] = "";
        for (int i = 0; args[i]; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), " %s", args[i]);
        CHECK(0, "the server with%s did not start: its checks cannot run", line);
        sp_release(&s);
        return -1;
    }
    lim_client cs[16];
    pthread_t th[16];
    for (int i = 0; i < threads; i++) {
        cs[i] = (lim_client){ .s = &s, .id = i, .requests = requests, .send_bps = send_bps };
        pthread_create(&th[i], NULL, lim_main, &cs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum->ok += cs[i].ok, sum->unavailable += cs[i].unavailable;
        sum->other += cs[i].other, sum->wrong += cs[i].wrong;
        if (cs[i].note[0])
            memcpy(sum->note, cs[i].note, sizeof sum->note);
    }
    CHECK(sp_alive(&s), "the server died under the limits test");
    CHECK(sp_stop(&s, 20000) == 0, "the server did not exit 0");
    sp_release(&s);
    return 0;
}

static void test_limits(void)
{
    lim_client r;
    /* --max-queue 0: nothing waits, but one request at a time never has to wait for a worker. */
    const char *q0[] = { "--workers", "2", "--max-queue", "0", "--inline-bytes", "0", NULL };
    if (lim_run(q0, 1, 4, 0, &r) == 0)
        CHECK(r.ok == 4 && r.wrong == 0,
              "--max-queue 0 --workers 2, one request at a time: %d of 4 served, %d refused (503) "
              "although a worker was free", r.ok, r.unavailable);
    /* --max-queue 1 --workers 1 under 12 clients: each answer right, or a proper 503. */
    const char *q1[] = { "--workers", "1", "--max-queue", "1", "--inline-bytes", "0", NULL };
    if (lim_run(q1, 12, 6, 0, &r) == 0) {
        fprintf(stderr, "  --max-queue 1: %d served, %d refused\n", r.ok, r.unavailable);
        CHECK(r.wrong == 0, "--max-queue 1: %d wrong answers", r.wrong);
        CHECK(r.other == 0, "--max-queue 1: %d answers neither 200 nor JSON 503 with Retry-After "
              "(%s)", r.other, r.note);
        CHECK(r.ok + r.unavailable == 72, "--max-queue 1: %d answers of 72", r.ok + r.unavailable);
        CHECK(r.ok >= 1, "--max-queue 1: nothing served");
    }
    /* --max-inflight 2: six slow uploads at once, so at least three are refused. */
    const char *f2[] = { "--max-inflight", "2", NULL };
    if (lim_run(f2, 6, 1, 4 << 20, &r) == 0) {
        fprintf(stderr, "  --max-inflight 2: %d served, %d refused\n", r.ok, r.unavailable);
        CHECK(r.wrong == 0 && r.other == 0, "--max-inflight 2: %d wrong, %d other (%s)", r.wrong,
              r.other, r.note);
        CHECK(r.unavailable >= 3 && r.ok >= 1,
              "--max-inflight 2 with 6 concurrent uploads: %d served, %d refused (want at most 2 "
              "at once, the rest 503)", r.ok, r.unavailable);
    }
}

int main(void)
{
    long long t0 = sp_now_ms();
    const char *args[] = { "--workers", "2", NULL };
    if (sp_start(&srv, args) != 0) {
        CHECK(0, "the server did not start");
        sp_release(&srv);
        return check_done();
    }
    static worker ws[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ws[i].id = i;
        rng_seed(&ws[i].rng, 0x2545f4914f6cdd1dull * (uint64_t)(i + 1));
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]))
            CHECK(0, "pthread_create");
    }
    int requests = 0, bad = 0, by_form[6] = { 0 };
    uint64_t elements = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        check_passed += ws[i].passed;
        check_failed += ws[i].failed;
        requests += ws[i].requests;
        bad += ws[i].bad_requests;
        elements += ws[i].elements;
        for (int k = 0; k < 6; k++)
            by_form[k] += ws[i].by_form[k];
    }
    CHECK(requests == THREADS * PER_THREAD, "%d requests made", requests);
    fprintf(stderr, "test_concurrency: %d requests (%d bad), %" PRIu64 " elements checked; "
            "nested %d, data %d, b64 %d, raw %d, npy %d, raw+json %d; %lld ms\n", requests, bad,
            elements, by_form[0], by_form[1], by_form[2], by_form[3], by_form[4], by_form[5],
            sp_now_ms() - t0);
    /* Still healthy afterwards. */
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", srv.base);
    hc_resp r;
    hc_request("GET", url, NULL, NULL, 0, &r);
    CHECK(r.status == 200, "/readyz after the load: %ld", r.status);
    hc_resp_free(&r);
    hc_thread_done();
    CHECK(sp_alive(&srv), "the server died under load");
    CHECK(sp_stop(&srv, 20000) == 0, "the server did not exit 0 on SIGTERM");
    sp_release(&srv);
    long long t1 = sp_now_ms();
    test_limits();
    fprintf(stderr, "test_concurrency: limits %lld ms\n", sp_now_ms() - t1);
    return check_done();
}
