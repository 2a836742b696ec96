/*
 * Test cases as the black-box tests use them: a case of tests/vectors/cases.json or
 * tf_cases.json, or one a test builds (its expected answer then computed here by the
 * independent reference, tests/lib/ref.h, never by the core under test), and the comparisons of
 * answers with it.
 */
#ifndef CASES_H
#define CASES_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "qdq.h"
#include "ref.h"

#define TC_MAX_RANK 16

typedef struct tcase {
    char name[96];
    qdq_dtype dt;
    int rank;
    int64_t dims[TC_MAX_RANK];
    uint64_t count;
    void *in;                  /* count elements of dt */
    qdq_attrs attrs;
    char round_mode[16];
    bool has_min, has_max;     /* bounds present in the request */
    bool min_array, max_array; /* sent as arrays (else one number) */
    int n_min, n_max;
    double *min, *max;         /* n_min / n_max values (malloc'ed) */
    const char *want_err;      /* a word of the expected message, or NULL */
    void *want;                /* count elements of dt */
    bool per_channel;          /* ranges are arrays */
    uint64_t channels;         /* values of each range: 1 for axis -1, else C */
    double *rng[6];            /* channels values each, in the order of tu_range_keys */
} tcase;

/* The response headers of the native route that carry the six reported values, in the order
 * of tu_range_keys ("X-QDQ-Input-Min", ...). */
extern const char *const tc_range_headers[6];

/*
 * The files of vectors under tests/vectors/: cases.json, the project's (an expected_error is a
 * word the message must contain), and tf_cases.json, TensorFlow's own test cases (there
 * expected_error is TensorFlow's message: the case must be refused, in any words).
 */
typedef struct tc_file {
    const char *path;  /* relative to the test data folder (tu_data_path) */
    int min_cases;     /* a file with fewer did not load right */
    bool words;        /* expected_error is a word of our message */
} tc_file;
#define TC_FILES 2
extern const tc_file tc_files[TC_FILES];

/* The parsed array of f (cJSON_Delete it), or NULL when it does not parse; a file that cannot
 * be read ends the test (exit 2). */
cJSON *tc_load(const tc_file *f);
/* A case of cases.json (c: one element of its array). */
void tc_from_json(tcase *t, const cJSON *c);
/* A case of file f: as tc_from_json, with want_err "" (any refusal) where f->words is false. */
void tc_from_vector(tcase *t, const cJSON *c, const tc_file *f);
/* n bounds of each side (min/max malloc'ed, values left to the caller), as arrays when arrays. */
void tc_bounds(tcase *t, int n, bool arrays);
/* The reference run on t (in, dims, attrs and bounds as given): ref_run's answer, with the reason
 * in why when it refuses. */
int tc_ref_run(const tcase *t, ref_result *res, char *why, size_t cap);
/* The expected output and ranges from the reference (in, dims, attrs and bounds set; one bound
 * per channel when range_given). 0, or -1 with the reason printed. */
int tc_compute(tcase *t);
/* The reference's output for a tensor without given bounds into want (count elements of dt).
 * 0, or -1 with the reason printed (also when attrs->range_given). */
int tc_reference(qdq_dtype dt, const int64_t *dims, int rank, const qdq_attrs *attrs,
                 const void *in, void *want);
void tc_free(tcase *t);

/* A JSON number, or the strings "NaN", "Infinity", "-Infinity", as a double. */
double tc_jnum(const cJSON *v);
/* Text of a reported range: the expected value's bits in the compute type. */
bool tc_range_same(qdq_dtype dt, const char *text, double want);
/* Text of an output element, stored as element i of dt (false when it is not a value of dt). */
bool tc_elem_parse(qdq_dtype dt, const char *text, void *a, size_t i);
/* The output elements of got that differ from t->want (the first few printed, after what). */
int tc_tensor_diffs(const char *what, const tcase *t, const void *got);

#endif
