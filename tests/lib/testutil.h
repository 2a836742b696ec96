/* Helpers shared by the tests: typed element access, bitwise comparison, files. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "qdq.h"

/* 1 in an AddressSanitizer build (gcc's __SANITIZE_ADDRESS__, clang's __has_feature), where the
 * tests that scale with the machine use fewer elements; else 0. */
#if defined(__SANITIZE_ADDRESS__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

/* Element i of an array of dtype, widened to double (exact). */
double tu_load(qdq_dtype dt, const void *a, size_t i);
/* Stores v (rounded once to dtype, to nearest even) as element i. */
void tu_store(qdq_dtype dt, void *a, size_t i, double v);
/* Same bits, or both NaN. */
bool tu_same_f32(float a, float b);
bool tu_same_f64(double a, double b);
bool tu_same(qdq_dtype dt, const void *a, const void *b, size_t i);
/* The six values the op reports per channel, by name ("input_min", "input_max", "output_min",
 * "output_max", "scale", "inverse_scale"), and a qdq_range's in that order. */
extern const char *const tu_range_keys[6];
void tu_range_values(const qdq_range *r, double v[6]);
/* "float32" etc. (and the KServe names) to a dtype; -1 when unknown. */
qdq_dtype tu_dtype(const char *name);
/* A path under the test data folder ($QDQ_TESTDATA, default "tests"). Static buffer. */
const char *tu_data_path(const char *rel);
/* The whole file, NUL-terminated (malloc'ed; *len gets its length when not NULL). Exits on error. */
char *tu_read_file(const char *path, size_t *len);
/* deflate at level with zlib's window_bits (15: zlib, 31: gzip, -15: raw), malloc'ed. */
unsigned char *tu_zcompress(const void *in, size_t n, int level, int window_bits, size_t *out_len);
/* A zlib or gzip stream inflated (malloc'ed, NUL-terminated), or NULL when it is not whole. */
char *tu_zdecompress(const void *in, size_t n, size_t *out_len);

#endif
