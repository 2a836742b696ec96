#!/bin/sh
# Every command in README.md's ```sh blocks, run against a server started here on free ports
# of 127.0.0.1 (HTTP and gRPC), and every ```python block whose imports are installed:
#  - localhost:8080 and 127.0.0.1:8080 become the test server's HTTP address, localhost:8081 and
#    127.0.0.1:8081 its gRPC address, and QDQ_URL points at HTTP for the load scripts' default;
#    wrk's -d<N>s becomes -d1s and QDQ_LOAD_REQUESTS=<N> becomes 200, so the load commands stay
#    short;
#  - commands and python blocks run in a scratch directory that links the repository's files and
#    holds the inputs the examples name (w.f32: 64x128 float32, w.npy; model.safetensors: a
#    small decoder-shaped checkpoint; model-dir/: it as two shards with an index and a config);
#    `qdq` is the built one ($QDQ_BIN, default qdq beside the server); python blocks import
#    what the commands before them wrote there (grpc_predict_v2_pb2 from protoc); curl gets
#    --fail, so an HTTP error fails;
#  - comment lines right under a command, the first one starting "# {" or "# [", are the JSON
#    it prints: its output must contain them (whitespace aside);
#  - counted as skipped (with the reason), not as passed: ./run.sh and ./test.sh (CI runs what
#    they run: .ci/run, the installer, make test); the commands that need a container engine
#    (docker or podman build and run, docker compose: tests/deploy/test_container.sh runs
#    them with podman) or a cluster (kubectl: tests/deploy/test_k8s_manifests.sh checks the manifests
#    it applies). The files such a command names with -f must exist (else it fails), and
#    `docker run IMAGE ARGS` is also checked here as far as it can be: the built server with
#    the command's -e variables and ARGS starts, answers /healthz and exits 0 on SIGTERM. Any
#    other command that cannot run fails;
#  - a ```python block runs when its imports are importable (numpy, requests, grpc and
#    google.protobuf: Debian's python3-numpy, python3-requests, python3-grpcio and
#    python3-protobuf, in scripts/install-deps.sh --dev; with QDQ_CI=1 their absence fails; a
#    missing *_pb2 module, which a README command generates, fails); a block that needs a module
#    Debian does not package (tritonclient: pip only, and no pip registry is reachable here) is
#    counted as skipped.
# Also runs every load script of tests/load/ briefly against the server, documented or not.
# Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
README=${QDQ_README:-README.md}  # another file, to try a draft
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$ROOT/$SERVER ;; esac
QDQ_BIN=${QDQ_BIN:-$(dirname "$SERVER")/qdq}
case $QDQ_BIN in /*) ;; *) QDQ_BIN=$ROOT/$QDQ_BIN ;; esac
. tests/lib/checks.sh
T=$(mktemp -d)
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

# start_server LOG [ARGS...]: the caller's environment and ARGS, then 127.0.0.1 and free ports
# (HTTP and gRPC) whatever they say; sets SPID, SPORT and GPORT (empty when it did not start).
start_server() {
    log=$1
    shift
    : >"$log"
    # shellcheck disable=SC2086 # SENV: NAME=VALUE words
    env ${SENV:-} "$SERVER" "$@" --listen 127.0.0.1:0 --port 0 --grpc-listen 127.0.0.1:0 \
        >/dev/null 2>"$log" &
    SPID=$!
    PIDS="$PIDS $SPID"
    server_ports "$log" $SPID grpc
    SPORT=$HPORT
}
SENV=QDQ_ACCESS_LOG=off
start_server "$T/server.err"
PORT=$SPORT
GRPC_PORT=$GPORT
if [ -z "$PORT" ] || [ -z "$GRPC_PORT" ]; then
    bad "the server did not start: $(cat "$T/server.err")"
    finish
fi
URL=http://127.0.0.1:$PORT

# The scratch directory: the repository's top-level entries linked, and the example inputs.
W=$T/work
mkdir -p "$W" "$T/cmds" "$T/bin" "$W/model-dir"
for f in "$ROOT"/* "$ROOT"/.[!.]*; do
    case ${f##*/} in .git) continue ;; esac
    [ -e "$f" ] && ln -s "$f" "$W/${f##*/}"
