/*
 * The safetensors header (docs/api.md, "Whole checkpoints"): the 8-byte length prefix, the
 * header's JSON read and checked exactly as the format's reference implementation checks it,
 * and the header of an answer written as its reference writer writes one. Pure: no I/O; the
 * codec and the qdq command feed it bytes and stream the data section themselves.
 *
 * A file is 8 bytes little-endian N, N bytes of UTF-8 JSON (the header), then the data
 * section. The header is an object: an optional "__metadata__" (string to string) and one
 * entry per tensor, {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data section; other keys in an entry are ignored). Every broken rule is a PROTO_ESAFETENSORS
 * failure (HTTP 400 INVALID_SAFETENSORS) whose message says which rule broke and where (the
 * tensor's name, its offsets and sizes). The limits of this project (max_rank, max_depth, a
 * dimension above 2^63 - 1) are PROTO_ETOOBIG, as in every other decoder.
 *
 * Element sizes are in bits, as the reference counts them: F4 is 4 bits and F6_E2M3/F6_E3M2
 * are 6, packed; a tensor's bytes are elements x bits / 8, and a tensor whose bits are not a
 * whole number of bytes is an error (the reference's "misaligned slice").
 *
 * Ownership: a proto_st_header owns every name, dimension and metadata string it holds (two
 * arenas); proto_st_header_clear frees them. Names are NUL-terminated but may also hold NUL
 * (written "\u0000" in the JSON): their length is name_len.
 */
#ifndef PROTO_SAFETENSORS_H
#define PROTO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h" /* PROTO_LENGTH_UNKNOWN */
#include "proto.h"

/* The largest header the format allows (N), in bytes. */
#define PROTO_ST_MAX_HEADER 100000000u

/* The dtypes the reference knows, in its order (increasing alignment). */
typedef enum proto_st_dtype {
    PROTO_ST_BOOL,
    PROTO_ST_F4,
    PROTO_ST_F6_E2M3,
    PROTO_ST_F6_E3M2,
    PROTO_ST_U8,
    PROTO_ST_I8,
    PROTO_ST_F8_E5M2,
    PROTO_ST_F8_E4M3,
    PROTO_ST_F8_E8M0,
    PROTO_ST_F8_E4M3FNUZ,
    PROTO_ST_F8_E5M2FNUZ,
    PROTO_ST_I16,
    PROTO_ST_U16,
    PROTO_ST_F16,
    PROTO_ST_BF16,
    PROTO_ST_I32,
    PROTO_ST_U32,
    PROTO_ST_F32,
    PROTO_ST_C64,
    PROTO_ST_F64,
    PROTO_ST_I64,
    PROTO_ST_U64,
    PROTO_ST_NDTYPES
} proto_st_dtype;

/* "F32"...; NULL for a value out of range. */
const char *proto_st_dtype_name(proto_st_dtype dt);
/* Bits per element (4, 6, 8, 16, 32, 64); 0 for a value out of range. */
unsigned proto_st_dtype_bits(proto_st_dtype dt);
/* The dtype named by the n bytes at s; false when there is none. */
bool proto_st_dtype_parse(const char *s, size_t n, proto_st_dtype *out);
/* The op's dtype for F32, F64, F16 and BF16 (true); false for every other dtype. */
bool proto_st_dtype_qdq(proto_st_dtype dt, qdq_dtype *out);
/* The safetensors dtype of an op dtype (F32, F64, F16, BF16). */
proto_st_dtype proto_st_dtype_of(qdq_dtype dt);

/*
 * The bytes of a tensor of dtype and shape: elements x bits / 8. 0, or QDQ_EINVAL when the
 * element count or the bits overflow 64 bits, or the bits are not whole bytes (*bytes is then
 * 0). count (may be NULL) gets the element count.
 */
int proto_st_bytes(proto_st_dtype dt, const int64_t *dims, int rank, uint64_t *count,
                   uint64_t *bytes);

typedef struct proto_st_tensor {
    const char *name;   /* NUL-terminated (owned by the header) */
    size_t name_len;
    proto_st_dtype dtype;
    int rank;
    const int64_t *dims; /* rank values (owned by the header; NULL when rank is 0) */
    uint64_t count;     /* product of dims */
    uint64_t begin, end; /* data_offsets: bytes [begin, end) of the data section */
} proto_st_tensor;

typedef struct proto_st_meta {
    const char *key, *value; /* NUL-terminated (owned by the header) */
    size_t key_len, value_len;
} proto_st_meta;

