/*
 * KServe v2 / Open Inference Protocol (docs/api.md, "KServe v2") for the model "quantize_and_dequantize_v2",
 * with Triton's binary tensor data extension. Pure functions over bytes (kserve.c): the server
 * hands over the body and the Inference-Header-Content-Length value, and sends what the encoder
 * writes, adding the response headers itself.
 *
 * Ownership as in proto.h: a proto_v2_request owns its tensor and bounds (through its
 * proto_request) and proto_v2_request_clear frees them.
 */
#ifndef PROTO_KSERVE_H
#define PROTO_KSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define PROTO_V2_MODEL_NAME "quantize_and_dequantize_v2"
#define PROTO_V2_MODEL_VERSION "1"

/* The model's outputs, one bit each, in the order the response lists them. */
enum {
    PROTO_V2_OUT_OUTPUT = 1u << 0,
    PROTO_V2_OUT_INPUT_MIN = 1u << 1,
    PROTO_V2_OUT_INPUT_MAX = 1u << 2,
    PROTO_V2_OUT_OUTPUT_MIN = 1u << 3,
    PROTO_V2_OUT_OUTPUT_MAX = 1u << 4,
    PROTO_V2_OUT_SCALE = 1u << 5,
    PROTO_V2_OUT_INVERSE_SCALE = 1u << 6,
    PROTO_V2_OUT_ALL = 0x7f, /* the op's outputs: what a request without "outputs" gets */
    /* The error statistics (FP64, shape [1]), when the request asks for them ("stats"). */
    PROTO_V2_OUT_MAX_ABS_ERROR = 1u << 7,
    PROTO_V2_OUT_RMSE = 1u << 8,
    PROTO_V2_OUT_SQNR_DB = 1u << 9,
    PROTO_V2_OUT_NONFINITE = 1u << 10,
    PROTO_V2_OUT_STATS = 0x780,
    PROTO_V2_NOUTPUTS = 11,
};

typedef struct proto_v2_request {
    /* The input tensor (dtype, dims, data), the attributes from "parameters", and the bounds
     * from the inputs input_min / input_max (req.min / req.max, n_min / n_max). req.form is
     * PROTO_FORM_RAW when "input" came as binary data, PROTO_FORM_DATA when as JSON "data". */
    proto_request req;
    char id[256]; /* "id", to echo (NUL-terminated UTF-8) */
    bool has_id;
    unsigned outputs;        /* PROTO_V2_OUT_* requested; without "outputs", the op's seven (and
                              * the statistics when "stats" is true) */
    unsigned binary_outputs; /* the requested outputs that go as binary data */
} proto_v2_request;

/*
 * The model's request parameters and outputs, one implementation for every transport (the
 * HTTP JSON decoder below and the gRPC one, v2_grpc.c): each hands over a parameter's key and
 * its value as it found it, and each output's name.
 */
typedef enum proto_v2_kind {
    PROTO_V2_VAL_OTHER = 0, /* an object, an array, null: no parameter takes one */
    PROTO_V2_VAL_BOOL,
    PROTO_V2_VAL_NUMBER,
    PROTO_V2_VAL_STRING,
} proto_v2_kind;

typedef struct proto_v2_value {
    proto_v2_kind kind;
    bool b;
    double d;      /* integers arrive as doubles: exact up to 2^53, and the op's stay far below */
    const char *s; /* NUL-terminated */
} proto_v2_value;

/* A request parameter: the op's attributes, binary_data_output (into *bin_all), stats; Triton's
 * priority and timeout are taken and ignored. 0, or QDQ_EINVAL naming the key. */
int proto_v2_parameter(proto_v2_request *r, const char *key, const proto_v2_value *v,
                       bool *bin_all, qdq_error *err);
/* A requested output by name: its index (PROTO_V2_OUT_* bit k) in *k, added to r->outputs; a
 * statistic's name asks for the statistics. 0, or QDQ_EINVAL naming the outputs there are. */
int proto_v2_output(proto_v2_request *r, const char *name, int *k, qdq_error *err);
/* The name of output k ("output", "input_min", ... "nonfinite"). */
const char *proto_v2_output_name(int k);
/* The value of statistics output k (7..10: max_abs_error, rmse, sqnr_db, nonfinite): NaN for
 * a sqnr_db that has none (FP64 holds no null), and for statistics not computed. */
double proto_v2_stat_value(const proto_request *q, int k);
/* The outputs a request without an "outputs" list gets (the op's, and the statistics when asked
 * for), once every parameter is read. */
void proto_v2_outputs_default(proto_v2_request *r);

/* An empty request (proto_request_init's defaults, no id, no outputs). */
void proto_v2_request_init(proto_v2_request *r);
/* Frees what r owns and leaves it as proto_v2_request_init does. */
void proto_v2_request_clear(proto_v2_request *r);

/*
 * Decodes an inference request. body is the whole request body (len bytes); header_len is the
 * Inference-Header-Content-Length value, or SIZE_MAX when the header was absent (then the whole
 * body is JSON). With header_len, body[0, header_len) is the JSON and the binary data of the
 * inputs that carry "binary_data_size" follow in the order of "inputs", with nothing after.
 *
 * out is initialised here (whatever it held is not freed). On failure it is left cleared, and
 * err (code and message naming the field and the numbers involved) is QDQ_EINVAL for a bad
 * request, PROTO_ETOOBIG for a limit (lim: max_body, max_depth, max_rank, max_elements; 0 or a
 * NULL lim means none), PROTO_ENOMEM. Attribute values are checked later by qdq_plan_init.
 */
int proto_v2_decode(const char *body, size_t len, size_t header_len, const proto_limits *lim,
                    proto_v2_request *out, qdq_error *err);

/*
 * The same, but body is the caller's writable buffer and stays alive as long as out: a binary
 * "input" is not copied (out->req.data points into body, data_borrowed set), so the op can run
 * in place there.
 */
int proto_v2_decode_inplace(char *body, size_t len, size_t header_len, const proto_limits *lim,
                            proto_v2_request *out, qdq_error *err);

/*
 * Encodes the response: model_name, model_version, id (when the request had one), and the
 * requested outputs in PROTO_V2_OUT_* order: "output" (the request's datatype and shape; out
 * holds req.count elements of req.dtype), then input_min, input_max, output_min, output_max,
 * scale, inverse_scale from qdq_params_get(plan, params, c) in the compute type (FP64 for FP64
 * inputs, FP32 otherwise), shape [1] when axis = -1 and [C] per channel.
 *
 * Appends to buf. Without binary outputs the response is JSON only and *header_len is set to
 * SIZE_MAX. Otherwise the binary outputs carry "parameters": {"binary_data_size": N} instead of
 * "data", their little-endian bytes follow the JSON in the same order, and *header_len is the
 * length of the JSON this call wrote (the server sends it as Inference-Header-Content-Length,
 * with Content-Type application/octet-stream). On failure (PROTO_ENOMEM) buf is as it was.
 */
int proto_v2_encode(const proto_v2_request *r, const qdq_plan *plan, const void *params,
                    const void *out, proto_buf *buf, size_t *header_len, qdq_error *err);

/*
 * The same, except that when "output" is a binary output its bytes are left out: buf gets the
 * JSON and the binary ranges, and *split is where the output's bytes belong (= *header_len),
 * for a caller that already holds them. Without a binary "output", *split is SIZE_MAX and buf
 * is the whole response.
 */
int proto_v2_encode_split(const proto_v2_request *r, const qdq_plan *plan, const void *params,
                          const void *out, proto_buf *buf, size_t *header_len, size_t *split,
                          qdq_error *err);

#endif
