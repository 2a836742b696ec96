#!/usr/bin/python3
"""Whole checkpoints against the real server and the qdq command (docs/api.md, "Whole
checkpoints"). Run by tests/checkpoint/run.sh with Debian's python3 (numpy, requests).

Checkpoints are generated here, shaped like a decoder model's: embeddings, attention and MLP
projections, norms, biases, a rotary buffer, integer and boolean buffers, an F8 tensor, an F64
tensor with NaN, inf and -0.0, an empty and a scalar tensor, BF16/F16/F32/F64 weights, tensors
not in name order. Checked:
  - every quantized tensor equals, bit for bit, what the raw route (the core) answers for the
    same bytes and attributes, and its reported ranges are the raw route's; every other tensor
    is byte-identical; header and metadata as the format and the contract say; statistics
    within 1e-9 of a float64 reference computed here;
  - every rule of the format broken once: 400 INVALID_SAFETENSORS, others served meanwhile;
  - uploads with Content-Length, chunked, gzip; a client gone halfway leaves no spool file;
    a full spool gives 507 and leaves nothing (a small tmpfs, mounted as root);
  - a checkpoint larger than --max-body-bytes succeeds, one larger than --max-checkpoint-bytes
    is refused before its body is read; more than --max-checkpoint-inflight get 503;
  - qdq on a file, a sharded directory and a .npy: output and report byte-identical to the
    server's; IN = OUT refused; a truncated input leaves no OUT; exit codes.
Prints "N passed, N failed".
"""
import fnmatch
import gzip
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

SERVER = os.path.abspath(os.environ.get("QDQ_SERVER", "build/qdq-server"))
QDQ = os.path.join(os.path.dirname(SERVER), "qdq")
VERBOSE = os.environ.get("QDQ_TEST_VERBOSE") == "1"
passed = failed = skipped = 0


def check(ok, msg):
    global passed, failed
    if ok:
        passed += 1
        if VERBOSE:
            print("ok: " + msg)
    else:
        failed += 1
        print("FAIL: " + msg, flush=True)
    return ok


def skip(msg):
    global skipped
    skipped += 1
    print("skip: " + msg, flush=True)


# ---- safetensors, written and read here (the reference writer's layout) ----

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
QDQ_DTYPE = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16"}


def bf16(a):
    """float32 values to bfloat16 bits, rounded to nearest even."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def widen(dtype, raw):
    """A tensor's bytes as float64 values (float16 and bfloat16 exactly)."""
    if dtype == "F32":
        return np.frombuffer(raw, np.float32).astype(np.float64)
    if dtype == "F64":
        return np.frombuffer(raw, np.float64).copy()
    if dtype == "F16":
        return np.frombuffer(raw, np.float16).astype(np.float64)
    u = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
    return u.view(np.float32).astype(np.float64)


def make_st(tensors, metadata=None, order=None):
    """tensors: list of (name, dtype, shape, bytes) in data order; the header lists them in
    `order` (names) or reversed. Returns the file's bytes."""
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    off = 0
    entries = {}
    for name, dt, shape, raw in tensors:
        entries[name] = {"dtype": dt, "shape": list(shape),
                         "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    for name in (order or [t[0] for t in reversed(tensors)]):
        hdr[name] = entries[name]
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def read_st(b):
    """(header as an ordered list of (key, value), data bytes, header length)."""
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n], object_pairs_hook=list)
    return hdr, b[8 + n:], n


def decoder_model(seed=1):
    rng = np.random.default_rng(seed)
    t = []

    def add(name, dt, shape, values=None, raw=None):
        if raw is None:
            v = rng.standard_normal(shape).astype(np.float32) * 0.05 if values is None else values
            if dt == "BF16":
                raw = bf16(v).tobytes()
            elif dt == "F16":
                raw = np.asarray(v, np.float16).tobytes()
            elif dt == "F64":
                raw = np.asarray(v, np.float64).tobytes()
            else:
                raw = np.asarray(v, np.float32).tobytes()
        t.append((name, dt, shape, raw))

    add("model.layers.1.self_attn.q_proj.weight", "BF16", (64, 48))
    add("model.embed_tokens.weight", "BF16", (200, 48))
    add("model.layers.0.self_attn.k_proj.weight", "F16", (32, 48))
    add("model.layers.0.self_attn.v_proj.weight", "F32", (32, 48))
    add("model.layers.0.self_attn.o_proj.weight", "F32", (48, 64))
    add("model.layers.0.mlp.gate_proj.weight", "BF16", (96, 48))
    add("model.layers.0.mlp.down_proj.weight", "F16", (48, 96))
    add("model.layers.0.input_layernorm.weight", "F32", (48,), values=1 + rng.standard_normal(48) * 0.1)
    add("model.layers.0.self_attn.q_proj.bias", "F32", (64,))
    add("model.rotary_emb.inv_freq", "F32", (24,), values=1.0 / (10000 ** (np.arange(24) / 24)))
    add("model.position_ids", "I64", (1, 16), raw=np.arange(16, dtype=np.int64).tobytes())
    add("model.attention_mask", "BOOL", (16,), raw=(np.arange(16) % 3 == 0).astype(np.uint8).tobytes())
    add("model.scales.fp8", "F8_E4M3", (8,), raw=bytes(range(8)))
    add("model.special.f64", "F64", (6,), values=[1.5, float("nan"), float("inf"), -0.0, -2.25, 0.125])
    add("model.empty", "F32", (0, 5), raw=b"")
    add("model.scalar", "F32", (), values=np.float32(0.75))
    add("lm_head.weight", "F16", (200, 48))
    add("model.norm.weight", "BF16", (48,), values=np.ones(48, np.float32))
    return t


