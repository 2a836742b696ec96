/*
 * KServe v2 over gRPC, the codec (proto/v2_grpc.c) and the model (proto/v2_model.c), with
 * messages built by protobuf-c: where the input tensor ends up (in place in the caller's buffer,
 * aligned, moved only when the placement hint was not followed), the response's wire layout
 * (prefix + output + rest parses back into the selected outputs), the unpack budget against
 * messages of many tiny entries, and proto_v2_run's limit on channels. The Python client tests
 * (tests/grpc) cover the rules and messages end to end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grpc_predict_v2.pb-c.h"
#include "v2_grpc.h"
#include "codec.h"

#define MODEL "quantize_and_dequantize_v2"

static const proto_limits lim = { 1u << 20, 8, 32, 1u << 26 };

/* A request for an FP32 input of n elements (values i - n/2) with an id of id_len bytes, which
 * moves the tensor within the message. Serialized into a malloc'ed buffer (*len). */
static uint8_t *fp32_request(size_t n, size_t id_len, size_t *len)
{
    Inference__ModelInferRequest r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    Inference__ModelInferRequest__InferInputTensor t =
        INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT, *tp = &t;
    int64_t shape = (int64_t)n;
    float *v = malloc(n * 4 + 1);
    char id[64];
    for (size_t i = 0; i < n; i++)
        v[i] = (float)i - (float)(n / 2);
    memset(id, 'x', id_len);
    id[id_len] = '\0';
    ProtobufCBinaryData raw = { n * 4, (uint8_t *)v };
    r.model_name = (char *)MODEL;
    r.id = id;
    r.n_inputs = 1;
    r.inputs = &tp;
    t.name = (char *)"input";
    t.datatype = (char *)"FP32";
    t.n_shape = 1;
    t.shape = &shape;
    r.n_raw_input_contents = 1;
    r.raw_input_contents = &raw;
    *len = inference__model_infer_request__get_packed_size(&r);
    uint8_t *out = malloc(*len + 1);
    inference__model_infer_request__pack(&r, out);
    free(v);
    return out;
}

/* The tensor is used where it lies: aligned at the placement the hint gives, moved otherwise. */
static void test_in_place(void)
{
    for (size_t id_len = 0; id_len < 9; id_len++) {
        size_t len, n = 1000;
        uint8_t *m = fp32_request(n, id_len, &len);
        size_t pad = (8 - proto_v2_grpc_input_skew((const char *)m, len)) % 8;
        for (int follow = 0; follow < 2; follow++) {
            size_t at = follow ? pad : (pad + 1) % 8;
            char *buf = aligned_alloc(8, 8 * ((len + 16) / 8 + 1));
            memcpy(buf + at, m, len);
            /* Where the tensor's bytes lie in the buffer before decoding. */
            char *raw = memmem(buf + at, len, "\0\0\xfa\xc3", 4); /* -500.0f */
            proto_v2_request v;
            qdq_error err = { 0 };
            int rc = proto_v2_grpc_decode(buf + at, len, &lim, &v, &err);
            CHECK(rc == 0, "id %zu: decode: %s", id_len, err.msg);
            if (rc == 0) {
                const float *f = v.req.data;
                CHECK(v.req.data_borrowed && (uintptr_t)f % 4 == 0, "id %zu: in place, aligned",
                      id_len);
                CHECK(f[0] == -500.0f && f[n - 1] == 499.0f, "id %zu: values %g %g", id_len,
                      f[0], f[n - 1]);
                if (follow)
                    CHECK((const char *)f == raw, "id %zu: the hint's placement needs no move",
                          id_len);
            }
            proto_v2_request_clear(&v);
            free(buf);
        }
        free(m);
    }
}

