/*
 * proto: the wire formats. Bytes <-> tensors and attributes for every format (native JSON, raw
 * little-endian bytes with query-string attributes, .npy, KServe v2), and the codecs
 * (codec.h) that run a whole exchange in each.
 *
 * No sockets and no HTTP library types here: a transport hands over bytes and key/value pairs.
 * Every length and product is checked for overflow before it is trusted. Failures are recorded
 * with qdq_fail (core/qdq.h) under the status codes of status.h; the message names the field,
 * the index, and the expected and actual values.
 *
 * Ownership: a proto_request owns its tensor data and bounds (malloc); proto_request_clear
 * frees them. Decoders fill a request the caller initialised with proto_request_init.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qdq.h"
#include "status.h"


/* The most dimensions any decoder accepts (TensorFlow's own cap is 254). */
#define PROTO_MAX_RANK 64

typedef struct proto_limits {
    uint64_t max_elements; /* elements in one tensor */
    int max_rank;          /* <= PROTO_MAX_RANK */
    int max_depth;         /* JSON nesting depth */
    uint64_t max_body;     /* bytes of a (decompressed) body */
} proto_limits;

/* How the input arrived; the response takes the same form. */
typedef enum proto_form {
    PROTO_FORM_NESTED = 0, /* JSON nested array (dtype float32) */
    PROTO_FORM_DATA = 1,   /* JSON object with "data" (flat or nested) */
    PROTO_FORM_B64 = 2,    /* JSON object with "b64" */
    PROTO_FORM_RAW = 3,    /* application/octet-stream */
    PROTO_FORM_NPY = 4,    /* application/x-npy */
} proto_form;

typedef struct proto_request {
    qdq_dtype dtype;
    int rank;
    int64_t dims[PROTO_MAX_RANK];
    uint64_t count;     /* product of dims */
    void *data;         /* count elements of dtype, little-endian (malloc; owned) */
    bool data_borrowed; /* data points into a buffer the caller owns: clear does not free it */
    qdq_attrs attrs;
    void *min, *max;    /* given bounds: n_min / n_max values of dtype (malloc; owned) or NULL */
    size_t n_min, n_max;
    char *min_text, *max_text; /* raw/npy: the query's bounds until the dtype is known (owned) */
    proto_form form;
    bool shape_given;   /* raw: "shape" was in the query (else 1-D of the body's length) */
    bool dtype_given;   /* raw/npy: "dtype" was in the query (npy: the descr must agree) */
    unsigned query_seen; /* raw/npy: the query keys given so far, one bit each (query.c) */
    int npy_version;    /* npy: 1, 2 or 3 (the response uses the same) */
    bool npy_bf16_v2;   /* npy bfloat16 came as '<V2' (else '<u2') */
    bool want_stats;    /* "stats": the answer carries the error statistics (computed only then) */
    const qdq_stats *stats; /* once computed: the statistics the answer carries (borrowed), or NULL */
} proto_request;

void proto_request_init(proto_request *req);
void proto_request_clear(proto_request *req);

/* A growable byte buffer. */
typedef struct proto_buf {
    char *data;
    size_t len, cap;
} proto_buf;

/* 0, or PROTO_ENOMEM. */
int proto_buf_reserve(proto_buf *b, size_t extra);
int proto_buf_append(proto_buf *b, const void *p, size_t n);
/* The buffer's memory, now the caller's (free); the buffer is left empty. */
char *proto_buf_detach(proto_buf *b, size_t *len);
void proto_buf_free(proto_buf *b);

/* A client's text for a message: printable ASCII but the quote ', others as '?', cut at 40
 * characters with "..."; buf holds at least 48 bytes. */
const char *proto_printable(char *buf, const char *s, size_t n);

/* The length of the valid UTF-8 sequence at s (1..4; shortest form, no surrogates, at most
 * U+10FFFF), or 0 when s does not start one within the avail bytes there (avail >= 1). A
 * NUL-terminated string may pass SIZE_MAX: its NUL ends any sequence. */
size_t proto_utf8_len(const unsigned char *s, size_t avail);

/* A length header's value (Content-Length...): decimal digits only, no sign, no spaces, below
 * 2^64. false when it is not one. */
bool proto_parse_length(const char *v, uint64_t *out);

/* dtype names: float32 float64 float16 half bfloat16, and FP32 FP64 FP16 BF16. */
int proto_dtype_parse(const char *s, size_t n, qdq_dtype *out);
/* KServe's name of a dtype: FP32 FP64 FP16 BF16. */
const char *proto_dtype_kserve(qdq_dtype dtype);

/* ---- numbers (num.cc: fast_float to parse, dragonbox to print) ---- */

/* Shortest text that reads back to the identical value; NaN, Infinity, -Infinity for the
 * non-finite. buf holds at least PROTO_NUM_MAX bytes; returns the length (no NUL written). */
#define PROTO_NUM_MAX 32
size_t proto_num_format_f32(float v, char *buf);
size_t proto_num_format_f64(double v, char *buf);
/* A JSON number at [p, end) (also the tokens NaN, Infinity, -Infinity), correctly rounded to
 * the type. Returns the characters consumed, 0 when no number starts at p. */
