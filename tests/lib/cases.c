/* Test cases and the comparisons of answers with them (cases.h). */
#include "cases.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "testutil.h"

const char *const tc_range_headers[6] = { "X-QDQ-Input-Min",  "X-QDQ-Input-Max",
                                          "X-QDQ-Output-Min", "X-QDQ-Output-Max",
                                          "X-QDQ-Scale",      "X-QDQ-Inverse-Scale" };

double tc_jnum(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "NaN"))
            return NAN;
        return v->valuestring[0] == '-' ? -INFINITY : INFINITY;
    }
    return v->valuedouble;
}

/* The values of a JSON number or array (malloc'ed). */
static double *jvalues(const cJSON *j, int *n)
{
    int cnt = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : 1;
    double *v = calloc((size_t)cnt + 1, sizeof *v);
    *n = 0;
    if (!cJSON_IsArray(j)) {
        v[(*n)++] = tc_jnum(j);
        return v;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, j)
        v[(*n)++] = tc_jnum(e);
    return v;
}

void tc_from_json(tcase *t, const cJSON *c)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", cJSON_GetObjectItem(c, "name")->valuestring);
    t->dt = tu_dtype(cJSON_GetObjectItem(c, "dtype")->valuestring);
    const cJSON *attrs = cJSON_GetObjectItem(c, "attrs"), *d;
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.signed_input = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "signed_input"));
    a.num_bits = cJSON_GetObjectItem(attrs, "num_bits")->valueint;
    a.range_given = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "range_given"));
    snprintf(t->round_mode, sizeof t->round_mode, "%s",
             cJSON_GetObjectItem(attrs, "round_mode")->valuestring);
    a.round_mode = strcmp(t->round_mode, "HALF_UP") == 0 ? QDQ_HALF_UP : QDQ_HALF_TO_EVEN;
    a.narrow_range = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "narrow_range"));
    a.axis = cJSON_GetObjectItem(attrs, "axis")->valueint;
    t->attrs = a;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(c, "shape"))
        if (t->rank < TC_MAX_RANK)
            t->dims[t->rank++] = (int64_t)d->valuedouble;
    const cJSON *input = cJSON_GetObjectItem(c, "input");
    t->count = (uint64_t)cJSON_GetArraySize(input);
    size_t es = qdq_dtype_size(t->dt), i = 0;
    t->in = calloc(t->count + 1, es);
    cJSON_ArrayForEach(d, input)
        tu_store(t->dt, t->in, i++, tc_jnum(d));
    const cJSON *mn = cJSON_GetObjectItem(c, "input_min");
    const cJSON *mx = cJSON_GetObjectItem(c, "input_max");
    if (mn) {
        t->has_min = true, t->min_array = cJSON_IsArray(mn);
        t->min = jvalues(mn, &t->n_min);
    }
    if (mx) {
        t->has_max = true, t->max_array = cJSON_IsArray(mx);
        t->max = jvalues(mx, &t->n_max);
    }
    const cJSON *we = cJSON_GetObjectItem(c, "expected_error");
    if (we) {
        t->want_err = we->valuestring;
        return;
    }
    const cJSON *exp = cJSON_GetObjectItem(c, "expected");
    t->want = calloc(t->count + 1, es);
    i = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(exp, "output"))
        tu_store(t->dt, t->want, i++, tc_jnum(d));
    t->per_channel = a.axis >= 0;
    t->channels = t->per_channel
                      ? (uint64_t)cJSON_GetArraySize(cJSON_GetObjectItem(exp, "scale"))
                      : 1;
    for (int k = 0; k < 6; k++) {
        int n;
        t->rng[k] = jvalues(cJSON_GetObjectItem(exp, tu_range_keys[k]), &n);
    }
}

const tc_file tc_files[TC_FILES] = { { "vectors/cases.json", 46, true },
                                     { "vectors/tf_cases.json", 38, false } };

cJSON *tc_load(const tc_file *f)
{
    char *text = tu_read_file(tu_data_path(f->path), NULL);
    cJSON *a = cJSON_Parse(text);
    free(text);
    if (a && !cJSON_IsArray(a)) {
        cJSON_Delete(a);
        a = NULL;
    }
    return a;
}

void tc_from_vector(tcase *t, const cJSON *c, const tc_file *f)
{
    tc_from_json(t, c);
    if (t->want_err && !f->words)
        t->want_err = "";
}

