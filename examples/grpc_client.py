#!/usr/bin/python3
"""KServe v2 over gRPC with grpcio: the tensor's bytes in, the output and its ranges out.

    python3 examples/grpc_client.py     (server: $QDQ_GRPC, default 127.0.0.1:8081)

The Python messages and stub are generated from the server's own proto/grpc_predict_v2.proto
when this runs, with grpc_tools (Debian: python3-grpc-tools), into a temporary directory.
Triton's and KServe's gRPC clients work the same way: the model is quantize_and_dequantize_v2.
"""
import os
import sys
import tempfile

import grpc
import numpy as np
from grpc_tools import protoc

ADDR = os.environ.get("QDQ_GRPC", "127.0.0.1:8081")
PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")

# The stubs: grpc_predict_v2_pb2 (messages) and grpc_predict_v2_pb2_grpc (the client stub).
gen = tempfile.TemporaryDirectory()
if protoc.main(["protoc", "-I" + PROTO_DIR, "--python_out=" + gen.name,
                "--grpc_python_out=" + gen.name,
                os.path.join(PROTO_DIR, "grpc_predict_v2.proto")]) != 0:
    sys.exit("cannot generate the stubs from " + PROTO_DIR)
sys.path.insert(0, gen.name)
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

x = np.array([[-1.0, -0.5, 0.0], [0.3125, 0.8, 0.555]], dtype=np.float32)

with grpc.insecure_channel(ADDR) as channel:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    print("server ready:", stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready)

    # The op's attributes are request parameters; the tensor travels as raw little-endian
    # bytes. Without "outputs" every output comes back: output and the six ranges.
    req = pb.ModelInferRequest(model_name="quantize_and_dequantize_v2")
    req.parameters["num_bits"].int64_param = 4
    req.parameters["axis"].int64_param = 1
    req.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.tobytes())
    resp = stub.ModelInfer(req, timeout=10)

    # One raw_output_contents entry per output, in the order of resp.outputs (printed as the
    # shortest decimals that read back to the float32 values).
    for o, raw in zip(resp.outputs, resp.raw_output_contents):
        a = np.frombuffer(raw, dtype={"FP32": "<f4", "FP64": "<f8"}[o.datatype])
        print("%-13s %s %s" % (o.name, list(o.shape), [float(str(v)) for v in a]))
