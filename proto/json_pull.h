/*
 * A strict JSON pull reader: the one JSON reader of every request format (native JSON, the
 * KServe v2 request's JSON, the safetensors header). Code that knows a document's shape reads
 * it value by value; nothing builds a tree and nothing recurses, so a body of a million '['
 * costs nothing, and tensor elements go straight from the text into typed buffers
 * (proto_num_parse_dtype).
 *
 * Rules beyond RFC 8259, all errors recorded with qdq_fail, each message naming the key, the
 * index path such as input[3][1], and the byte offset:
 *   - strings with control characters, bad escapes, lone surrogates or invalid UTF-8;
 *   - a finite number that rounds to infinity in the tensor's dtype ("1e39" for float32): a
 *     silent Infinity would change the op's range. The tokens NaN, Infinity and -Infinity are
 *     accepted where tensor elements are read;
 *   - limits (proto_limits, resolved: 0 means none beyond the hard cap PROTO_MAX_RANK):
 *     max_depth counts containers from the document's top (the top object is 1), max_rank and
 *     max_elements bound tensors -> PROTO_ETOOBIG naming the limit and the value.
 */
#ifndef PROTO_JSON_PULL_H
#define PROTO_JSON_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct proto_jr {
    const char *base, *p, *end;
    proto_limits lim; /* resolved: no zero fields */
    qdq_error *err;
} proto_jr;

/* Starts reading text[0, len). lim may be NULL (no limits); err receives the first failure. */
void proto_jr_init(proto_jr *r, const char *text, size_t len, const proto_limits *lim,
                   qdq_error *err);

static inline size_t proto_jr_off(const proto_jr *r) { return (size_t)(r->p - r->base); }
/* The byte at the read position, or -1 at the end. */
static inline int proto_jr_peek(const proto_jr *r)
{
    return r->p < r->end ? (unsigned char)*r->p : -1;
}
/* Skips JSON white space. */
void proto_jr_ws(proto_jr *r);
/* Whether the text at the read position starts with the n bytes s. */
static inline bool proto_jr_at(const proto_jr *r, const char *s, size_t n)
{
    return (size_t)(r->end - r->p) >= n && __builtin_memcmp(r->p, s, n) == 0;
}

/* "what: expected X, got Y at byte N". Returns the recorded code. */
int proto_jr_type_error(proto_jr *r, const char *what, const char *expected);
/* Opening a container at JSON depth `depth`: fails past max_depth. */
int proto_jr_enter(proto_jr *r, int depth);
/* "name[3][1]" from a name and the first n indices (idx NULL: zeros). */
const char *proto_jr_path(char *buf, size_t cap, const char *name, const int64_t *idx, int n);

/*
 * The string at the read position (which must be '"'), checking every rule. The decoded text
 * goes to out (up to cap bytes, not NUL-terminated; *len gets the full decoded length, which may
 * exceed cap). With out NULL only the raw span between the quotes is returned (*raw, *raw_end).
 */
int proto_jr_string(proto_jr *r, const char *what, char *out, size_t cap, size_t *len,
                    const char **raw, const char **raw_end);
/* true or false. */
int proto_jr_bool(proto_jr *r, const char *what, bool *out);
/* A JSON integer (no fraction, no exponent) in [lo, hi]. */
int proto_jr_int(proto_jr *r, const char *what, int64_t lo, int64_t hi, int64_t *out);
/* Any JSON number (strict syntax), correctly rounded to a double. */
int proto_jr_double(proto_jr *r, const char *what, double *out);
/* Skips one value of any type at container depth `depth` (the depth of the value itself when
 * it is a container), checking its syntax and the depth limit. */
int proto_jr_skip(proto_jr *r, const char *what, int depth);

/*
 * Objects. proto_jr_key reads `"key" :` for one of the n known names (at most 32) and sets
 * *which; unknown keys and keys already in *seen are errors naming them. proto_jr_any_key reads
 * any key (decoded into key, cut to cap - 1 bytes and NUL-terminated; *len the full length).
 * proto_jr_next, after a member or an element, reads ',' or the closing `close` ('}' or ']'):
 * *done is 1 at the close. Both leave the reader at the next value or key.
 */
int proto_jr_key(proto_jr *r, const char *where, const char *const *names, int n,
                 unsigned *seen, int *which);
int proto_jr_any_key(proto_jr *r, const char *where, char *key, size_t cap, size_t *len);
int proto_jr_next(proto_jr *r, const char *where, char close, int *done);
/* Opens an object or array ('{' or '[' at depth) and tells whether it is empty (*empty, the
 * close consumed). */
int proto_jr_open(proto_jr *r, const char *what, char open, int depth, bool *empty);

/*
 * Tensors: a number (rank 0) or nested arrays of numbers, read into elements of dtype. The
 * first element at each depth fixes the rank; the first array to close at each depth fixes
 * that dimension (an empty array fixes the rank too: [] is [0], [[],[]] is [2, 0]); every other
 * array must agree (else "ragged").
 *
 * With store false, elements are checked and counted only (the dtype is not known yet). With
 * store true they go into data: a growing malloc buffer (fixed false: at most max_elements,
 * and no more than the text could hold), or the caller's buffer of cap elements (fixed true:
 * an element past cap is an error saying the shape needs cap).
 */
typedef struct proto_jtensor {
    qdq_dtype dtype;
    bool store, fixed;
    char *data;
    uint64_t count, cap;
    int rank;
    int64_t dims[PROTO_MAX_RANK];
    char scratch[8];
} proto_jtensor;

/* A tensor value at the read position; depth0 is the JSON depth of the container holding it. */
int proto_jr_tensor(proto_jr *r, const char *name, int depth0, proto_jtensor *t);
/* A number or a flat array of numbers (a bound per channel) at depth: as proto_jr_tensor, but
 * nested arrays are an error. */
int proto_jr_numbers(proto_jr *r, const char *name, int depth, proto_jtensor *t);

#endif
