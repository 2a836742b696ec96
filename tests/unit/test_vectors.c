/*
 * Every case of tests/vectors/cases.json and of tests/vectors/tf_cases.json (TensorFlow's own
 * test cases for the op, with their exact results) through the core, with each kernel family
 * the CPU has: outputs and reported ranges bit for bit (-0.0 differs from 0.0; NaN matches NaN),
 * and every expected error (the status, and for cases.json the word the message must contain;
 * tf_cases.json gives TensorFlow's own message, so there a refusal with a message is enough).
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "check.h"
#include "qdq.h"
#include "qdq_half.h"
#include "testutil.h"

static double num(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "NaN"))
            return NAN;
        return v->valuestring[0] == '-' ? -INFINITY : INFINITY;
    }
    return v->valuedouble;
}

/* Fills n values of dtype at out from a JSON array or a single number. */
static size_t fill(qdq_dtype dt, const cJSON *j, void *out)
{
    size_t n = 0;
    const cJSON *e;
    if (!cJSON_IsArray(j)) {
        tu_store(dt, out, 0, num(j));
        return 1;
    }
    cJSON_ArrayForEach(e, j)
        tu_store(dt, out, n++, num(e));
    return n;
}

/* Compares the reported value v (compute type) with the expected JSON number, bitwise. */
static int same_range(qdq_dtype dt, double v, const cJSON *exp)
{
    double e = num(exp);
    if (dt != QDQ_FLOAT64)
        return tu_same_f32((float)v, (float)e);
    return tu_same_f64(v, e);
}

static void run_case(const cJSON *c, qdq_isa isa, bool words)
{
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    qdq_dtype dt = tu_dtype(cJSON_GetObjectItem(c, "dtype")->valuestring);
    const cJSON *attrs = cJSON_GetObjectItem(c, "attrs"), *shape = cJSON_GetObjectItem(c, "shape");
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.signed_input = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "signed_input"));
    a.num_bits = cJSON_GetObjectItem(attrs, "num_bits")->valueint;
    a.range_given = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "range_given"));
    const char *rm = cJSON_GetObjectItem(attrs, "round_mode")->valuestring;
    a.round_mode = !strcmp(rm, "HALF_TO_EVEN") ? QDQ_HALF_TO_EVEN : !strcmp(rm, "HALF_UP") ? QDQ_HALF_UP : 99;
    a.narrow_range = cJSON_IsTrue(cJSON_GetObjectItem(attrs, "narrow_range"));
    a.axis = cJSON_GetObjectItem(attrs, "axis")->valueint;
    int64_t dims[16];
    int rank = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
        dims[rank++] = (int64_t)d->valuedouble;

    size_t es = qdq_dtype_size(dt);
    const cJSON *input = cJSON_GetObjectItem(c, "input");
    size_t n_in = (size_t)cJSON_GetArraySize(input);
    void *in = calloc(n_in + 1, es), *out = calloc(n_in + 1, es), *inplace = calloc(n_in + 1, es);
    fill(dt, input, in);
    memcpy(inplace, in, n_in * es);
    void *mn = calloc(64, 8), *mx = calloc(64, 8);
    size_t n_min = 0, n_max = 0;
    if (cJSON_GetObjectItem(c, "input_min"))
        n_min = fill(dt, cJSON_GetObjectItem(c, "input_min"), mn);
    if (cJSON_GetObjectItem(c, "input_max"))
        n_max = fill(dt, cJSON_GetObjectItem(c, "input_max"), mx);

    qdq_plan p;
    qdq_error err = { 0 };
    const cJSON *want_err = cJSON_GetObjectItem(c, "expected_error");
    int rc = qdq_plan_init(&p, dt, dims, rank, &a, &err);
    void *acc = NULL, *params = NULL;
    if (rc == 0) {
        p.isa = isa;
        acc = malloc(qdq_acc_size(&p) + 1);
        params = malloc(qdq_params_size(&p) + 1);
        rc = qdq_run(&p, in, out, mn, n_min, mx, n_max, acc, params, &err);
        if (rc == 0) { /* in place gives the same bits */
            qdq_error err2 = { 0 };
            int rc2 = qdq_run(&p, inplace, inplace, mn, n_min, mx, n_max, acc, params, &err2);
            CHECK(rc2 == 0, "%s (isa %d): qdq_run in place failed: %s", name, isa, err2.msg);
        }
    }
    if (want_err) {
        CHECK(rc == QDQ_EINVAL, "%s: expected error %s, got rc %d", name, want_err->valuestring, rc);
        if (words)
            CHECK(rc && strstr(err.msg, want_err->valuestring), "%s: message '%s' lacks '%s'",
                  name, err.msg, want_err->valuestring);
        else
            CHECK(rc && err.msg[0], "%s: refused without a message", name);
        goto out;
    }
    CHECK(rc == 0, "%s (isa %d): unexpected error %s", name, isa, err.msg);
    if (rc)
        goto out;
    const cJSON *exp = cJSON_GetObjectItem(c, "expected");
    const cJSON *eo = cJSON_GetObjectItem(exp, "output");
    CHECK((size_t)cJSON_GetArraySize(eo) == p.count, "%s: count", name);
    void *want = calloc(n_in + 1, es);
    fill(dt, eo, want);
    for (size_t i = 0; i < p.count; i++) {
        CHECK(tu_same(dt, out, want, i), "%s (isa %d): output[%zu] = %.9g, want %.9g", name, isa,
              i, tu_load(dt, out, i), tu_load(dt, want, i));
        CHECK(tu_same(dt, inplace, want, i), "%s (isa %d): in-place output[%zu]", name, isa, i);
    }
    free(want);
    for (uint64_t ch = 0; ch < p.channels && p.count + (a.range_given ? 1 : 0) > 0; ch++) {
        qdq_range r;
        double got[6];
        qdq_params_get(&p, params, ch, &r);
        tu_range_values(&r, got);
        for (int k = 0; k < 6; k++) {
            const cJSON *e = cJSON_GetObjectItem(exp, tu_range_keys[k]);
            if (cJSON_IsArray(e))
                e = cJSON_GetArrayItem(e, (int)ch);
            CHECK(e && same_range(dt, got[k], e), "%s (isa %d): %s[%llu] = %.17g, want %.17g", name,
                  isa, tu_range_keys[k], (unsigned long long)ch, got[k], e ? num(e) : 0.0);
        }
    }
    if (p.count == 0 && p.channels == 1) { /* empty per-tensor: the reduction's ranges */
        qdq_range r;
        qdq_params_get(&p, params, 0, &r);
        CHECK(r.input_min == INFINITY && r.input_max == -INFINITY, "%s: empty ranges", name);
        CHECK(r.inverse_scale == -INFINITY, "%s: empty inverse_scale", name);
    }
out:
    free(in), free(out), free(inplace), free(mn), free(mx), free(acc), free(params);
}

int main(void)
{
    for (int f = 0; f < TC_FILES; f++) {
        cJSON *cases = tc_load(&tc_files[f]);
        CHECK(cJSON_GetArraySize(cases) >= tc_files[f].min_cases, "%s must parse (%d+ cases)",
              tc_files[f].path, tc_files[f].min_cases);
        const cJSON *c;
        int isas[2] = { QDQ_ISA_PORTABLE, qdq_isa_best() };
        for (int i = 0; i < (isas[1] == isas[0] ? 1 : 2); i++)
            cJSON_ArrayForEach(c, cases)
                run_case(c, (qdq_isa)isas[i], tc_files[f].words);
        cJSON_Delete(cases);
    }
    return check_done();
}