done
python3 - "$W" <<'PYEOF'
import struct, sys
w = [((i * 37) % 201 - 100) / 100.0 for i in range(64 * 128)]  # in [-1, 1]
open(sys.argv[1] + "/w.f32", "wb").write(struct.pack("<%df" % len(w), *w))
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 128), }"
hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
open(sys.argv[1] + "/w.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr))
    + hdr.encode() + struct.pack("<%df" % len(w), *w))
# model.safetensors: named and shaped as a decoder's tensors (small), F32 weights, an I64 buffer.
import json, math
def checkpoint(path, tensors, k0):
    meta, data = {"__metadata__": {"format": "pt"}}, b""
    for k, (name, dt, shape) in enumerate(tensors, k0):
        n = 1
        for d in shape:
            n *= d
        if dt == "I64":
            b = struct.pack("<%dq" % n, *range(n))
        else:
            b = struct.pack("<%df" % n, *[math.sin(k * 1000 + i * 0.37) * (1 + (i % 7) / 7)
                                          for i in range(n)])
        meta[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(meta, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
    return [t[0] for t in tensors]
tensors = [("model.embed_tokens.weight", "F32", [32, 16]),
           ("model.layers.0.input_layernorm.weight", "F32", [16]),
           ("model.layers.0.self_attn.q_proj.weight", "F32", [16, 16]),
           ("model.layers.0.self_attn.q_proj.bias", "F32", [16]),
           ("model.layers.0.mlp.down_proj.weight", "F32", [16, 32]),
           ("model.position_ids", "I64", [32]),
           ("lm_head.weight", "F32", [32, 16])]
checkpoint(sys.argv[1] + "/model.safetensors", tensors, 0)
# model-dir/: the same tensors as two shards, with the index and a config, as a hub model is.
d = sys.argv[1] + "/model-dir/"
shards = {"model-00001-of-00002.safetensors": tensors[:4], "model-00002-of-00002.safetensors": tensors[4:]}
weight_map = {}
for i, (f, ts) in enumerate(sorted(shards.items())):
    for name in checkpoint(d + f, ts, 4 * i):
        weight_map[name] = f
json.dump({"metadata": {}, "weight_map": weight_map}, open(d + "model.safetensors.index.json", "w"))
json.dump({"model_type": "llama", "hidden_size": 16}, open(d + "config.json", "w"))
PYEOF
# curl with --fail: an HTTP error is a failed command.
REALCURL=$(command -v curl)
printf '#!/bin/sh\nexec "%s" --fail --max-time 60 "$@"\n' "$REALCURL" >"$T/bin/curl"
chmod +x "$T/bin/curl"
# qdq: the built one, as `make install` would put it on PATH.
[ -x "$QDQ_BIN" ] && ln -s "$QDQ_BIN" "$T/bin/qdq"

# Extract: $T/cmds/NNN.sh (a command), NNN.expect (its expected output), NNN.py (a block).
# Expected output: comment lines right under a command, the first one starting "# {" or "# ["
# (the JSON the command prints); a blank line or a command ends it.
python3 - "$README" "$T/cmds" >/dev/null <<'PYEOF'
import re, shlex, sys
text = open(sys.argv[1]).read()
out = sys.argv[2]
def complete(cmd):
    if cmd.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(cmd, comments=True)
        return True
    except ValueError:
        return False
items = []  # [kind, text, expected output or None]
for lang, body in re.findall(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
    if lang == "python":
        items.append(["py", body, None])
        continue
    if lang != "sh":
        continue
    cmd, cur = "", None
    for line in body.splitlines():
        s = line.strip()
        if not cmd:
            if cur is not None and s.startswith("#") and (
                    cur[2] is not None or re.match(r"#\s*[\[{]", s)):
                cur[2] = (cur[2] or "") + s[1:].strip()
                continue
            cur = None
            if not s or s.startswith("#"):
                continue
        cmd += line + "\n"
        if complete(cmd):
            cur = ["sh", cmd, None]
            items.append(cur)
            cmd = ""
    if cmd:
        items.append(["sh", cmd, None])  # unterminated: fails when run
for i, (kind, body, expect) in enumerate(items, 1):
    open(f"{out}/{i:03d}.{kind}", "w").write(body)
    if expect is not None:
        open(f"{out}/{i:03d}.expect", "w").write(expect)
print(len(items))
PYEOF
[ $? -eq 0 ] || bad "could not extract the commands of $README"
ls "$T/cmds"/*.sh >/dev/null 2>&1 || bad "$README has no \`\`\`sh commands"

# A command that needs a container engine or a cluster: skipped with the reason WHY, once the
# files it names with -f are found (a README naming a file that is not there fails).
elsewhere() {
    cmd=$1
    for f in $(printf '%s\n' "$cmd" | python3 -c 'import shlex, sys
a = shlex.split(sys.stdin.read(), comments=True)
print(" ".join(a[i + 1] for i, x in enumerate(a[:-1]) if x in ("-f", "--file")))'); do
        [ -e "$f" ] || { bad "$cmd: $f does not exist"; return; }
    done
    skip "$(printf '%s' "$cmd" | head -n 1): $2"
}
ENGINE="no container engine in this test: tests/deploy/test_container.sh runs it with podman"
CLUSTER="no cluster here: tests/deploy/test_k8s_manifests.sh checks the manifests it applies"

# `docker run [OPTIONS] IMAGE [ARGS]`: the image's ENTRYPOINT is the server, so the mirror is
# the server with the command's -e variables and ARGS (on 127.0.0.1 instead of -p).
docker_run() {
    cmd=$1
    printf '%s\n' "$cmd" | python3 -c '
import shlex, sys
a = shlex.split(sys.stdin.read(), comments=True)[2:]
env, i = [], 0
while i < len(a) and a[i].startswith("-"):
    o = a[i]
    if o in ("-e", "--env"):
        env.append(a[i + 1]); i += 2
    elif o.startswith("--env="):
        env.append(o[6:]); i += 1
    elif o in ("-p", "--publish", "--name", "-v", "--volume", "--stop-timeout", "--cpus", "-m", "--memory", "--user", "-u"):
        i += 2
    else:
        i += 1
args = a[i + 1:]
print("\n".join(env)); print("--"); print("\n".join(args))' >"$T/dr"
    envs=$(sed -n '1,/^--$/p' "$T/dr" | sed '$d')
    args=$(sed -n '/^--$/,$p' "$T/dr" | sed 1d)
    for e in $envs; do
        "$SERVER" --help | grep -q "  ${e%%=*}\$" || { bad "$cmd: ${e%%=*} is not a variable of the server"; return; }
    done
    SENV="QDQ_ACCESS_LOG=off $(echo $envs)"
    # shellcheck disable=SC2086
    start_server "$T/dr.err" $args
    dpid=$SPID
    dport=$SPORT
    if [ -n "$dport" ] && [ "$("$REALCURL" -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$dport/healthz")" = 200 ]; then
        kill -TERM "$dpid"
        wait "$dpid"
        drc=$?
        [ $drc -eq 0 ] || { bad "$cmd: the mirrored server exited $drc on SIGTERM"; return; }
        ok "$(printf '%s' "$cmd" | head -n 1): its variables and arguments: the server with $(echo $envs) $(echo $args) answers /healthz, exits 0 on SIGTERM"
    else
        kill -9 "$dpid" 2>/dev/null
        bad "$cmd: the server with $(echo $envs) $(echo $args) did not start: $(cat "$T/dr.err")"
    fi
}

for f in "$T/cmds"/*; do
    case $f in *.expect) continue ;; esac
    id=${f##*/}
    id=${id%.*}
    case $f in
    *.py)
        mods=$(python3 -c 'import re, sys
t = open(sys.argv[1]).read()
m = set()
for l in re.findall(r"^\s*import (.+)$", t, re.M):
    m.update(x.split(" as ")[0].strip() for x in l.split(","))
m.update(re.findall(r"^\s*from (\S+) import", t, re.M))
print(" ".join(sorted(m)))' "$f")
        PY=$(cd "$W" && python_with $mods)
        if [ -z "$PY" ]; then
            debian="" other="" generated=""
            for m in $mods; do
                (cd "$W" && { python3 -c "import $m" || /usr/bin/python3 -c "import $m"; }) 2>/dev/null && continue
                case ${m%%.*} in
                numpy|requests|grpc|google) debian="$debian $m" ;;
                *_pb2) generated="$generated $m" ;;
                *) other="$other $m" ;;
                esac
            done
            if [ -n "$generated" ]; then
                bad "README python block $id: cannot import$generated (a README command generates it with protoc)"
            elif [ -n "$debian" ]; then
                need false "README python block $id: not installed:$debian (Debian's python3-numpy, python3-requests, python3-grpcio, python3-protobuf, in scripts/install-deps.sh --dev)"
            else
                skip "README python block $id: needs$other, which Debian does not package (pip only; no pip registry is reachable here)"
            fi
            continue
        fi
        sed -e "s|localhost:8080|127.0.0.1:$PORT|g" -e "s|localhost:8081|127.0.0.1:$GRPC_PORT|g" \
            "$f" >"$T/run.py"
        if (cd "$W" && PYTHONPATH=$W timeout 60 "$PY" "$T/run.py") >"$T/out" 2>&1; then
            ok "README python block $id ($mods)"
        else
            tail -n 15 "$T/out"
            bad "README python block $id ($mods)"
        fi
        continue ;;
    esac
    cmd=$(cat "$f")
    first=$(printf '%s' "$cmd" | head -n 1)
    case $cmd in
    ./run.sh*|./test.sh*|"sh run.sh"*|"sh test.sh"*)
        skip "$first: CI runs what it runs (.ci/run: scripts/install-deps.sh, make test)"
        continue ;;
    "docker build"*|"podman build"*|"docker compose"*|docker-compose*)
        elsewhere "$cmd" "$ENGINE"; continue ;;
    "docker run"*|"podman run"*) docker_run "$cmd"; elsewhere "$cmd" "$ENGINE"; continue ;;
    kubectl*) elsewhere "$cmd" "$CLUSTER"; continue ;;
    esac
    run=$(printf '%s' "$cmd" | sed -e "s|localhost:8080|127.0.0.1:$PORT|g" \
        -e "s|127\.0\.0\.1:8080|127.0.0.1:$PORT|g" -e "s|localhost:8081|127.0.0.1:$GRPC_PORT|g" \
        -e "s|127\.0\.0\.1:8081|127.0.0.1:$GRPC_PORT|g" -e 's/\([[:space:]]-d\)[0-9][0-9]*[smh]\b/\11s/g' \
        -e 's/QDQ_LOAD_REQUESTS=[0-9][0-9]*/QDQ_LOAD_REQUESTS=200/g')
    (cd "$W" && PATH=$T/bin:$PATH QDQ_URL=$URL QDQ_LOAD_REQUESTS=200 timeout 60 sh -c "$run") \
        >"$T/out" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        if [ -f "$T/cmds/$id.expect" ]; then
            want=$(tr -d ' \t\n' <"$T/cmds/$id.expect")
            got=$(tr -d ' \t\n' <"$T/out")
            case $got in
            *"$want"*) ok "$first (and prints what README shows)" ;;
            *) bad "$first: printed $got, README shows $want" ;;
            esac
        else
            ok "$first"
        fi
    else
        tail -n 15 "$T/out"
        bad "$first (exit status $rc)"
    fi
done

# The load scripts, briefly, whether or not the README calls them yet.
if QDQ_URL=$URL QDQ_LOAD_REQUESTS=100 QDQ_LOAD_PARALLEL=4 sh tests/load/load_curl.sh >"$T/out" 2>&1; then
    ok "tests/load/load_curl.sh (every format): $(tr '\n' ';' <"$T/out")"
else
    cat "$T/out"
    bad "tests/load/load_curl.sh"
fi
if command -v wrk >/dev/null; then
    for s in tests/load/*.lua; do
        if wrk -t1 -c4 -d1s -s "$s" "$URL" >"$T/out" 2>&1; then
            ok "wrk -s $s: $(tail -n 1 "$T/out")"
        else
            tail -n 5 "$T/out"
            bad "wrk -s $s"
        fi
    done
else
    bad "wrk is not installed (Debian package wrk, in scripts/install-deps.sh --dev)"
fi
finish
