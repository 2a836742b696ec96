#!/bin/sh
# docs/openapi.yaml, the HTTP API's description:
#  - Redocly's linter (@redocly/cli, pinned in package.json and package-lock.json, installed in
#    node_modules/ by scripts/install-deps.sh --dev) with the recommended rules
#    (tests/contract/redocly.yaml): no error and no warning; and it fails on a copy with a
#    dangling $ref and a repeated operationId, so the lint is known to bite. Its telemetry and
#    update check are off (REDOCLY_TELEMETRY, REDOCLY_SUPPRESS_UPDATE_NOTICE): no network;
#  - the description and the route table agree: every path and method of server/routes.c is
#    described, and nothing else is;
#  - the contract test bites: a few real exchanges with a server started here (Python's
#    requests, logged by tests/contract/py/sitecustomize.py) meet the description, and fail
#    tests/contract/validate.py against copies of it with a required field renamed, a header
#    left out and a status left out, each failure naming the exchange.
# (Every exchange of the black-box tests is validated by tests/run.sh through
# tests/contract/run.sh.) Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$ROOT/$SERVER ;; esac
SPEC=${QDQ_OPENAPI:-docs/openapi.yaml}  # another file, to try a draft
. tests/lib/checks.sh
T=$(mktemp -d)
SPID=
trap '[ -n "$SPID" ] && kill -9 $SPID 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

PY=$(python_with yaml jsonschema requests)

# ---- the linter ----
REDOCLY=node_modules/.bin/redocly
REDOCLY_TELEMETRY=off
REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_TELEMETRY REDOCLY_SUPPRESS_UPDATE_NOTICE
if need '[ -x "$REDOCLY" ] && command -v node >/dev/null' \
    "Redocly's CLI in node_modules/ (npm ci: scripts/install-deps.sh --dev)"; then
    lint() { "$REDOCLY" lint --config tests/contract/redocly.yaml "$@" >"$T/lint.out" 2>&1; }
    lint "$SPEC"
    rc=$?
    check '[ $rc -eq 0 ] && grep -q "Your API description is valid" "$T/lint.out" &&
           ! grep -qi "warning" "$T/lint.out"' \
        "redocly lint $SPEC ($("$REDOCLY" --version 2>/dev/null)): valid, no warnings (exit $rc)$(
            [ $rc -eq 0 ] || { echo; tail -n 30 "$T/lint.out"; })"
    # A deliberately wrong copy: a response schema that points nowhere, two operations with one
    # operationId.
    sed -e "s|\$ref: '#/components/schemas/Healthz'|\$ref: '#/components/schemas/Healthy'|" \
        "$SPEC" >"$T/wrong.yaml"
    "$PY" - "$T/wrong.yaml" <<'PYEOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
d["paths"]["/readyz"]["get"]["operationId"] = "healthz"
yaml.safe_dump(d, open(sys.argv[1], "w"), sort_keys=False)
PYEOF
    lint "$T/wrong.yaml"
    rc=$?
    check '[ $rc -ne 0 ] && grep -q "Healthy" "$T/lint.out" && grep -q "operationId-unique" "$T/lint.out"' \
        "redocly lint fails on a wrong copy (a dangling \$ref, a repeated operationId): exit $rc, $(grep -cE '^\[[0-9]+\]' "$T/lint.out") problems"
fi

if [ -z "$PY" ]; then
    need false "python3 with yaml, jsonschema and requests (python3-yaml, python3-jsonschema, python3-requests)"
    finish
fi

# ---- the route table ----
"$PY" - "$SPEC" >"$T/routes.out" 2>&1 <<'PYEOF'
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
defs = dict(re.findall(r'#define (PROTO_V2_MODEL_\w+) "([^"]*)"', open("proto/kserve.h").read()))
src = open("server/routes.c").read()
macros = {"GET": "GET, HEAD", "V2M": "/v2/models/" + defs["PROTO_V2_MODEL_NAME"]}
macros["V2MV"] = macros["V2M"] + "/versions/" + defs["PROTO_V2_MODEL_VERSION"]
table = src[src.index("static const srv_route routes[]"):]
table = table[:table.index("};")]
routes = {}
for path_expr, allow in re.findall(r'\{\s*((?:V2MV?|"[^"]*")(?:\s*"[^"]*")*)\s*,\s*\w+\s*,\s*(GET|"[^"]*")', table):
    path = "".join(macros.get(t, t.strip('"')) for t in re.findall(r'V2MV?|"[^"]*"', path_expr))
    routes[path] = set(m.strip().lower() for m in macros.get(allow, allow.strip('"')).split(","))
described = {p: set(k for k in item if k in ("get", "head", "post", "put", "delete", "patch", "options"))
             for p, item in doc["paths"].items()}
