/*
 * The independent reference (tests/lib/ref.h) against expectations it did not make: every
 * forward case of tests/vectors/cases.json and tf_cases.json (TensorFlow's own test cases, exact
 * results) bit for bit, outputs and the six reported values; and the soak's checked-in expected
 * answers (the .expected files of tests/soak/data/, which the soak compares the server's answers with). The
 * black-box tests take their expectations from this reference, so it must be right on its own.
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "check.h"
#include "qdq.h"
#include "ref.h"
#include "testutil.h"

/* One vector: the reference's output and ranges against the file's. */
static void vector_case(const tcase *t)
{
    ref_result res;
    char why[160] = "";
    int rc = tc_ref_run(t, &res, why, sizeof why);
    CHECK(rc == 0, "%s: the reference refuses it: %s", t->name, why);
    if (rc == 0) {
        CHECK(res.count == t->count, "%s: %llu elements, want %llu", t->name,
              (unsigned long long)res.count, (unsigned long long)t->count);
        int bad = res.count == t->count ? tc_tensor_diffs(t->name, t, res.out) : -1;
        CHECK(bad == 0, "%s: %d output elements differ", t->name, bad);
        CHECK(res.channels == t->channels, "%s: %llu channels, want %llu", t->name,
              (unsigned long long)res.channels, (unsigned long long)t->channels);
        for (uint64_t ch = 0; ch < res.channels && ch < t->channels; ch++)
            for (int k = 0; k < 6; k++) {
                double got = res.par[6 * ch + (uint64_t)k], want = t->rng[k][ch];
                bool same = qdq_dtype_is_double(t->dt) ? tu_same_f64(got, want)
                                                       : tu_same_f32((float)got, (float)want);
                CHECK(same, "%s: %s[%llu] = %.17g, want %.17g", t->name, tu_range_keys[k],
                      (unsigned long long)ch, got, want);
            }
    }
    ref_result_free(&res);
}

static void test_vectors(void)
{
    for (int f = 0; f < TC_FILES; f++) {
        cJSON *cases = tc_load(&tc_files[f]);
        CHECK(cJSON_GetArraySize(cases) >= tc_files[f].min_cases, "%s must parse (%d+ cases)",
              tc_files[f].path, tc_files[f].min_cases);
        const cJSON *c;
        int n = 0;
        cJSON_ArrayForEach(c, cases) {
            tcase t;
            tc_from_vector(&t, c, &tc_files[f]);
            if (!t.want_err) { /* the reference computes valid cases only */
                vector_case(&t);
                n++;
            }
            tc_free(&t);
        }
        printf("%s: %d forward cases\n", tc_files[f].path, n);
        cJSON_Delete(cases);
    }
}

/* The soak's per-channel raw answer (64x64 float32, num_bits 6, axis 0), byte for byte. */
static void test_soak_raw(void)
{
    size_t n_in, n_want;
    char *in = tu_read_file(tu_data_path("soak/data/ch64x64.f32"), &n_in);
    char *want = tu_read_file(tu_data_path("soak/data/ch64x64.f32.expected"), &n_want);
    CHECK(n_in == 64 * 64 * 4 && n_want == n_in, "soak data: %zu and %zu bytes", n_in, n_want);
    int64_t dims[2] = { 64, 64 };
    qdq_attrs a = QDQ_ATTRS_DEFAULT;
    a.num_bits = 6;
    a.axis = 0;
    ref_case c = { .dt = QDQ_FLOAT32, .attrs = a, .rank = 2, .dims = dims, .in = in };
    ref_result res;
    char why[160] = "";
    int rc = ref_run(&c, &res, NULL, why, sizeof why);
    CHECK(rc == 0, "soak ch64x64: %s", why);
    if (rc == 0 && n_want == n_in)
        CHECK(memcmp(res.out, want, n_want) == 0,
              "tests/soak/data/ch64x64.f32.expected differs from the reference's answer");
    ref_result_free(&res);
    free(in), free(want);
}

/* The soak's README example: the checked-in JSON answer, number for number. */
static void test_soak_readme(void)
{
    char *req = tu_read_file(tu_data_path("soak/data/readme.json"), NULL);
    char *want = tu_read_file(tu_data_path("soak/data/readme.json.expected"), NULL);
    cJSON *q = cJSON_Parse(req), *w = cJSON_Parse(want);
    const cJSON *rows = cJSON_GetObjectItem(q, "input"), *row, *v;
    float in[4];
    int n = 0;
    cJSON_ArrayForEach(row, rows)
        cJSON_ArrayForEach(v, row)
            if (n < 4)
                in[n++] = (float)v->valuedouble;
    const cJSON *nb = cJSON_GetObjectItem(q, "num_bits");
    CHECK(n == 4 && cJSON_IsNumber(nb) && cJSON_GetObjectItem(w, "output"),
          "soak readme.json / readme.json.expected are not the 2x2 example");
    if (n == 4 && cJSON_IsNumber(nb)) {
        int64_t dims[2] = { 2, 2 };
        qdq_attrs a = QDQ_ATTRS_DEFAULT;
        a.num_bits = nb->valueint;
        ref_case c = { .dt = QDQ_FLOAT32, .attrs = a, .rank = 2, .dims = dims, .in = in };
        ref_result res;
        char why[160] = "";
        int rc = ref_run(&c, &res, NULL, why, sizeof why);
        CHECK(rc == 0, "soak readme: %s", why);
        if (rc == 0) {
            const float *out = res.out;
            int k = 0, bad = 0;
            cJSON_ArrayForEach(row, cJSON_GetObjectItem(w, "output"))
                cJSON_ArrayForEach(v, row)
                    bad += k >= 4 || !tu_same_f32(out[k++], (float)v->valuedouble);
            CHECK(k == 4 && bad == 0, "readme.json.expected: output differs from the reference");
            for (int i = 0; i < 6; i++) {
                const cJSON *e = cJSON_GetObjectItem(w, tu_range_keys[i]);
                CHECK(cJSON_IsNumber(e) && tu_same_f32((float)res.par[i], (float)e->valuedouble),
                      "readme.json.expected: %s is %s, the reference %.9g", tu_range_keys[i],
                      e ? cJSON_PrintUnformatted(e) : "(none)", res.par[i]);
            }
        }
        ref_result_free(&res);
    }
    cJSON_Delete(q), cJSON_Delete(w);
    free(req), free(want);
}

int main(void)
{
    test_vectors();
    test_soak_raw();
    test_soak_readme();
    return check_done();
}