typedef struct proto_st_header {
    proto_st_tensor *tensors; /* in the header's (JSON) order */
    size_t n_tensors;
    size_t *by_offset;        /* indices into tensors, in data order: by begin (then end, then
                               * JSON order: empty tensors may share an offset) */
    proto_st_meta *meta;      /* "__metadata__" in its JSON order */
    size_t n_meta;
    bool has_meta;            /* "__metadata__" was there (perhaps empty) */
    uint64_t data_len;        /* the data section's length: the last end (0 without tensors) */
    /* private */
    size_t *by_name;          /* indices into tensors, sorted by name (proto_st_has_name) */
    char *chars;              /* names and metadata strings, each NUL-terminated */
    int64_t *dims;            /* every tensor's dims */
} proto_st_header;

/*
 * The 8-byte prefix: N, checked against the format's limit (N <= 100,000,000) and, when
 * file_len is known (not PROTO_LENGTH_UNKNOWN), against the file's length (8 + N <= file_len).
 * 0, or PROTO_ESAFETENSORS with *n set to 0.
 */
int proto_st_prefix(const uint8_t b[8], uint64_t file_len, uint64_t *n, qdq_error *err);

/*
 * Reads and checks the n bytes of header JSON (what follows the prefix) into h, every rule of
 * the format: a JSON object, whitespace allowed around it; "__metadata__" an object of strings
 * (at most once; "null" counts as absent, as in the reference); every other key a tensor entry
 * with a known dtype, a shape of non-negative integers and data_offsets [begin, end]; names
 * unique; each entry's end - begin equal to its shape's bytes (no overflow); taken in order of
 * begin, the tensors contiguous from 0 without a gap or an overlap; and, when data_len is
 * known (not PROTO_LENGTH_UNKNOWN), the last end equal to it. With data_len unknown (a chunked
 * upload) the caller checks the data section's length at its end with proto_st_check_data_len.
 * Ranks are limited to lim->max_rank when that is nonzero, else PROTO_MAX_RANK; JSON depth to
 * lim->max_depth when nonzero. lim may be NULL.
 *
 * h is overwritten (not freed) and holds the header on success; on failure it is left empty.
 * 0, or PROTO_ESAFETENSORS, PROTO_ETOOBIG, PROTO_ENOMEM with the message in err.
 */
int proto_st_header_parse(const char *json, size_t n, uint64_t data_len, const proto_limits *lim,
                          proto_st_header *h, qdq_error *err);

/* The data section's length the header needs (the last end). */
static inline uint64_t proto_st_data_len(const proto_st_header *h) { return h->data_len; }
/* Whether the data section's actual length, data_len, is the one the header needs: 0, or
 * PROTO_ESAFETENSORS naming the last tensor and both lengths (the message of the parse). */
int proto_st_check_data_len(const proto_st_header *h, uint64_t data_len, qdq_error *err);

/* Whether a tensor of h is named name (NUL-terminated): a binary search. */
bool proto_st_has_name(const proto_st_header *h, const char *name);
/* The same for a name of len bytes; the index of the tensor in h->tensors, or -1. */
ptrdiff_t proto_st_find(const proto_st_header *h, const char *name, size_t len);

void proto_st_header_clear(proto_st_header *h);

/* A tensor appended after the input's data section by the writer (the ranges). */
typedef struct proto_st_extra {
    const char *name;     /* NUL-terminated */
    proto_st_dtype dtype;
    int rank;
    const int64_t *dims;  /* rank values (may be NULL when rank is 0) */
} proto_st_extra;

/*
 * The header of an answer, as the reference writer emits one: the 8-byte N, then compact JSON:
 * "__metadata__" first (when the input had one or policy_json is given: every input key in
 * input order, and the key "quantize_and_dequantize_v2" with the text policy_json as its string
 * value, replacing an input key of that name in place), then every tensor of h in its JSON
 * order with its own offsets, then the n_extra extra tensors, their offsets continuing from
 * h->data_len in order (each extra's bytes from proto_st_bytes); padded with spaces to a
 * multiple of 8 bytes. Strings are escaped as the reference (serde_json) escapes them.
 * Appends to out. 0; QDQ_EINVAL when an extra tensor's name is an input's or its size
 * overflows; PROTO_ETOOBIG when the header would exceed PROTO_ST_MAX_HEADER; PROTO_ENOMEM.
 * On failure out is as it was.
 */
int proto_st_header_write(const proto_st_header *h, const char *policy_json,
                          const proto_st_extra *extra, size_t n_extra, proto_buf *out,
                          qdq_error *err);

/* The n bytes at s as a JSON string, escaped as the reference writer (serde_json) escapes:
 * '"' and '\\', \b \t \n \f \r, other control bytes as \u00xx (lowercase); everything else
 * (UTF-8, DEL, '/') as it is. Appends to b. 0, or PROTO_ENOMEM. */
int proto_st_json_string(proto_buf *b, const char *s, size_t n);

/* The metadata key of the policy the writer adds. */
#define PROTO_ST_POLICY_KEY "quantize_and_dequantize_v2"

#endif