/* Response = buf[0, split) + output + buf[split, len): parses into the selected outputs. */
static void test_response_layout(void)
{
    size_t len;
    uint8_t *m = fp32_request(64, 3, &len);
    char *buf = aligned_alloc(8, 8 * (len / 8 + 2));
    memcpy(buf, m, len);
    proto_v2_request v;
    proto_result res;
    qdq_error err = { 0 };
    CHECK(proto_v2_grpc_decode(buf, len, &lim, &v, &err) == 0, "decode: %s", err.msg);
    CHECK(proto_run(&v.req, &lim, &res, &err) == 0, "run: %s", err.msg);
    for (unsigned sel = 1; sel <= PROTO_V2_OUT_ALL; sel += 9) {
        v.outputs = sel;
        proto_buf b = { 0 }, whole = { 0 };
        size_t split;
        CHECK(proto_v2_grpc_encode(&v, &res, &b, &split, &err) == 0, "encode: %s", err.msg);
        bool has = sel & PROTO_V2_OUT_OUTPUT;
        CHECK(has == (split != SIZE_MAX), "outputs %#x: split %zu", sel, split);
        if (has) {
            proto_buf_append(&whole, b.data, split);
            proto_buf_append(&whole, v.req.data, 64 * 4);
            proto_buf_append(&whole, b.data + split, b.len - split);
        } else {
            proto_buf_append(&whole, b.data, b.len);
        }
        Inference__ModelInferResponse *r =
            inference__model_infer_response__unpack(NULL, whole.len, (uint8_t *)whole.data);
        CHECK(r != NULL, "outputs %#x: the response parses", sel);
        if (r) {
            size_t want = (size_t)__builtin_popcount(sel);
            CHECK(r->n_outputs == want && r->n_raw_output_contents == want &&
                      strcmp(r->id, "xxx") == 0,
                  "outputs %#x: %zu outputs, %zu raw", sel, r->n_outputs,
                  r->n_raw_output_contents);
            if (has && r->n_raw_output_contents)
                CHECK(r->raw_output_contents[0].len == 256 &&
                          !memcmp(r->raw_output_contents[0].data, v.req.data, 256) &&
                          !strcmp(r->outputs[0]->name, "output"),
                      "outputs %#x: the output first, its bytes", sel);
            inference__model_infer_response__free_unpacked(r, NULL);
        }
        proto_buf_free(&b);
        proto_buf_free(&whole);
    }
    proto_result_clear(&res);
    proto_v2_request_clear(&v);
    free(buf);
    free(m);
}

/* Many tiny inputs entries (2 bytes each on the wire, a struct each unpacked): over the budget. */
static void test_budget(void)
{
    size_t n = 200000, len = 2 + strlen(MODEL) + 2 * n;
    char *m = malloc(len);
    m[0] = 0x0a, m[1] = (char)strlen(MODEL);
    memcpy(m + 2, MODEL, strlen(MODEL));
    for (size_t i = 0; i < n; i++)
        m[2 + strlen(MODEL) + 2 * i] = 0x2a, m[3 + strlen(MODEL) + 2 * i] = 0;
    proto_v2_request v;
    qdq_error err = { 0 };
    int rc = proto_v2_grpc_decode(m, len, &lim, &v, &err);
    CHECK(rc == PROTO_ETOOBIG && strstr(err.msg, "needs more than"),
          "200000 empty inputs: %d %s", rc, err.msg);
    free(m);
}

/* proto_v2_run: the channel limit (ops.c's message), and a failure leaves nothing. */
static void test_run_limits(void)
{
    proto_v2_request v;
    proto_v2_request_init(&v);
    v.req.rank = 2;
    v.req.dims[0] = 0;
    v.req.dims[1] = 5000;
    v.req.count = 0;
    v.req.attrs.axis = 1;
    float dummy = 0;
    v.req.data = &dummy;
    v.req.data_borrowed = true;
    proto_limits small = lim;
    small.max_elements = 1024;
    proto_result res;
    qdq_error err = { 0 };
    int rc = proto_run(&v.req, &small, &res, &err);
    CHECK(rc == PROTO_ETOOBIG &&
              strcmp(err.msg, "axis 1 has 5000 channels, over the limit of 1024 "
                              "(--max-elements)") == 0,
          "channels over the limit: %d %s", rc, err.msg);
    CHECK(res.acc == NULL && res.params == NULL, "nothing left after a failure");
    memset(&err, 0, sizeof err);
    v.req.attrs.num_bits = 0;
    rc = proto_run(&v.req, &lim, &res, &err);
    CHECK(rc == QDQ_EINVAL && strstr(err.msg, "num_bits"), "num_bits 0: %d %s", rc, err.msg);
    proto_v2_request_clear(&v);
}

int main(void)
{
    test_in_place();
    test_response_layout();
    test_budget();
    test_run_limits();
    return check_done();
}
