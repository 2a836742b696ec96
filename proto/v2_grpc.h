/*
 * KServe v2 over gRPC: the messages of inference.GRPCInferenceService (grpc_predict_v2.proto)
 * <-> the v2 model's request and result (kserve.h, codec.h: proto_run). Bytes in, bytes out: protobuf-c
 * reads and writes the messages; no gRPC library types here (server/grpc.c is the transport).
 *
 * The inputs, attributes, outputs, rules and error messages are the HTTP route's
 * (proto_v2_decode), spelled in the gRPC message's fields:
 *   inputs "input", "input_min", "input_max" with datatype FP32, FP64, FP16 or BF16 (the same
 *     for all three) and a shape; their data in raw_input_contents (one entry per input, in the
 *     order of inputs; every datatype) or in contents (fp32_contents for FP32, fp64_contents for
 *     FP64; FP16 and BF16 have no typed field), never both in one request;
 *   the op's attributes in the request's parameters: signed_input, range_given, narrow_range
 *     (bool_param), num_bits, axis (int64_param, or Triton's uint64_param or integral
 *     double_param), round_mode (string_param); priority and timeout are ignored, as on HTTP;
 *   outputs: a selection among output, input_min, input_max, output_min, output_max, scale,
 *     inverse_scale (all of them when none is named); every one is answered in
 *     raw_output_contents.
 */
#ifndef PROTO_V2_GRPC_H
#define PROTO_V2_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "kserve.h"
#include "proto.h"
#include "codec.h"

/*
 * Decodes a serialized ModelInferRequest. msg (len bytes) lies in the caller's writable buffer,
 * which starts at an 8-aligned address at or below msg, and which must stay alive and untouched
 * as long as out: the "input" tensor of raw_input_contents is not copied (out->req.data points
 * into it, data_borrowed set; when the tensor is not aligned for its item size it is first moved
 * down by up to 7 bytes, over bytes of the message already read: see
 * proto_v2_grpc_input_skew to avoid that move), so the op runs in place there. Every other byte is copied out as needed. Bounds and typed contents are
 * copied (owned by out).
 *
 * Fails with PROTO_ENOTFOUND for a model name other than PROTO_V2_MODEL_NAME or a version other
 * than "" and PROTO_V2_MODEL_VERSION; QDQ_EINVAL for a message protobuf cannot parse and for
 * every rule above; PROTO_ETOOBIG for the limits (lim: max_rank, max_elements; 0 or a NULL lim
 * means none; and decoding may allocate at most 2 * len + 1 MiB besides the tensor); PROTO_ENOMEM.
 * out is initialised here; on failure it is left cleared.
 */
int proto_v2_grpc_decode(char *msg, size_t len, const proto_limits *lim, proto_v2_request *out,
                         qdq_error *err);

/*
 * Where to place a ModelInferRequest in memory so that its input tensor needs no move: head holds
 * the message's first n bytes (what has arrived, or the first slice of it). Returns the offset,
 * modulo 8, of the data of the largest raw_input_contents entry that starts in head (0 when
 * none does): a message copied to an address that is this much below an 8-aligned one has that
 * entry aligned, and proto_v2_grpc_decode then leaves it where it is.
 */
size_t proto_v2_grpc_input_skew(const char *head, size_t n);

/*
 * Encodes the ModelInferResponse of request r and its result res (r's data holds the output):
 * model_name, model_version, id (when r has one), and each selected output in PROTO_V2_OUT_*
 * order in outputs (name, datatype, shape) and raw_output_contents: "output" with the input's
 * datatype and shape, the ranges in the compute type (FP64 for FP64 input, else FP32) with
 * shape [1] when axis = -1 and [C] per channel.
 *
 * The output tensor's bytes are not copied: when "output" is selected, the message is
 * buf[0, *split), then the r->req.count * itemsize bytes at r->req.data, then buf[*split, len)
 * (the output's entry of raw_output_contents comes first on the wire, which protobuf allows).
 * Without "output", *split is SIZE_MAX and buf holds the whole message. Appends to buf;
 * PROTO_ENOMEM leaves buf as it was.
 */
int proto_v2_grpc_encode(const proto_v2_request *r, const proto_result *res, proto_buf *buf,
                         size_t *split, qdq_error *err);

/*
 * The other RPCs' answers, serialized into buf (appended). Each returns 0 or PROTO_ENOMEM.
 * Readiness and metadata requests name a model (name, version): proto_v2_grpc_model_check
 * checks a serialized ModelReadyRequest or ModelMetadataRequest (they have the same fields):
 * QDQ_EINVAL when it does not parse, PROTO_ENOTFOUND with the HTTP route's message when it names
 * another model or version.
 */
int proto_v2_grpc_model_check(const char *msg, size_t len, qdq_error *err);
/* A serialized grpc.health.v1.HealthCheckRequest: service "" (the whole server) or
 * "inference.GRPCInferenceService"; PROTO_ENOTFOUND for another, QDQ_EINVAL when it does not
 * parse. */
int proto_v2_grpc_health_check(const char *msg, size_t len, qdq_error *err);
int proto_v2_grpc_bool_response(int which, proto_buf *buf); /* PROTO_V2_GRPC_* below */
int proto_v2_grpc_server_metadata(const char *version, proto_buf *buf);
int proto_v2_grpc_model_metadata(proto_buf *buf);
/* grpc.health.v1.HealthCheckResponse: SERVING or NOT_SERVING. */
int proto_v2_grpc_health(bool serving, proto_buf *buf);

enum { PROTO_V2_GRPC_LIVE, PROTO_V2_GRPC_READY, PROTO_V2_GRPC_MODEL_READY };

#endif
