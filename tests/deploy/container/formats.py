#!/usr/bin/env python3
"""One request per format against a running server (or a load balancer in front of some), each
answer compared byte for byte with the op's exact result, as a user's client sends them:
GET /healthz and /readyz; JSON; raw little-endian float32; NumPy .npy; KServe v2 with Triton's
binary tensor extension (binary in, binary out).

    python3 tests/deploy/container/formats.py http://127.0.0.1:8080 [LABEL]

Prints "ok: ..." or "FAIL: ..." per check (tests/lib/checks.sh counts them). The tensor is
-1, -0.5, 0, 0.3 with 8 bits: QuantizeAndDequantizeV2 gives -1, -0.5, 0, 0.296875 (scale 128).
"""
import json
import struct
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
LABEL = (sys.argv[2] + ": ") if len(sys.argv) > 2 else ""
IN = [-1.0, -0.5, 0.0, 0.3]
OUT = [-1.0, -0.5, 0.0, 0.296875]
IN_F32 = struct.pack("<4f", *IN)
OUT_F32 = struct.pack("<4f", *OUT)


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + LABEL + what, flush=True)


def request(method, path, body=None, headers=None):
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        return 0, {}, str(e).encode()


def npy(data, shape):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % shape
    hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data


for path in ("/healthz", "/readyz"):
    st, _, body = request("GET", path)
    check(st == 200, f"GET {path}: {st} {body[:80]!r}")

# JSON: the README's example, its answer exactly.
st, h, body = request("POST", "/quantize-dequantize",
                      b'{"input": [[-1.0, -0.5], [0.0, 0.3]], "num_bits": 8}',
                      {"Content-Type": "application/json"})
want = (b'{"output":[[-1.0,-0.5],[0.0,0.296875]],"input_min":-1.0,"input_max":0.3,'
        b'"output_min":-1.0,"output_max":0.9921875,"scale":128.0,"inverse_scale":0.0078125}')
check(st == 200 and body.strip() == want, f"JSON: {st} {body[:200]!r}")

# Raw float32: the bytes, and the range in X-QDQ-* headers.
st, h, body = request("POST", "/quantize-dequantize?shape=4&num_bits=8", IN_F32,
                      {"Content-Type": "application/octet-stream"})
hl = {k.lower(): v for k, v in h.items()}
check(st == 200 and body == OUT_F32 and hl.get("x-qdq-scale") == "128.0",
      f"raw float32: {st} {body.hex()} (want {OUT_F32.hex()}), X-QDQ-Scale {hl.get('x-qdq-scale')}")

# .npy in, .npy out.
st, h, body = request("POST", "/quantize-dequantize?num_bits=8", npy(IN_F32, 4),
                      {"Content-Type": "application/x-npy"})
ok = st == 200 and body.startswith(b"\x93NUMPY") and len(body) >= 10
if ok:
    hlen = struct.unpack("<H", body[8:10])[0]
    header, data = body[10:10 + hlen].decode("latin-1"), body[10 + hlen:]
    ok = "'<f4'" in header and "(4,)" in header and data == OUT_F32
check(ok, f".npy: {st} {body[-16:].hex() if st == 200 else body[:200]!r}")

# KServe v2, binary tensor in and out (Triton's client's default).
head = json.dumps({"inputs": [{"name": "input", "shape": [4], "datatype": "FP32",
                               "parameters": {"binary_data_size": 16}}],
                   "parameters": {"num_bits": 8},
                   "outputs": [{"name": "output", "parameters": {"binary_data": True}},
                               {"name": "scale", "parameters": {"binary_data": False}}]}).encode()
st, h, body = request("POST", "/v2/models/quantize_and_dequantize_v2/infer", head + IN_F32,
                      {"Content-Type": "application/octet-stream",
                       "Inference-Header-Content-Length": str(len(head))})
hl = {k.lower(): v for k, v in h.items()}
ok = st == 200 and "inference-header-content-length" in hl
what = f"KServe v2 binary: {st} {body[:200]!r}"
if ok:
    n = int(hl["inference-header-content-length"])
    meta, data = json.loads(body[:n]), body[n:]
    outs = {o["name"]: o for o in meta.get("outputs", [])}
    ok = (data == OUT_F32 and outs.get("output", {}).get("parameters", {}).get("binary_data_size") == 16
          and outs.get("scale", {}).get("data") == [128.0])
    what = f"KServe v2 binary: {st}, output {data.hex()} (want {OUT_F32.hex()}), scale {outs.get('scale', {}).get('data')}"
check(ok, what)