void tc_bounds(tcase *t, int n, bool arrays)
{
    t->has_min = t->has_max = true;
    t->min_array = t->max_array = arrays;
    t->n_min = t->n_max = n;
    t->min = calloc((size_t)n + 1, sizeof(double));
    t->max = calloc((size_t)n + 1, sizeof(double));
}

int tc_ref_run(const tcase *t, ref_result *res, char *why, size_t cap)
{
    size_t es = qdq_dtype_size(t->dt);
    void *mn = calloc((size_t)t->n_min + 1, es), *mx = calloc((size_t)t->n_max + 1, es);
    for (int i = 0; i < t->n_min; i++)
        tu_store(t->dt, mn, (size_t)i, t->min[i]);
    for (int i = 0; i < t->n_max; i++)
        tu_store(t->dt, mx, (size_t)i, t->max[i]);
    ref_case c = { .dt = t->dt, .attrs = t->attrs, .rank = t->rank, .dims = t->dims,
                   .in = t->in, .min = mn, .max = mx };
    int rc = ref_run(&c, res, NULL, why, cap);
    free(mn), free(mx);
    return rc;
}

int tc_compute(tcase *t)
{
    int64_t axis = t->attrs.axis;
    uint64_t channels = axis >= 0 && axis < t->rank ? (uint64_t)t->dims[axis] : 1;
    if (t->attrs.range_given && ((uint64_t)t->n_min != channels || (uint64_t)t->n_max != channels)) {
        fprintf(stderr, "%s: reference: %d and %d bounds for %" PRIu64 " channels\n", t->name,
                t->n_min, t->n_max, channels);
        return -1;
    }
    ref_result res;
    char why[160];
    if (tc_ref_run(t, &res, why, sizeof why)) {
        fprintf(stderr, "%s: the reference refuses the case: %s\n", t->name, why);
        return -1;
    }
    free(t->want);
    t->want = res.out;
    t->per_channel = axis >= 0;
    t->channels = res.channels;
    for (int k = 0; k < 6; k++) {
        free(t->rng[k]);
        t->rng[k] = calloc(res.channels + 1, sizeof(double));
        for (uint64_t ch = 0; ch < res.channels; ch++)
            t->rng[k][ch] = res.par[6 * ch + (uint64_t)k];
    }
    free(res.par);
    return 0;
}

int tc_reference(qdq_dtype dt, const int64_t *dims, int rank, const qdq_attrs *attrs,
                 const void *in, void *want)
{
    if (attrs->range_given)
        return -1;
    ref_case c = { .dt = dt, .attrs = *attrs, .rank = rank, .dims = dims, .in = in };
    ref_result res;
    char why[160];
    if (ref_run(&c, &res, NULL, why, sizeof why)) {
        fprintf(stderr, "the reference refuses the case: %s\n", why);
        return -1;
    }
    memcpy(want, res.out, res.count * qdq_dtype_size(dt));
    ref_result_free(&res);
    return 0;
}

void tc_free(tcase *t)
{
    free(t->in), free(t->want), free(t->min), free(t->max);
    for (int k = 0; k < 6; k++)
        free(t->rng[k]);
    memset(t, 0, sizeof *t);
}

bool tc_range_same(qdq_dtype dt, const char *text, double want)
{
    if (!text || !*text)
        return false;
    char *end;
    if (qdq_dtype_is_double(dt)) {
        double v = strtod(text, &end);
        return *end == '\0' && tu_same_f64(v, want);
    }
    float v = strtof(text, &end);
    return *end == '\0' && tu_same_f32(v, (float)want);
}

bool tc_elem_parse(qdq_dtype dt, const char *text, void *a, size_t i)
{
    if (!text)
        return false;
    char *end;
    if (dt == QDQ_FLOAT64) {
        ((double *)a)[i] = strtod(text, &end);
        return *end == '\0';
    }
    float f = strtof(text, &end);
    if (*end)
        return false;
    tu_store(dt, a, i, f);
    double back = tu_load(dt, a, i);
    return (isnan(back) && isnan(f)) || back == (double)f;
}

int tc_tensor_diffs(const char *what, const tcase *t, const void *got)
{
    int bad = 0;
    for (uint64_t i = 0; i < t->count; i++)
        if (!tu_same(t->dt, got, t->want, i) && bad++ < 5)
            fprintf(stderr, "  %s: output[%" PRIu64 "] = %.9g, want %.9g\n", what, i,
                    tu_load(t->dt, got, i), tu_load(t->dt, t->want, i));
    if (bad > 5)
        fprintf(stderr, "  ... %d elements differ in all\n", bad);
    return bad;
}
