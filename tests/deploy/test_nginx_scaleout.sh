#!/bin/sh
# The scale-out topology of deploy/ without Docker, on 127.0.0.1: three server processes and
# Debian's nginx running deploy/nginx.conf, with only the addresses substituted (the replicas'
# ports for `server qdq:8080`, a free port for `listen 8080`) and pid, logs and temp files in a
# temporary directory (the system's nginx, its config and port 80 are never touched). Bounded
# load through nginx with tests/load/load_curl.sh: one replica is killed (-9) mid-run, then
# another stopped (SIGTERM, draining) mid-run; every request must succeed, retried by nginx on
# a live replica. Also: answers, request ids and large per-channel headers pass through; nginx's
# own errors are JSON; deploy/docker-compose.yml describes this same topology (and its
# variables configure the replicas here). gRPC through nginx's grpc_pass (port 8081 of the
# config) with Debian's python3-grpcio: answers equal to a replica's own, calls spread over the
# replicas, health SERVING, every call succeeding after a replica is killed and after one is
# stopped, UNAVAILABLE once none is left. Prints counts, and "N passed, N failed, N skipped" last.
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$PWD/$SERVER ;; esac
REQUESTS=${QDQ_SCALEOUT_REQUESTS:-2000}
. tests/lib/checks.sh

T=$(mktemp -d)
chmod 755 "$T"
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null)
if [ -z "$NGINX" ]; then
    bad "nginx is not installed (Debian package nginx, in scripts/install-deps.sh --dev)"
    finish
fi
[ -x "$SERVER" ] || { bad "no server binary at $SERVER"; finish; }

# deploy/docker-compose.yml, the topology this test mirrors: the service nginx.conf names
# (qdq), three replicas, nginx with deploy/nginx.conf on 8080 after the replicas are healthy,
# the replicas' QDQ_* variables (known to the server; used for the replicas here too), a stop
# grace period above the drain timeout.
PY=$(python_with yaml)
"$SERVER" --help 2>/dev/null | grep -o 'QDQ_[A-Z_]*' | sort -u >"$T/vars"
if [ -n "$PY" ]; then
    "$PY" - "$T/vars" "$T/env" >"$T/compose.out" 2>&1 <<'PYEOF'
import re, sys, yaml
known = set(open(sys.argv[1]).read().split())
c = yaml.safe_load(open("deploy/docker-compose.yml"))
res = []
def check(cond, what):
    res.append((bool(cond), what))
s = c.get("services", {})
q, n = s.get("qdq", {}), s.get("nginx", {})
check(q and n, "compose: services qdq (the name in nginx.conf) and nginx")
b = q.get("build", {})
check(b.get("context") == ".." and b.get("dockerfile", "Dockerfile") == "Dockerfile",
      "compose: qdq is built from the repository's Dockerfile")
check((q.get("deploy") or {}).get("replicas") == 3, "compose: 3 replicas, as here")
env = q.get("environment", {})
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
check(all(k in known for k in env), f"compose: QDQ_* variables the server knows: {sorted(env)}")
check("QDQ_LISTEN" not in env, "compose: QDQ_LISTEN left to the image (0.0.0.0:8080)")
g = re.fullmatch(r"(\d+)s", str(q.get("stop_grace_period", "10s")))
check(g and int(g.group(1)) > int(env.get("QDQ_DRAIN_TIMEOUT", 30)),
      f"compose: stop_grace_period {q.get('stop_grace_period')} > QDQ_DRAIN_TIMEOUT")
check("./nginx.conf:/etc/nginx/nginx.conf:ro" in n.get("volumes", []),
      "compose: nginx runs deploy/nginx.conf")
check(any(str(p).endswith(":8080") for p in n.get("ports", [])), "compose: nginx published on 8080")
check(any(str(p).endswith(":8081") for p in n.get("ports", [])), "compose: nginx published on 8081 (gRPC)")
check(((n.get("depends_on") or {}).get("qdq") or {}).get("condition") == "service_healthy",
      "compose: nginx starts once the replicas are healthy (it resolves them at start)")
with open(sys.argv[2], "w") as f:
    f.write(" ".join(f"{k}={v}" for k, v in env.items()))
for good, what in res:
    print(("ok: " if good else "FAIL: ") + what)
