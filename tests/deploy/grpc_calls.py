"""gRPC calls through a proxy, for tests/deploy/test_nginx_scaleout.sh.

usage: grpc_calls.py PROXY REPLICA health 1
       grpc_calls.py PROXY REPLICA infer N

health: grpc.health.v1 Check through PROXY; prints the status name (SERVING...) or the error.
infer:  N ModelInfer calls through PROXY on one channel, 4 at a time, over 6 different requests;
        each answer is compared with the answer REPLICA gives directly to the same request (asked
        once per request, when first needed). Prints "OK n FAIL m" and the failures' codes.
The messages come from protoc --python_out of proto/*.proto, on PYTHONPATH.
"""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

import grpc_predict_v2_pb2 as pb
import health_pb2 as hpb

OPTS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def infer_stub(target):
    ch = grpc.insecure_channel(target, options=OPTS)
    return ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                          request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=pb.ModelInferResponse.FromString)


def request(i):
    n = 16 + 997 * i
    r = pb.ModelInferRequest(model_name="quantize_and_dequantize_v2", id="nginx-%d" % i)
    t = r.inputs.add(name="input", datatype="FP32", shape=[n])
    t.contents.fp32_contents.extend([((k * 7919 + i) % 2001 - 1000) / 250.0 for k in range(n)])
    r.parameters["num_bits"].int64_param = 4 + i
    return r


def key(resp):
    return [o.name for o in resp.outputs], list(resp.raw_output_contents), resp.id


def main():
    proxy, replica, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "health":
        ch = grpc.insecure_channel(proxy)
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=hpb.HealthCheckResponse.FromString)
        try:
            print(hpb.HealthCheckResponse.ServingStatus.Name(
                check(hpb.HealthCheckRequest(), timeout=10).status))
        except grpc.RpcError as e:
            print(e.code().name, e.details())
        return
    reqs = [request(i) for i in range(6)]
    want = {}
    lock = threading.Lock()
    via, direct = infer_stub(proxy), infer_stub(replica)

    def one(i):
        r = reqs[i % len(reqs)]
        try:
            got = key(via(r, timeout=30))
        except grpc.RpcError as e:
            return e.code().name
        with lock:
            if i % len(reqs) not in want:
                want[i % len(reqs)] = key(direct(r, timeout=30))
        return "OK" if got == want[i % len(reqs)] else "WRONG"

    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(one, range(n)))
    bad = [r for r in res if r != "OK"]
    print("OK %d FAIL %d %s" % (res.count("OK"), len(bad), " ".join(sorted(set(bad)))))


if __name__ == "__main__":
    main()