# ---- the server ----

class Server:
    def __init__(self, *args, spool=None):
        self.err = tempfile.NamedTemporaryFile(prefix="qdq-ckpt-", delete=False)
        cmd = [SERVER, "--listen", "127.0.0.1:0", "--access-log", "off", "--shutdown-grace",
               "0", "--grpc-listen", "none", "--workers", "2"] + list(args)
        if spool:
            cmd += ["--spool-dir", spool]
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err)
        self.port = None
        for _ in range(200):
            with open(self.err.name) as f:
                for line in f:
                    if line.startswith("listening on "):
                        self.port = int(line.rsplit(":", 1)[1])
            if self.port or self.p.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            raise RuntimeError("the server did not start: " + open(self.err.name).read())
        self.base = "http://127.0.0.1:%d" % self.port
        self.url = self.base + "/quantize-dequantize"

    def metric(self, name):
        for line in requests.get(self.base + "/metrics", timeout=30).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -9
        os.unlink(self.err.name)
        return rc


CT = {"Content-Type": "application/x-safetensors"}


def post(srv, body, params=None, headers=None, **kw):
    h = dict(CT)
    h.update(headers or {})
    return requests.post(srv.url, params=params or {}, data=body, headers=h, timeout=120, **kw)


def raw_reference(srv, dt, shape, raw, attrs):
    """The core's answer through the raw route: (output bytes, {range name: text})."""
    q = {"dtype": QDQ_DTYPE[dt], "shape": ",".join(str(d) for d in shape)}
    for k, v in attrs.items():
        if k in ("input_min", "input_max"):
            v = ",".join(json.dumps(x) for x in v) if isinstance(v, list) else json.dumps(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        q[k] = str(v)
    r = requests.post(srv.url, params=q, data=raw, timeout=60,
                      headers={"Content-Type": "application/octet-stream"})
    ranges = {}
    for k in ("input_min", "input_max", "output_min", "output_max", "scale", "inverse_scale"):
        h = r.headers.get("X-QDQ-" + "-".join(w.capitalize() for w in k.split("_")))
        ranges[k] = h
    return r.status_code, r.content, ranges


def jtext(v):
    """A report's range value as the raw route's header text."""
    def one(x):
        return x if isinstance(x, str) else json.dumps(x)
    if isinstance(v, list):
        return ",".join(one(x) for x in v)
    return one(v)


def same_values(report_value, header_text, ty):
    """A report's range (a number or an array) against the raw route's header text: the same
    values of the compute type, bit for bit (NaN equal to NaN)."""
    vals = report_value if isinstance(report_value, list) else [report_value]
    a = np.array([float(x) for x in vals], ty)
    b = np.array([float(x) for x in header_text.split(",")], ty)
    return a.tobytes() == b.tobytes()


def stats_reference(dt, inp, out):
    x, y = widen(dt, inp), widen(dt, out)
    fin = np.isfinite(x)
    d = y[fin] - x[fin]
    n = int(fin.sum())
    if n == 0:
        return 0.0, 0.0, None, int((~fin).sum())
    mx = float(np.max(np.abs(d))) if not np.isnan(d).any() else float("nan")
    se, si = float(np.sum(d * d)), float(np.sum(x[fin] * x[fin]))
    rmse = math.sqrt(se / n) if not math.isnan(se) else float("nan")
    sq = None if se == 0 or si == 0 else 10 * math.log10(si / se) if not math.isnan(se) else float("nan")
    return mx, rmse, sq, int((~fin).sum())


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * abs(b)


def check_answer(srv, label, body, params, headers, tensors, expect):
    """Posts the checkpoint, for the checkpoint and for the report; checks both. expect:
    name -> attrs dict (quantized) or "skipped"/"passthrough"."""
    r = post(srv, body, params, headers)
    if not check(r.status_code == 200, "%s: checkpoint answer %d %s" % (label, r.status_code,
                                                                        r.text[:300])):
        return None, None
    out = r.content
    rj = post(srv, body, params, dict(headers or {}, Accept="application/json"))
    if not check(rj.status_code == 200 and rj.headers.get("Content-Type") == "application/json",
                 "%s: report %d %s" % (label, rj.status_code, rj.text[:300])):
        return out, None
    report = json.loads(rj.text)
    hin, din, _ = read_st(body)
    hout, dout, nout = read_st(out)
    check((8 + nout) % 8 == 0 and out[8 + nout - 1:8 + nout] in (b"}", b" "),
          "%s: the header is padded to 8 bytes" % label)
    # Tensors in the input's order, with the same names, dtypes, shapes and offsets.
    tin = [(k, v) for k, v in hin if k != "__metadata__"]
    tout = [(k, v) for k, v in hout if k != "__metadata__"]
    nin = len(tin)
    same = [a[0] for a in tin] == [b[0] for b in tout[:nin]] and \
        all(dict(a[1]) == dict(b[1]) for a, b in zip(tin, tout))
    check(same, "%s: every input tensor in the input's order, same dtype, shape, offsets" % label)
    ranges_t = params.get("ranges") == "tensors"
    nq = sum(1 for v in expect.values() if isinstance(v, dict))
    check(len(tout) == nin + (6 * nq if ranges_t else 0),
          "%s: %d tensors in the answer (%d in, %d range tensors)" % (label, len(tout), nin,
                                                                     6 * nq if ranges_t else 0))
    meta_in = dict(dict(hin).get("__metadata__", []) or [])
    meta_out = dict(dict(hout).get("__metadata__", []))
    check(all(meta_out.get(k) == v for k, v in meta_in.items()) and
          "quantize_and_dequantize_v2" in meta_out,
          "%s: metadata keeps every input key and adds the policy" % label)
    policy = json.loads(meta_out.get("quantize_and_dequantize_v2", "{}"))
    check(sorted(policy.get("tensors", {})) == sorted(k for k, v in expect.items()
                                                        if isinstance(v, dict)),
          "%s: the policy names every quantized tensor" % label)
    by_name = {e["name"]: e for e in report["tensors"]}
    offs = {name: dict(v)["data_offsets"] for name, v in tout}
    order = [e["name"] for e in report["tensors"]]
    check(order == [t[0] for t in tensors],
          "%s: the report's tensors in data order" % label)
    sqnr_min, worst = None, None
    for name, dt, shape, raw in tensors:
        b, e = offs[name]
        got = dout[b:e]
        ent = by_name.get(name, {})
        want = expect[name]
        if not isinstance(want, dict):
            check(got == raw and ent.get("action") == want and ent.get("reason"),
                  "%s: %s %s byte-identical" % (label, name, want))
            continue
        check(ent.get("action") == "quantized", "%s: %s reported quantized" % (label, name))
        status, ref, rng = raw_reference(srv, dt, shape, raw, want)
        check(status == 200 and got == ref,
              "%s: %s (%s %s %s) equals the core's answer bit for bit" % (label, name, dt, shape,
                                                                          want))
        ty = np.float64 if dt == "F64" else np.float32
        check(all(rng[k] is not None and same_values(ent.get(k), rng[k], ty) for k in rng),
              "%s: %s's reported ranges are the core's: %s vs %s" % (
                  label, name, {k: jtext(ent.get(k)) for k in rng}, rng))
        a = ent.get("attrs", {})
        check(all(a.get(k) == v for k, v in want.items() if k not in ("input_min", "input_max")),
              "%s: %s's attrs %s" % (label, name, a))
        mx, rmse, sq, nf = stats_reference(dt, raw, got)
        st = ent.get("stats", {})
        check(close(st.get("max_abs_error"), mx) and close(st.get("rmse"), rmse) and
              close(st.get("sqnr_db"), sq) and st.get("nonfinite") == nf,
              "%s: %s's statistics %s, reference %s" % (label, name, st, (mx, rmse, sq, nf)))
        if sq is not None and not math.isnan(sq) and (sqnr_min is None or sq < sqnr_min):
            sqnr_min, worst = sq, name
        if ranges_t:
            for k, suf in (("input_min", "qdq_input_min"), ("scale", "qdq_scale")):
                rb, re_ = offs[name + "." + suf]
                ty = np.float64 if dt == "F64" else np.float32
                v = np.frombuffer(dout[rb:re_], ty)
                want_v = np.array([float(x) for x in rng[k].split(",")], ty)
                check(v.tobytes() == want_v.tobytes(),
                      "%s: %s.%s holds the ranges: %s, want %s" % (label, name, suf, v, want_v))
    s = report["summary"]
    check(s["tensors"] == len(tensors) and s["quantized"] == nq and
          s["skipped"] == sum(1 for v in expect.values() if v == "skipped") and
          s["passthrough"] == sum(1 for v in expect.values() if v == "passthrough") and
          s["bytes"] == len(din) and
          s["elements_quantized"] == sum(int(np.prod(t[2])) for t in tensors
                                         if isinstance(expect[t[0]], dict)),
          "%s: summary %s" % (label, s))
    check(close(s["sqnr_db_min"], sqnr_min) and s["worst_tensor"] == worst,
          "%s: sqnr_db_min %s %s, want %s %s" % (label, s["sqnr_db_min"], s["worst_tensor"],
                                                  sqnr_min, worst))
    return out, rj.text


def expectations(tensors, default, rules=None, exclude=()):
    """What the policy does to each tensor, decided here independently of the server."""
    import fnmatch
    exp = {}
    for name, dt, shape, raw in tensors:
        if dt not in QDQ_DTYPE:
            exp[name] = "passthrough"
            continue
        if any(fnmatch.fnmatchcase(name, g) for g in exclude):
            exp[name] = "skipped"
            continue
        attrs = dict(default)
        for rule in rules or []:
            m = rule["match"]
            if any(fnmatch.fnmatchcase(name, g) for g in (m if isinstance(m, list) else [m])):
                if rule.get("skip"):
                    attrs = "skipped"
                else:
                    attrs.update({k: v for k, v in rule.items() if k != "match"})
                break
        exp[name] = attrs
    return exp


def test_models(srv):
    tensors = decoder_model()
    body = make_st(tensors, metadata={"format": "pt", "model": "tiny-decoder"})
    d8 = {"num_bits": 8, "axis": -1}
    exp = expectations(tensors, d8)
    check_answer(srv, "defaults", body, {}, None, tensors, exp)
    rules = [{"match": ["*norm*", "*.bias"], "skip": True},
             {"match": "*_proj.weight", "num_bits": 4, "axis": 0},
             {"match": "lm_head.weight", "range_given": True, "input_min": -0.125,
              "input_max": 0.125, "num_bits": 6, "round_mode": "HALF_UP"}]
    exp = expectations(tensors, d8, rules)
    out, rep = check_answer(srv, "rules", body, {"num_bits": "8"}, {"X-QDQ-Rules": json.dumps(rules)},
                            tensors, exp)
    exp = expectations(tensors, {"num_bits": 3, "narrow_range": True, "axis": -1},
                       exclude=("*embed*", "model.special*"))
    check_answer(srv, "exclude, ranges", body, {"num_bits": "3", "narrow_range": "true",
                                                "exclude": "*embed*,model.special*",
                                                "ranges": "tensors"}, None, tensors, exp)
    return body, rules


# ---- the format's rules, each broken once ----

def bad_bodies():
    good = [("a", "F32", (2,), struct.pack("<2f", 1, 2)), ("b", "F32", (1,), struct.pack("<f", 3))]
    ok = make_st(good)

    def hdr(obj, data=b"", n=None, raw=None):
        h = raw if raw is not None else json.dumps(obj).encode()
        return struct.pack("<Q", len(h) if n is None else n) + h + data

    t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    d8 = b"\0" * 8
    return [
        ("shorter than 8 bytes", ok[:5], "8-byte"),
        ("N over 100000000", struct.pack("<Q", 100000001) + b"{}", "100000000"),
        ("N past the end", hdr({}, n=4096), "4096"),
        ("header not UTF-8", hdr(None, raw=b'{"\xff\xfe": 1}'), "UTF-8"),
        ("header not an object", hdr([1, 2]), "object"),
        ("header not JSON", hdr(None, raw=b'{"a": '), "safetensors header"),
        ("metadata value not a string", hdr({"__metadata__": {"k": 1}}), "metadata"),
        ("unknown dtype", hdr({"a": dict(t, dtype="F128")}, d8), "F128"),
        ("a gap", hdr({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, d8), "a"),
        ("an overlap", hdr({"a": t, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                           d8), "b"),
        ("size not shape x dtype", hdr({"a": {"dtype": "F32", "shape": [3],
                                              "data_offsets": [0, 8]}}, d8), "12"),
        ("shape overflows", hdr({"a": {"dtype": "F32", "shape": [2 ** 62, 2 ** 62],
                                       "data_offsets": [0, 8]}}, d8), "a"),
        ("trailing bytes", hdr({"a": t}, d8 + b"xx"), "10"),
        ("data shorter than the header says", hdr({"a": t}, b"\0" * 4), "8"),
        ("a name given twice", hdr(None, raw=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":'
                                   b'[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
                                   data=d8), "a"),
        ("begin after end", hdr({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, d8),
         "a"),
    ]


def test_bad(srv):
    stop = threading.Event()
    others = {"ok": 0, "bad": 0}

    def meanwhile():
        body = struct.pack("<4f", -1, -0.5, 0, 0.3)
        while not stop.is_set():
            r = requests.post(srv.url, params={"shape": "4"}, data=body, timeout=30,
                              headers={"Content-Type": "application/octet-stream"})
            others["ok" if r.status_code == 200 else "bad"] += 1

    th = threading.Thread(target=meanwhile)
    th.start()
    try:
        for label, body, word in bad_bodies():
            r = post(srv, body)
            try:
                j = r.json()
            except ValueError:
                j = {}
            check(r.status_code == 400 and j.get("code") == "INVALID_SAFETENSORS" and
                  word in j.get("error", ""),
                  "bad checkpoint (%s): %d %s (want 400 INVALID_SAFETENSORS naming '%s')" % (
                      label, r.status_code, r.text[:200], word))
        # A policy wrong for the checkpoint: 400 naming the tensor and the rule, nothing done.
        body = make_st(decoder_model())
        rules = [{"match": "*_proj.weight", "axis": 2}]
        r = post(srv, body, headers={"X-QDQ-Rules": json.dumps(rules)})
        check(r.status_code == 400 and "proj.weight" in r.text and "rules[0]" in r.text,
              "a rule wrong for the checkpoint: %d %s" % (r.status_code, r.text[:200]))
        r = post(srv, body, params={"rules": '[{"match": "x", "colour": 1}]'})
        check(r.status_code == 400 and "colour" in r.text, "an unknown rule key: %d %s" % (
            r.status_code, r.text[:200]))
        r = post(srv, body, params={"num_bits": "4", "bogus": "1"})
        check(r.status_code == 400 and "bogus" in r.text, "an unknown query parameter: %d %s" % (
            r.status_code, r.text[:200]))
    finally:
        stop.set()
        th.join()
    check(others["ok"] > 0 and others["bad"] == 0,
          "tensor requests served meanwhile: %d answered 200, %d not" % (others["ok"],
                                                                          others["bad"]))


# ---- uploads ----

def test_uploads(srv, spool):
    tensors = decoder_model(seed=3)
    body = make_st(tensors)
    ref = post(srv, body).content

    def chunks():
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    r = requests.post(srv.url, data=chunks(), headers=CT, timeout=60)
    check(r.status_code == 200 and r.content == ref and
          "chunked" in r.request.headers.get("Transfer-Encoding", ""),
          "a chunked upload: %d, the same answer" % r.status_code)
    r = post(srv, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    check(r.status_code == 200 and r.content == ref, "a gzip upload: %d, the same answer" %
          r.status_code)
    # A client gone halfway: no spool file, no spool bytes, no memory left behind (the files
    # kept warm for the next checkpoint, from the answers before, aside).
    rss0 = rss(srv.p.pid)
    warm, warm_bytes = set(spool_fds(srv.p.pid, spool)), srv.metric("qdq_spool_bytes")
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /quantize-dequantize HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/x-safetensors\r\nContent-Length: %d\r\n\r\n" % len(body))
    s.sendall(body[:len(body) // 2])
    time.sleep(0.3)
    s.close()
    left = lambda: set(spool_fds(srv.p.pid, spool)) - warm
    for _ in range(100):
        if srv.metric("qdq_checkpoints_inflight") == 0 and not left():
            break
        time.sleep(0.1)
    check(srv.metric("qdq_checkpoints_inflight") == 0 and
          srv.metric("qdq_spool_bytes") <= warm_bytes and not left() and not os.listdir(spool),
          "a client gone halfway leaves no spool file (fds %s besides the %d warm ones, "
          "spool bytes %s then %s, dir %s)" % (left(), len(warm), warm_bytes,
                                               srv.metric("qdq_spool_bytes"), os.listdir(spool)))
    check(rss(srv.p.pid) < rss0 + 16 * 1024, "and no memory: RSS %d -> %d KiB" % (
        rss0, rss(srv.p.pid)))


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def spool_fds(pid, spool):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith(spool + "/"):
            out.append(t)
    return out


def test_full_spool(tmp):
    """A spool on a 2 MiB tmpfs: a declared length over its room is 507 before the body; a
    chunked body that outgrows it is 507 midway; nothing is left behind."""
    if os.geteuid() != 0:
        skip("a full spool: mounting a small tmpfs needs root")
        return
    mnt = os.path.join(tmp, "small-spool")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]).returncode != 0:
        skip("a full spool: cannot mount a tmpfs here")
        return
    try:
        srv = Server(spool=mnt)
        try:
            big = make_st([("w", "F32", (1024, 1024), np.ones((1024, 1024), np.float32).tobytes())])
            r = post(srv, big)
            check(r.status_code == 507 and "spool" in r.text,
                  "a 4 MiB checkpoint, 2 MiB of spool: %d %s" % (r.status_code, r.text[:200]))
            r = requests.post(srv.url, data=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                              headers=CT, timeout=60)
            check(r.status_code == 507 and "spool" in r.text,
                  "the same, chunked: 507 midway: %d %s" % (r.status_code, r.text[:200]))
            used = shutil.disk_usage(mnt).used
            check(not os.listdir(mnt) and used == 0 and not spool_fds(srv.p.pid, mnt),
                  "nothing left behind in the spool (%d bytes used)" % used)
            small = make_st([("w", "F32", (64, 64), np.ones((64, 64), np.float32).tobytes())])
            check(post(srv, small).status_code == 200, "a checkpoint that fits still goes through")
        finally:
            check(srv.stop() == 0, "the small-spool server exits 0")
    finally:
        subprocess.run(["umount", mnt])


# ---- limits ----

def test_limits(tmp):
    tensors = [("w", "F32", (512, 1024), np.random.default_rng(5).standard_normal(
        (512, 1024)).astype(np.float32).tobytes())]
    body = make_st(tensors)  # 2 MiB
    srv = Server("--max-body-bytes", "1M", "--max-checkpoint-bytes", "3M",
                 "--max-checkpoint-inflight", "1", "--spool-keep-ms", "1000")
    try:
        r = post(srv, body)
        check(r.status_code == 200, "a 2 MiB checkpoint, --max-body-bytes 1M: %d" % r.status_code)
        # The answer's spool file is kept for the next checkpoint, then given up.
        kept = 0
        for _ in range(100): # the request ends (and its file is kept) just after the answer
            kept = srv.metric("qdq_spool_bytes")
            if kept:
                break
            time.sleep(0.01)
        for _ in range(100):
            if srv.metric("qdq_spool_bytes") == 0:
                break
            time.sleep(0.1)
        check(kept and kept >= len(body) and srv.metric("qdq_spool_bytes") == 0,
              "--spool-keep-ms 1000: the answer's file kept (%s bytes), then given up (%s)" % (
                  kept, srv.metric("qdq_spool_bytes")))
        big = make_st([("w", "F32", (1024, 1024), np.zeros((1024, 1024), np.float32).tobytes())])
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /quantize-dequantize HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/x-safetensors\r\nContent-Length: %d\r\n\r\n" % len(big))
        s.settimeout(10)
        head = s.recv(4096)
        s.close()
        check(head.startswith(b"HTTP/1.1 413") and b"--max-checkpoint-bytes" in head,
              "a 4 MiB checkpoint, --max-checkpoint-bytes 3M: refused before its body: %r" %
              head[:200])
        r = requests.post(srv.url, data=(big[i:i + 65536] for i in range(0, len(big), 65536)),
                          headers=CT, timeout=60)
        check(r.status_code == 413 and "--max-checkpoint-bytes" in r.text,
              "the same, chunked: 413 naming --max-checkpoint-bytes: %d %s" % (r.status_code,
                                                                              r.text[:200]))
        # One checkpoint at a time: a second while the first is held open gets 503 (once the
        # refused one above is over: it counts until its connection's request ends).
        for _ in range(100):
            if srv.metric("qdq_checkpoints_inflight") == 0:
                break
            time.sleep(0.1)
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /quantize-dequantize HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/x-safetensors\r\nContent-Length: %d\r\n\r\n" % len(body))
        s.sendall(body[:100])
        for _ in range(50):
            if srv.metric("qdq_checkpoints_inflight") == 1:
                break
            time.sleep(0.1)
        r = post(srv, body)
        check(r.status_code == 503 and r.headers.get("Retry-After") and
              "max-checkpoint-inflight" in r.text,
              "a second checkpoint over --max-checkpoint-inflight 1: %d %s" % (r.status_code,
                                                                               r.text[:200]))
        s.close()
        m = srv.metric("qdq_checkpoints_total{outcome=\"answered\"}")
        check(m is not None and m >= 1, "qdq_checkpoints_total counts answered checkpoints: %s" % m)
    finally:
        check(srv.stop() == 0, "the limits server exits 0")


# ---- qdq ----

def run_qdq(*args):
    p = subprocess.run([QDQ] + list(args), capture_output=True, timeout=300)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_qdq(srv, tmp, rules):
    tensors = decoder_model(seed=7)
    body = make_st(tensors, metadata={"format": "pt"})
    src = os.path.join(tmp, "model.safetensors")
    with open(src, "wb") as f:
        f.write(body)
    rfile = os.path.join(tmp, "rules.json")
    with open(rfile, "w") as f:
        json.dump(rules, f)
    out = os.path.join(tmp, "out.safetensors")
    rep = os.path.join(tmp, "report.json")
    rc, _, err = run_qdq("--num-bits", "6", "--rules", rfile, "--report", rep, src, out)
    check(rc == 0, "qdq on a file: exit %d %s" % (rc, err))
    srv_out = post(srv, body, {"num_bits": "6"}, {"X-QDQ-Rules": json.dumps(rules)}).content
    srv_rep = post(srv, body, {"num_bits": "6"}, {"X-QDQ-Rules": json.dumps(rules),
                                                   "Accept": "application/json"}).content
    check(rc == 0 and open(out, "rb").read() == srv_out,
          "qdq's output is byte-identical to the server's")
    check(rc == 0 and open(rep, "rb").read() == srv_rep,
          "qdq's report is byte-identical to the server's")
    # A sharded directory: each shard done, the index and the config copied.
    d = os.path.join(tmp, "model-dir")
    os.mkdir(d)
    half = len(tensors) // 2
    shards = [make_st(tensors[:half]), make_st(tensors[half:])]
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = {"metadata": {"total_size": sum(len(s) for s in shards)},
             "weight_map": {t[0]: names[0 if i < half else 1] for i, t in enumerate(tensors)}}
    for n, b in zip(names, shards):
        with open(os.path.join(d, n), "wb") as f:
            f.write(b)
    extra = {"model.safetensors.index.json": json.dumps(index).encode(),
             "config.json": b'{"model_type": "llama"}', "tokenizer.json": b'{"v": 1}'}
    for n, b in extra.items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(b)
    od = os.path.join(tmp, "out-dir")
    rc, _, err = run_qdq("--num-bits", "4", "--exclude", "*norm*", "--quiet", d, od)
    check(rc == 0, "qdq on a sharded directory: exit %d %s" % (rc, err))
    for n, b in zip(names, shards):
        want = post(srv, b, {"num_bits": "4", "exclude": "*norm*"}).content
        got = open(os.path.join(od, n), "rb").read() if os.path.exists(os.path.join(od, n)) else b""
        check(got == want, "shard %s equals the server's answer" % n)
    for n, b in extra.items():
        p = os.path.join(od, n)
        check(os.path.exists(p) and open(p, "rb").read() == b, "%s copied" % n)
    # .npy
    a = np.random.default_rng(9).standard_normal((16, 24)).astype(np.float32)
    npy = os.path.join(tmp, "w.npy")
    np.save(npy, a)
    onpy = os.path.join(tmp, "o.npy")
    rc, _, err = run_qdq("--num-bits", "5", "--axis", "0", npy, onpy)
    want = requests.post(srv.url, params={"num_bits": "5", "axis": "0"},
                         data=open(npy, "rb").read(),
                         headers={"Content-Type": "application/x-npy"}, timeout=30).content
    check(rc == 0 and open(onpy, "rb").read() == want,
          "qdq on a .npy equals the server's answer: exit %d %s" % (rc, err))
    # Refusals and exit codes.
    rc, _, err = run_qdq(src, src)
    check(rc == 2 and "IN" in err, "IN = OUT refused: exit %d %s" % (rc, err))
    rc, _, err = run_qdq("--num-bitz", "4", src, out)
    check(rc == 2 and err.count("\n") == 1, "an unknown flag: exit %d, one line: %s" % (rc, err))
    rc, _, err = run_qdq(src)
    check(rc == 2, "no OUT: exit %d" % rc)
    trunc = os.path.join(tmp, "truncated.safetensors")
    with open(trunc, "wb") as f:
        f.write(body[:len(body) - 100])
    tout = os.path.join(tmp, "t-out.safetensors")
    rc, _, err = run_qdq(trunc, tout)
    check(rc == 1 and not os.path.exists(tout) and err.count("\n") == 1,
          "a truncated input: exit %d, no OUT, one line: %s" % (rc, err))
    leftovers = [n for n in os.listdir(tmp) if ".qdq-" in n]
    check(not leftovers, "no temporary file left: %s" % leftovers)
    rc, _, err = run_qdq("--num-bits", "99", src, out)
    check(rc == 1 and "num_bits" in err, "a policy the op refuses: exit %d %s" % (rc, err))


def test_large(srv, tmp):
    """Tensors of several rounds and statistics blocks: qdq computes each from the mapped file in
    parts on its threads, the server from the pieces the upload came in; the answers and the
    reports are the same bytes, on any thread count."""
    rng = np.random.default_rng(11)

    def normal(shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.05

    tensors = [
        ("model.embed_tokens.weight", "BF16", (2500, 3001), bf16(normal((2500, 3001))).tobytes()),
        ("model.layers.0.mlp.up_proj.weight", "F32", (1100, 2049), normal((1100, 2049)).tobytes()),
        ("model.layers.0.mlp.down_proj.weight", "F16", (2049, 1100),
         np.asarray(normal((2049, 1100)), np.float16).tobytes()),
        ("model.layers.0.self_attn.o_proj.weight", "F64", (700, 1500),
         np.asarray(normal((700, 1500)), np.float64).tobytes()),
        ("model.norm.weight", "F32", (3001,), np.ones(3001, np.float32).tobytes()),
    ]
    body = make_st(tensors)
    src = os.path.join(tmp, "large.safetensors")
    with open(src, "wb") as f:
        f.write(body)
    rules = [{"match": "*norm*", "skip": True},
             {"match": "*up_proj*", "axis": 0, "num_bits": 4},
             {"match": ["*down_proj*", "*o_proj*"], "range_given": True, "input_min": -0.1,
              "input_max": 0.1}]
    rfile = os.path.join(tmp, "large-rules.json")
    with open(rfile, "w") as f:
        json.dump(rules, f)
    hdr = {"X-QDQ-Rules": json.dumps(rules)}
    srv_out = post(srv, body, {"num_bits": "7"}, hdr).content
    srv_rep = post(srv, body, {"num_bits": "7"}, dict(hdr, Accept="application/json")).content
    for threads in ("1", "2", "3"):
        out = os.path.join(tmp, "large-out-%s.safetensors" % threads)
        rep = os.path.join(tmp, "large-report-%s.json" % threads)
        rc, _, err = run_qdq("--num-bits", "7", "--rules", rfile, "--report", rep, "--threads",
                             threads, src, out)
        check(rc == 0 and open(out, "rb").read() == srv_out,
              "large tensors, %s thread(s): qdq's output is the server's: exit %d %s" % (
                  threads, rc, err))
        check(rc == 0 and open(rep, "rb").read() == srv_rep,
              "large tensors, %s thread(s): qdq's report is the server's" % threads)
    # The statistics against the float64 reference, and each tensor against the core.
    rep = json.loads(srv_rep)
    hdr, data, _ = read_st(srv_out)
    got = {k: data[dict(v)["data_offsets"][0]:dict(v)["data_offsets"][1]] for k, v in hdr
           if k != "__metadata__"}
    for name, dt, shape, raw in tensors[:4]:
        entry = [e for e in rep["tensors"] if e["name"] == name][0]
        mx, rmse, sq, nf = stats_reference(dt, raw, got[name])
        st = entry["stats"]
        check(close(st["max_abs_error"], mx) and close(st["rmse"], rmse) and
              close(st["sqnr_db"], sq), "large tensors: %s's statistics within 1e-9 of float64 "
              "(%s %s %s vs %s %s %s)" % (name, st["max_abs_error"], st["rmse"], st["sqnr_db"],
                                          mx, rmse, sq))
        want = {"num_bits": 7, "axis": -1}
        for r in rules[1:]:
            if any(fnmatch.fnmatchcase(name, m) for m in
                   (r["match"] if isinstance(r["match"], list) else [r["match"]])):
                want.update({k: v for k, v in r.items() if k != "match"})
        status, ref, _ = raw_reference(srv, dt, shape, raw, want)
        check(status == 200 and ref == got[name],
              "large tensors: %s equals the core's answer bit for bit" % name)


def test_load_script(srv):
    """tests/load/load_checkpoint.sh: parallel uploads, every answer equal to the first; a
    policy the server refuses makes it fail."""
    env = dict(os.environ, QDQ_URL=srv.base, QDQ_LOAD_CHECKPOINT_MIB="4",
               QDQ_LOAD_REQUESTS="6", QDQ_LOAD_PARALLEL="2")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load",
                          "load_checkpoint.sh")
    p = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and "6 uploads" in p.stdout and
          "0 failed, 0 answers differ" in p.stdout,
          "load_checkpoint.sh: exit %d: %s" % (p.returncode, p.stdout.strip()))
    env["QDQ_LOAD_QUERY"] = "num_bits=99"
    p = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=300)
    check(p.returncode == 1 and "6 failed" in p.stdout,
          "load_checkpoint.sh with a refused policy: exit %d: %s" % (
              p.returncode, p.stdout.strip().splitlines()[0] if p.stdout.strip() else ""))


def main():
    tmp = tempfile.mkdtemp(prefix="qdq-ckpt-test-")
    spool = os.path.join(tmp, "spool")
    os.mkdir(spool)
    try:
        srv = Server(spool=spool)
        try:
            body, rules = test_models(srv)
            test_bad(srv)
            test_uploads(srv, spool)
            test_qdq(srv, tmp, rules)
            test_large(srv, tmp)
            test_load_script(srv)
        finally:
            check(srv.stop() == 0, "the server exits 0 on SIGTERM")
        test_full_spool(tmp)
        test_limits(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed%s" % (passed, failed,
                                       ", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