PYEOF
    cat "$T/compose.out"
    pass=$((pass + $(grep -c '^ok: ' "$T/compose.out")))
    fail=$((fail + $(grep -c '^FAIL: ' "$T/compose.out")))
    grep -q '^\(ok\|FAIL\): ' "$T/compose.out" || bad "the compose checks did not run"
else
    bad "python3 with yaml is missing (Debian package python3-yaml)"
fi
ENVS=$(cat "$T/env" 2>/dev/null)

# Replica i, with the compose file's variables: port 0 (the kernel picks a free one), read
# back from the start line ("listening on", in its msg with the compose file's JSON logs).
start_replica() {
    : >"$T/r$1.err"
    # shellcheck disable=SC2086
    env $ENVS QDQ_LISTEN=127.0.0.1:0 QDQ_GRPC_LISTEN=127.0.0.1:0 "$SERVER" >"$T/r$1.out" 2>"$T/r$1.err" &
    eval "R$1=$!"
    PIDS="$PIDS $!"
    server_ports "$T/r$1.err" $! grpc
    eval "P$1=$HPORT G$1=$GPORT"
}
start_replica 1
start_replica 2
start_replica 3
check '[ -n "$P1" ] && [ -n "$P2" ] && [ -n "$P3" ] && [ -n "$G1" ] && [ -n "$G2" ] && [ -n "$G3" ]' \
    "three replicas listening on $P1 $P2 $P3 (gRPC $G1 $G2 $G3)"
[ -n "$P1" ] && [ -n "$P2" ] && [ -n "$P3" ] && [ -n "$G1" ] && [ -n "$G2" ] && [ -n "$G3" ] || finish

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
LP=$(free_port)
GLP=$(free_port)

# deploy/nginx.conf with the addresses substituted; every substitution must find its line, so a
# change to the shipped file that this test would miss fails here instead.
awk -v T="$T" -v LP="$LP" -v GLP="$GLP" -v ports="$P1 $P2 $P3" -v gports="$G1 $G2 $G3" '
    /^[ \t]*server qdq:8080 / {
        n = split(ports, p, " ")
        for (i = 1; i <= n; i++) { l = $0; sub(/qdq:8080/, "127.0.0.1:" p[i], l); print l }
        subs++; next
    }
    /^[ \t]*server qdq:8081 / {
        n = split(gports, p, " ")
        for (i = 1; i <= n; i++) { l = $0; sub(/qdq:8081/, "127.0.0.1:" p[i], l); print l }
        subs++; next
    }
    /^[ \t]*listen 8080;/ { sub(/listen 8080;/, "listen 127.0.0.1:" LP ";"); subs++ }
    /^[ \t]*listen 8081 http2;/ { sub(/listen 8081 http2;/, "listen 127.0.0.1:" GLP " http2;"); subs++ }
    /^pid / { $0 = "pid " T "/nginx.pid;"; subs++ }
    /^error_log / { $0 = "error_log " T "/error.log warn;"; subs++ }
    /access_log \/dev\/stdout qdq;/ { sub(/\/dev\/stdout/, T "/access.log"); subs++ }
    { print }
    /^http {/ {
        print "    client_body_temp_path " T "/body;"
        print "    proxy_temp_path " T "/proxy;"
        print "    fastcgi_temp_path " T "/fastcgi;"
        print "    uwsgi_temp_path " T "/uwsgi;"
        print "    scgi_temp_path " T "/scgi;"
        subs++
    }
    END { if (subs != 8) { print "substitutions: " subs " of 8" > "/dev/stderr"; exit 1 } }
' deploy/nginx.conf >"$T/nginx.conf"
rc=$?
check '[ $rc -eq 0 ]' "nginx config generated from deploy/nginx.conf"
"$NGINX" -t -q -e "$T/error.log" -p "$T/" -c "$T/nginx.conf" 2>"$T/nginx-t.err"
rc=$? # before the message's $(cat) runs, which sets $? again
check '[ $rc -eq 0 ]' "nginx -t accepts it (exit $rc) $(cat "$T/nginx-t.err")"
"$NGINX" -e "$T/error.log" -p "$T/" -c "$T/nginx.conf" -g 'daemon off;' 2>>"$T/error.log" &
NG=$!
PIDS="$PIDS $NG"
LB=http://127.0.0.1:$LP
n=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$LB/healthz")" = 200 ]; do
    n=$((n + 1))
    [ $n -lt 50 ] || break
    sleep 0.1
done
check '[ $n -lt 50 ]' "nginx on $LB answers /healthz through a replica"