size_t proto_num_parse_f32(const char *p, const char *end, float *out);
size_t proto_num_parse_f64(const char *p, const char *end, double *out);
/* The same, rounded once to dtype and stored as element i of the dtype array a. */
size_t proto_num_parse_dtype(qdq_dtype dtype, const char *p, const char *end, void *a, size_t i);
/* Element i of a dtype array, printed shortest for the dtype (float16/bfloat16 values print as
 * the float32 they widen to, which reads back to the same 16-bit value). */
size_t proto_num_format_dtype(qdq_dtype dtype, const void *a, size_t i, char *buf);

/* ---- native JSON (json_read.c, json_write.c) ---- */

/* Appends elements [begin, begin + n) of a dtype array as shortest numbers separated by
 * commas (json_write.c; also used for KServe v2 data). */
int proto_json_put_numbers(proto_buf *b, qdq_dtype dt, const void *a, uint64_t begin,
                           uint64_t n);

/*
 * Decodes a native JSON request body (docs/api.md, "JSON requests") into req: the input tensor, every attribute,
 * and bounds. Unknown keys, wrong types, ragged arrays, bad dtype or shape, a data/b64 size that
 * does not match the shape, and limits are errors.
 */
int proto_json_decode(const char *body, size_t len, const proto_limits *lim, proto_request *req,
                      qdq_error *err);

/*
 * Encodes the response (docs/api.md, "JSON responses"): "output" in the request's form (nested, or object with flat
 * "data", or "b64"), then input_min, input_max, output_min, output_max, scale, inverse_scale
 * (numbers when axis = -1, arrays per channel). out is the output tensor (count elements of
 * req->dtype). Appends to buf.
 */
int proto_json_encode(const proto_request *req, const qdq_plan *plan, const void *params,
                      const void *out, proto_buf *buf, qdq_error *err);

/* The six reported ranges as JSON members, each after a comma: ,"input_min":x,...
 * ,"inverse_scale":x (numbers for axis -1, arrays per channel; the compute type's values). */
int proto_json_put_ranges(proto_buf *b, const qdq_plan *plan, const void *params);

/*
 * The error statistics as a JSON object: {"max_abs_error":x,"rmse":x,"sqnr_db":x or null,
 * "nonfinite":n} (qdq_stats_summarize; a NaN prints as NaN). Appends to buf. 0 or PROTO_ENOMEM.
 */
int proto_stats_json(const qdq_stats *st, proto_buf *buf);

/* ---- raw bytes and query strings (query.c) ---- */

/*
 * One query-string argument (already percent-decoded) of the raw and npy forms: dtype, shape,
 * num_bits, signed_input, range_given, round_mode, narrow_range, axis, input_min, input_max
 * (comma-separated numbers). Unknown keys and repeated keys are errors. Booleans: true/false/1/0.
 */
int proto_query_arg(proto_request *req, const char *key, const char *value,
                    const proto_limits *lim, qdq_error *err);

/*
 * After all arguments of a raw request: with the body's length known, fixes the shape (1-D of
 * body_len / itemsize when "shape" was absent), checks body_len == count * itemsize (the message
 * gives both numbers) and the limits, and converts the bounds text to dtype. Does not allocate
 * the tensor: the server receives the body straight into its own buffer.
 */
int proto_raw_finish(proto_request *req, uint64_t body_len, const proto_limits *lim,
                     qdq_error *err);

/*
 * Converts the query's bounds text (min_text, max_text) to arrays of req->dtype in req->min and
 * req->max (n_min, n_max) and frees the text; nothing to do when there is none. proto_raw_finish
 * and proto_npy_header_parse call it once the dtype is known.
 */
int proto_query_bounds(proto_request *req, qdq_error *err);

/*
 * The value of an X-QDQ-* header: the reported quantity `which` (0 input_min, 1 input_max,
 * 2 output_min, 3 output_max, 4 scale, 5 inverse_scale) for every channel, comma-separated,
 * shortest form. Appends to buf (no NUL).
 */
int proto_ranges_format(const qdq_plan *plan, const void *params, int which, proto_buf *buf);
/* "2,3,4" (empty for rank 0). Appends to buf. */
int proto_shape_format(const proto_request *req, proto_buf *buf);

/* ---- .npy (npy.c) ---- */

/*
 * Parses the header of a .npy file from its first len bytes: magic, version 1/2/3, the header
 * dict ('descr', 'fortran_order', 'shape'). Accepts '<f4' '<f8' '<f2', and for bfloat16 '<V2'
 * or '<u2' when the query said dtype=bfloat16 (req->dtype preset by proto_query_arg; 'dtype' in
 * the query must otherwise agree with descr). Rejects object arrays and pickles, big-endian and
 * Fortran order, bad dicts, and shapes over the limits. On success fills req's dtype, rank,
 * dims, count, npy fields and *data_offset (header length), and converts the query's bounds
 * (proto_query_bounds); PROTO_EAGAIN when more bytes are
 * needed to see the whole header. Checks file_len == data_offset + count * itemsize when
 * file_len is known (UINT64_MAX when not).
 */
int proto_npy_header_parse(const uint8_t *buf, size_t len, uint64_t file_len,
                           const proto_limits *lim, proto_request *req, size_t *data_offset,
                           qdq_error *err);

/* Writes a .npy header for req's dtype and shape (same version and descr as the request),
 * padded so the data starts at a multiple of 64. Appends to buf. */
int proto_npy_header_write(const proto_request *req, proto_buf *buf);

#endif
