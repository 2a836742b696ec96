/*
 * The KServe v2 model "quantize_and_dequantize_v2" itself: the op run on a decoded inference
 * request, whichever transport brought it (HTTP's JSON or binary framing, kserve.h; gRPC's
 * ModelInferRequest, v2_grpc.h). Each transport decodes into a proto_v2_request, calls
 * proto_v2_run, and encodes the request's selected outputs from the result.
 */
#ifndef PROTO_V2_MODEL_H
#define PROTO_V2_MODEL_H

#include "kserve.h"
#include "proto.h"
#include "qdq.h"

/* What the op leaves for the encoders: the plan, and the accumulators and per-channel
 * parameters (qdq_params_get reads the reported ranges from params). Owned: malloc'ed here,
 * freed by proto_v2_result_clear. */
typedef struct proto_v2_result {
    qdq_plan plan;
    void *acc, *params;
} proto_v2_result;

/*
 * Runs the op on r, in place on r->req.data (the output replaces the input). Validates the
 * attributes and shape (qdq_plan_init: QDQ_EINVAL with TensorFlow's wording), refuses more
 * channels than lim->max_elements (PROTO_ETOOBIG: an empty tensor may still name a huge channel
 * dimension, whose per-channel state would be allocated), and checks given bounds (QDQ_EINVAL).
 * PROTO_ENOMEM when the per-channel state cannot be allocated. res is filled on success and left
 * zeroed on failure, with err holding the code and message.
 */
int proto_v2_run(proto_v2_request *r, const proto_limits *lim, proto_v2_result *res,
                 qdq_error *err);

/* Frees what res owns and zeroes it. */
void proto_v2_result_clear(proto_v2_result *res);

#endif