# Answers through nginx.
OUT=$(curl -s --max-time 60 -H 'Content-Type: application/json' -H 'X-Request-Id: scaleout-1' \
    -D "$T/h1" -d '{"input": [[-1.0, -0.5], [0.0, 0.3]], "num_bits": 8}' "$LB/quantize-dequantize")
check 'echo "$OUT" | grep -qF "\"output\":[[-1.0,-0.5],[0.0,0.296875]]"' "JSON answer through nginx: $OUT"
check 'grep -qi "^X-Request-Id: scaleout-1" "$T/h1"' "the client's X-Request-Id reaches the replica and comes back"
# 300 channels: ~20 KiB of X-QDQ-* response headers (nginx's default buffer is 4-8 KiB).
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<1200f", *[(i % 7) - 3.0 for i in range(1200)]))' >"$T/w300.f32"
code=$(curl -s --max-time 60 -o /dev/null -D "$T/h2" -w '%{http_code}' --data-binary "@$T/w300.f32" \
    -H 'Content-Type: application/octet-stream' "$LB/quantize-dequantize?shape=300,4&axis=0")
nscale=$(sed -n 's/^X-QDQ-Scale: *//ip' "$T/h2" | tr ',' '\n' | grep -c .)
check '[ "$code" = 200 ] && [ "$nscale" = 300 ]' "per-channel headers of 300 channels pass nginx (status $code, $nscale scales)"
# Over the body limit (256 MiB, as the server's default): refused by nginx from Content-Length,
# as JSON.
code=$(curl -s --max-time 60 -o "$T/b413" -D "$T/h413" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/octet-stream' -H 'Content-Length: 268435457' "$LB/quantize-dequantize")
check '[ "$code" = 413 ] && grep -qi "^Content-Type: application/json" "$T/h413" && grep -q RESOURCE_EXHAUSTED "$T/b413"' \
    "a body over 256 MiB: 413 JSON from nginx (status $code: $(cat "$T/b413"))"

# gRPC through nginx: tests/deploy/grpc_calls.py (messages generated here from proto/*.proto).
GPY=""
command -v protoc >/dev/null && GPY=$(python_with grpc google.protobuf)
grpc_calls() { # WHAT N: N ModelInfer calls (or "health") through nginx; prints "OK n FAIL m ..."
    PYTHONPATH=$T/gen "$GPY" tests/deploy/grpc_calls.py "127.0.0.1:$GLP" "127.0.0.1:$G3" "$@" 2>&1
}
if [ -n "$GPY" ] && mkdir -p "$T/gen" && protoc --python_out="$T/gen" -Iproto proto/grpc_predict_v2.proto proto/health.proto; then
    out=$(grpc_calls health 1)
    check 'echo "$out" | grep -q "^SERVING$"' "gRPC through nginx: grpc.health.v1 Check SERVING ($out)"
    out=$(grpc_calls infer 60)
    check 'echo "$out" | grep -q "^OK 60 FAIL 0"' "gRPC through nginx: 60 ModelInfer calls answered as a replica answers directly ($out)"
    gserved() { grep -c '"route":"grpc_ModelInfer","grpc_status":0,' "$T/r$1.out"; } # JSON logs
    g1=$(gserved 1); g2=$(gserved 2); g3=$(gserved 3)
    check '[ "$g1" -gt 0 ] && [ "$g2" -gt 0 ] && [ "$g3" -gt 0 ]' "gRPC calls spread over the replicas: $g1 $g2 $g3 (one client connection)"
else
    bad "gRPC through nginx: python3 with grpcio and protobuf, and protoc, are needed (Debian python3-grpcio, python3-protobuf, protobuf-compiler)"
fi

# Requests replica i answered 200, from nginx's log (the replica that answered is the last
# address of $upstream_addr; the replicas' own access logs are buffered, and a replica killed
# with -9 loses the lines it had not written yet).
served() {
    eval "p=\$P$1"
    awk -v a="127.0.0.1:$p" '/"POST \/quantize-dequantize/ {
        if (!match($0, /upstream=[^ ]*( [^ =]*,?)* upstream_status=/)) next
        u = substr($0, RSTART + 9, RLENGTH - 9 - 17); n = split(u, addr, ", ")
        if (addr[n] == a && $0 ~ /upstream_status=([^ ]*, )*200 /) c++ } END { print c + 0 }' "$T/access.log"
}
posts() { grep -c '"POST /quantize-dequantize' "$T/access.log"; }

