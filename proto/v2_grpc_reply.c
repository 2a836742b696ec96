/*
 * KServe v2 over gRPC, the answers (v2_grpc.h): the result of the model -> ModelInferResponse,
 * and the other RPCs' responses, packed by protobuf-c.
 *
 * The output tensor is not copied: its entry of raw_output_contents goes first on the wire,
 * written here as a field prefix that the caller sends before the tensor's own bytes (protobuf
 * allows a message's fields in any order, and a repeated field's entries keep their order).
 */
#include <stdlib.h>
#include <string.h>

#include "grpc_predict_v2.pb-c.h"
#include "health.pb-c.h"
#include "v2_grpc.h"

static const char *const in_names[3] = { "input", "input_min", "input_max" };

/* Appends a varint. */
static int put_varint(proto_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return proto_buf_append(b, t, n);
}

/* Packs message m onto the end of b. */
static int pack(const ProtobufCMessage *m, proto_buf *b)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (proto_buf_reserve(b, n + 1))
        return PROTO_ENOMEM;
    b->len += protobuf_c_message_pack(m, (uint8_t *)b->data + b->len);
    return 0;
}

int proto_v2_grpc_encode(const proto_v2_request *r, const proto_result *res, proto_buf *buf,
                         size_t *split, qdq_error *err)
{
    const proto_request *q = &r->req;
    const qdq_plan *plan = &res->plan;
    bool dbl = q->dtype == QDQ_FLOAT64;
    uint64_t C = plan->channels;
    size_t start = buf->len, rsize = dbl ? 8 : 4;
    int64_t out_dims[PROTO_MAX_RANK], range_dim = plan->attrs.axis < 0 ? 1 : (int64_t)C;
    memcpy(out_dims, q->dims, (size_t)q->rank * sizeof out_dims[0]);

    Inference__ModelInferResponse m = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse__InferOutputTensor tensors[PROTO_V2_NOUTPUTS],
        *tp[PROTO_V2_NOUTPUTS];
    ProtobufCBinaryData raw[PROTO_V2_NOUTPUTS];
    double stat[4];
    int64_t one = 1;
    char *ranges = NULL;
    int rc = 0;
    m.model_name = (char *)PROTO_V2_MODEL_NAME;
    m.model_version = (char *)PROTO_V2_MODEL_VERSION;
    if (r->has_id)
        m.id = (char *)r->id;
    m.outputs = tp;
    m.raw_output_contents = raw;
    size_t nranges = 0;
    for (int k = 1; k < 7; k++)
        nranges += (r->outputs >> k) & 1;
    if (nranges && C > SIZE_MAX / rsize / nranges)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
    ranges = malloc(nranges * C * rsize + 1);
    if (!ranges)
        return qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
    char *rp = ranges;
    for (int k = 0; k < PROTO_V2_NOUTPUTS; k++) {
        if (!(r->outputs & (1u << k)))
            continue;
        Inference__ModelInferResponse__InferOutputTensor *t = &tensors[m.n_outputs];
        *t = (Inference__ModelInferResponse__InferOutputTensor)
            INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
        t->name = (char *)proto_v2_output_name(k);
        t->datatype = (char *)(k == 0 ? proto_dtype_kserve(q->dtype)
                               : dbl || k >= 7 ? "FP64" : "FP32");
        t->n_shape = k == 0 ? (size_t)q->rank : 1;
        t->shape = k == 0 ? out_dims : k >= 7 ? &one : &range_dim;
        tp[m.n_outputs++] = t;
        if (k == 0)
            continue; /* its raw bytes go first on the wire, from where they lie */
        if (k >= 7) { /* a statistic: one FP64 */
            stat[k - 7] = proto_v2_stat_value(q, k);
            raw[m.n_raw_output_contents++] = (ProtobufCBinaryData){ 8, (uint8_t *)&stat[k - 7] };
            continue;
        }
        raw[m.n_raw_output_contents++] = (ProtobufCBinaryData){ C * rsize, (uint8_t *)rp };
        for (uint64_t c = 0; c < C; c++) {
            qdq_range g;
            qdq_params_get(plan, res->params, c, &g);
            double v[6] = { g.input_min, g.input_max, g.output_min, g.output_max, g.scale,
                            g.inverse_scale };
            float f = (float)v[k - 1];
            memcpy(rp, dbl ? (void *)&v[k - 1] : (void *)&f, rsize);
            rp += rsize;
        }
    }
    *split = SIZE_MAX;
    if (r->outputs & PROTO_V2_OUT_OUTPUT) {
        /* Field 6 (raw_output_contents), length-delimited: tag (6 << 3) | 2, then the length. */
        uint8_t tag = (6 << 3) | 2;
        rc = proto_buf_append(buf, &tag, 1) ||
             put_varint(buf, q->count * qdq_dtype_size(q->dtype));
        *split = buf->len - start;
    }
    rc = rc || pack(&m.base, buf);
    free(ranges);
    if (rc) {
        buf->len = start;
        *split = SIZE_MAX;
        return qdq_fail(err, PROTO_ENOMEM, "out of memory encoding the response");
    }
    return 0;
}

/* ---- the other RPCs ---- */

int proto_v2_grpc_bool_response(int which, proto_buf *buf)
{
    Inference__ServerLiveResponse live = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    Inference__ServerReadyResponse ready = INFERENCE__SERVER_READY_RESPONSE__INIT;
    Inference__ModelReadyResponse model = INFERENCE__MODEL_READY_RESPONSE__INIT;
    live.live = ready.ready = model.ready = 1;
    return pack(which == PROTO_V2_GRPC_LIVE    ? &live.base
                : which == PROTO_V2_GRPC_READY ? &ready.base
                                               : &model.base,
                buf);
}

int proto_v2_grpc_server_metadata(const char *version, proto_buf *buf)
{
    static char *const ext[] = { (char *)"parameters" };
    Inference__ServerMetadataResponse m = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    m.name = (char *)"qdq-server";
    m.version = (char *)version;
    m.n_extensions = 1;
    m.extensions = (char **)ext;
    return pack(&m.base, buf);
}

int proto_v2_grpc_model_metadata(proto_buf *buf)
{
    /* The HTTP route's metadata: datatype FP32 (any of FP32, FP64, FP16, BF16 is taken), any
     * shape. */
    Inference__ModelMetadataResponse m = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    Inference__ModelMetadataResponse__TensorMetadata t[10], *tp[10];
    int64_t any = -1;
    static char *const versions[] = { (char *)PROTO_V2_MODEL_VERSION };
    for (int i = 0; i < 10; i++) {
        t[i] = (Inference__ModelMetadataResponse__TensorMetadata)
            INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT;
        t[i].name = (char *)(i < 3 ? in_names[i] : proto_v2_output_name(i - 3));
        t[i].datatype = (char *)"FP32";
        t[i].n_shape = 1;
        t[i].shape = &any;
        tp[i] = &t[i];
    }
    m.name = (char *)PROTO_V2_MODEL_NAME;
    m.n_versions = 1;
    m.versions = (char **)versions;
    m.platform = (char *)"qdq-server";
    m.n_inputs = 3;
    m.inputs = tp;
    m.n_outputs = 7;
    m.outputs = tp + 3;
    return pack(&m.base, buf);
}

int proto_v2_grpc_health(bool serving, proto_buf *buf)
{
    Grpc__Health__V1__HealthCheckResponse m = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    m.status = serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    return pack(&m.base, buf);
}