bad = 0
for p in sorted(set(routes) | set(described)):
    if routes.get(p) != described.get(p):
        bad += 1
        print("mismatch: %s: server/routes.c %s, %s %s" % (p, sorted(routes.get(p, [])),
              sys.argv[1], sorted(described.get(p, []))))
print("%d routes in server/routes.c, %d paths described" % (len(routes), len(described)))
sys.exit(1 if bad or len(routes) < 10 else 0)
PYEOF
rc=$?
check '[ $rc -eq 0 ]' "every route and method of server/routes.c is described, nothing else: $(tail -n 5 "$T/routes.out")"

# ---- the contract test bites ----
: >"$T/server.err"
"$SERVER" --listen 127.0.0.1:0 --grpc-listen none --access-log off --shutdown-grace 0 \
    2>"$T/server.err" >/dev/null &
SPID=$!
server_ports "$T/server.err" $SPID
PORT=$HPORT
if [ -z "$PORT" ]; then
    bad "the server did not start: $(cat "$T/server.err")"
    finish
fi
QDQ_CONTRACT_LOG=$T/contract.log PYTHONPATH=$ROOT/tests/contract/py "$PY" - "http://127.0.0.1:$PORT" \
    >"$T/req.out" 2>&1 <<'PYEOF'
import struct, sys, requests
u = sys.argv[1]
requests.post(u + "/quantize-dequantize", json={"input": [[-1.0, -0.5], [0.0, 0.3]], "num_bits": 8})
requests.post(u + "/quantize-dequantize?shape=2,2&axis=0", data=struct.pack("<4f", -1, -0.5, 0, 0.3),
              headers={"Content-Type": "application/octet-stream"})
requests.post(u + "/quantize-dequantize", data=b"x", headers={"Content-Type": "text/plain"})
requests.post(u + "/v2/models/quantize_and_dequantize_v2/infer",
              json={"inputs": [{"name": "input", "shape": [2], "datatype": "FP32", "data": [1, 2]}]})
requests.get(u + "/healthz")
requests.get(u + "/nope")
requests.delete(u + "/metrics")
PYEOF
kill -TERM $SPID
wait $SPID
SPID=
N=$(wc -l <"$T/contract.log" 2>/dev/null || echo 0)
check '[ "$N" -eq 7 ]' "7 exchanges logged by the Python hook (QDQ_CONTRACT_LOG): $N $(cat "$T/req.out")"
"$PY" tests/contract/validate.py --spec "$SPEC" "$T/contract.log" >"$T/v.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && tail -n 1 "$T/v.out" | grep -q "^7 passed, 0 failed"' \
    "they meet $SPEC: $(tail -n 1 "$T/v.out")$([ $rc -eq 0 ] || { echo; cat "$T/v.out"; })"

# mutate NAME EXPECTED PYTHON: the validator must fail on a copy of the description changed by
# PYTHON (on the dict d), with EXPECTED in its output.
mutate() {
    "$PY" - "$SPEC" "$T/m.yaml" "$3" <<'PYEOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
exec(sys.argv[3])
yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
PYEOF
    "$PY" tests/contract/validate.py --spec "$T/m.yaml" "$T/contract.log" >"$T/m.out" 2>&1
    rc=$?
    want=$2
    check '[ $rc -ne 0 ] && grep -qF -- "$want" "$T/m.out"' \
        "the contract test fails on a description with $1: $(grep '^FAIL' "$T/m.out" | head -n 1 | cut -c1-300); $(tail -n 1 "$T/m.out")"
}
mutate "QdqResponse's required 'output' renamed 'outputs'" "'outputs' is a required property" \
    's = d["components"]["schemas"]["QdqResponse"]; s["required"][0] = "outputs"; s["properties"]["outputs"] = s["properties"].pop("output")'
mutate "X-QDQ-Scale left out of the 200 answer" "header x-qdq-scale is not described" \
    'del d["paths"]["/quantize-dequantize"]["post"]["responses"]["200"]["headers"]["X-QDQ-Scale"]'
mutate "415 left out of POST /quantize-dequantize" "status 415 is not described" \
    'del d["paths"]["/quantize-dequantize"]["post"]["responses"]["415"]'
mutate "the error code's word of 404 changed" "at /code: 'MISSING' was expected" \
    'd["components"]["responses"]["NotFound"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]["const"] = "MISSING"'
mutate "Allow required on 405 answers renamed" "header allowed is required but missing" \
    'd["components"]["responses"]["MethodNotAllowed"]["headers"]["Allowed"] = d["components"]["responses"]["MethodNotAllowed"]["headers"].pop("Allow")'
finish