# How many requests nginx passed to a second replica so far ($upstream_addr lists each one
# tried), and the upstream errors it logged (refused, reset, closed early; or 503 while draining).
retries() {
    echo "requests retried on another replica so far: $(grep '"POST /quantize-dequantize' "$T/access.log" |
        grep -c 'upstream=[^ ]*, ')" \
        "(upstream errors logged: $(grep -c 'upstream' "$T/error.log"))"
}

# load FORMAT COUNT: load_curl.sh through nginx in the background; waits until a fifth of the
# requests are answered (so that what follows happens mid-run).
load() {
    base=$(posts)
    QDQ_URL=$LB QDQ_LOAD_REQUESTS=$2 QDQ_LOAD_PARALLEL=8 QDQ_LOAD_ELEMENTS=1024 \
        sh tests/load/load_curl.sh "$1" >"$T/load-$1.out" 2>&1 &
    LOAD=$!
    n=0
    while [ $n -lt 600 ] && [ $(($(posts) - base)) -lt $(($2 / 5)) ] && kill -0 $LOAD 2>/dev/null; do
        sleep 0.02
        n=$((n + 1))
    done
    AT=$(($(posts) - base))
}

# 1. kill -9 one replica mid-run.
before1=$(served 1)
load raw "$REQUESTS"
kill -9 "$R1"
wait "$LOAD"
rc=$?
cat "$T/load-raw.out"
check '[ $rc -eq 0 ] && grep -q " 0 failed$" "$T/load-raw.out"' \
    "raw: $REQUESTS requests, replica 1 killed (-9) after $AT answers: zero failed"
check '[ "$AT" -lt "$REQUESTS" ]' "the kill came mid-run ($AT of $REQUESTS answered)"
if [ -n "$GPY" ]; then
    out=$(grpc_calls infer 60)
    check 'echo "$out" | grep -q "^OK 60 FAIL 0"' "gRPC through nginx after replica 1 was killed: every call answered ($out)"
fi
echo "served by replica 1 (killed): $(($(served 1) - before1)), 2: $(served 2), 3: $(served 3)"
check '[ $(($(served 1) - before1)) -gt 0 ] && [ "$(served 2)" -gt 0 ] && [ "$(served 3)" -gt 0 ]' \
    "the load was spread over all three replicas"
retries

# 2. SIGTERM (a rolling restart's stop) mid-run: the replica drains and exits 0.
load json $((REQUESTS / 2))
kill -TERM "$R2"
wait "$R2"
rc2=$?
wait "$LOAD"
rc=$?
cat "$T/load-json.out"
check '[ $rc -eq 0 ] && grep -q " 0 failed$" "$T/load-json.out"' \
    "json: $((REQUESTS / 2)) requests, replica 2 stopped (SIGTERM) after $AT answers: zero failed"
check '[ $rc2 -eq 0 ]' "the stopped replica drained and exited 0 (exit $rc2)"
if [ -n "$GPY" ]; then
    out=$(grpc_calls infer 60)
    check 'echo "$out" | grep -q "^OK 60 FAIL 0"' "gRPC through nginx after replica 2 was stopped: every call answered ($out)"
fi
retries

# 3. Every replica gone: nginx answers 503 JSON with Retry-After itself.
kill -9 "$R3"
wait "$R3" 2>/dev/null
code=$(curl -s --max-time 60 -o "$T/b503" -D "$T/h503" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d '{"input": [1.0]}' "$LB/quantize-dequantize")
check '[ "$code" = 503 ] && grep -qi "^Content-Type: application/json" "$T/h503" && grep -qi "^Retry-After: 1" "$T/h503" && grep -q UNAVAILABLE "$T/b503"' \
    "no replica left: 503 JSON with Retry-After from nginx (status $code: $(cat "$T/b503"))"
if [ -n "$GPY" ]; then
    out=$(grpc_calls health 1)
    check 'echo "$out" | grep -q "^UNAVAILABLE no replica answered$"' \
        "gRPC through nginx with no replica left: UNAVAILABLE from nginx ($out)"
fi

total=$(posts)
ok200=$(grep '"POST /quantize-dequantize' "$T/access.log" | grep -c '" 200 ')
echo "nginx access log: $total POSTs, $ok200 answered 200"
kill -QUIT "$NG"
wait "$NG"
rc=$?
check '[ $rc -eq 0 ]' "nginx stopped cleanly (exit $rc)"
finish
