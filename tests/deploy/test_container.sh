#!/bin/sh
# The image under a real container engine: podman (rootful, with runc), built and run as a user
# would, where the engine can run (else skipped, with the reason):
#  - the base image debian:bookworm-slim is made here when podman does not have it
#    (container/make_base.sh: debootstrap from the Debian mirror this machine's apt sources
#    name, trimmed as the official slim image), and kept for the next runs;
#  - the image is built from a clean export of the tree (git archive: HEAD, with uncommitted
#    changes to tracked files) with --format docker, as README says; its size and build time
#    are printed; its spool directory is a volume; the qdq command is in it: its version, and a
#    small checkpoint through a volume gives the host build's qdq's output and report;
#  - run with -p and QDQ_* variables, read-only, --memory 1g --cpus 1: /healthz, /readyz, one
#    request per format with exact answers (container/formats.py), uid 10001 with no
#    capabilities, a read-only root file system with the spool on a volume, the defaults that
#    follow the limits (one worker, a memory budget of 768M) in its start line, JSON-only logs;
#    `podman healthcheck run` healthy, not healthy while paused or while the server is stopped
#    (SIGSTOP), and the check fails when asked at a wrong port;
#  - the memory budget under --memory 1g, as tests/http/test_memory.c outside a container:
#    twelve concurrent 256 MiB raw requests (curl -T from a file), each answered 200 with the
#    right bytes or 503 with Retry-After, none lost, no OOM kill or restart, the cgroup's peak
#    under the budget plus a constant and the limit never reached, memory back near idle after
#    --cache-idle-ms; then two 358 MiB checkpoints at once (container/make_checkpoint.py),
#    byte-identical to the host build's server's answer, no OOM kill, no tmpfs memory used;
#  - `podman stop`: exit code 0, the drain in the logs, a request in flight at the stop
#    answered in full;
#  - run with flags only, --listen [::]:9000: reached over IPv4 through the published port and
#    over IPv4 and IPv6 inside the container, and healthy (the health check finds the server's
#    port); run with --init and --port: healthy (found as the init's child);
#  - deploy/docker-compose.yml under podman-compose: three replicas behind nginx, each request
#    format through nginx, bounded load (tests/load/load_curl.sh) with one replica killed
#    (SIGKILL) mid-run and then another stopped (SIGTERM, draining), zero failed requests; the
#    replicas' spool on a volume.
# Engine settings are flags and a containers.conf of this run's own (CONTAINERS_CONF; networks
# in its temporary directory): nothing is written under /etc. Every container, network, volume
# and image it makes is removed, except the cached base and nginx images. Needs the host's build
# (QDQ_SERVER, default build/qdq-server, and qdq beside it) to compare answers with. Prints "N passed, N failed"
# (skipped: "0 passed, 0 failed, 1 skipped"). QDQ_SKIP_CONTAINER=1 skips it.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/checks.sh
START=$(date +%s)
skip() {
    echo "skip: test_container.sh: $*"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ -z "${QDQ_SKIP_CONTAINER:-}" ] || skip "QDQ_SKIP_CONTAINER is set"
[ "$(id -u)" -eq 0 ] || skip "needs root (rootful podman, and debootstrap for the base image)"
for tool in podman runc podman-compose debootstrap nsenter python3 curl git; do
    command -v "$tool" >/dev/null 2>&1 ||
        skip "$tool is not installed (sh scripts/install-deps.sh --dev installs the engine)"
done
git rev-parse --verify -q HEAD >/dev/null 2>&1 || skip "not a git checkout: the image is built from git archive"
# The host's build, whose answers the container's must equal, and Debian's python3 with numpy
# (a python3 earlier on PATH may lack it) for the test's inputs.
HOST_SERVER=${QDQ_SERVER:-build/qdq-server}
HOST_QDQ=$(dirname "$HOST_SERVER")/qdq
[ -x "$HOST_SERVER" ] && [ -x "$HOST_QDQ" ] || skip "no host build at $HOST_SERVER and $HOST_QDQ (make)"
NPY=$(python_with numpy)
[ -n "$NPY" ] || skip "no python3 with numpy (Debian package python3-numpy)"

T=$(mktemp -d /tmp/qdq-container-XXXXXX)
chmod 755 "$T"
RUN=qdqt$$
LABEL=qdq-test=$RUN
IMG=localhost/qdq-server-test:$RUN
BASE=docker.io/library/debian:bookworm-slim
NGINX_IMG=localhost/qdq-test-nginx:bookworm
COMPOSE_FILE=$T/compose/docker-compose.yml

# Everything this run made, by label or name; also at any exit.
teardown() {
    [ ! -f "$COMPOSE_FILE" ] || timeout 120 podman-compose -p "$RUN" -f "$COMPOSE_FILE" down -v -t 2 >/dev/null 2>&1
    for f in "label=$LABEL" "label=io.podman.compose.project=$RUN"; do
        ids=$(podman ps -aq --filter "$f" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || podman rm -f -v -t 0 $ids >/dev/null 2>&1
        ids=$(podman network ls -q --filter "$f" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || podman network rm -f $ids >/dev/null 2>&1
    done
    ! podman image exists "$IMG" 2>/dev/null || podman rmi -f "$IMG" >/dev/null 2>&1
}
trap 'teardown; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Counts the "ok: " and "FAIL: " lines of a file (a helper's output), printing it.
count() {
    cat "$1"
    pass=$((pass + $(grep -c '^ok: ' "$1")))
    fail=$((fail + $(grep -c '^FAIL: ' "$1")))
    grep -q '^\(ok\|FAIL\): ' "$1" || bad "$2 printed no result"
}
# wait_http URL SECONDS [CURL ARGS]: until URL answers 200; 0 when it did.
wait_http() {
    u=$1
    n=$(($2 * 10))
    shift 2
    while [ $n -gt 0 ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$u")" = 200 ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# alive PID...: whether any of them is still running.
alive() {
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}
# The memory cgroup of a process (v1: the memory hierarchy's; v2: the unified one's; this
# machine's cgroups are hybrid, memory in v1) and its counters: usage, peak (v1
# max_usage_in_bytes, v2 memory.peak), the peak's reset (v2: kernels from 6.12), the times the
# limit was hit (v1 failcnt, v2 the events' max), the OOM kills.
cg_dir() {
    p=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$1/cgroup")
    if [ -n "$p" ] && [ -f "/sys/fs/cgroup/memory$p/memory.limit_in_bytes" ]; then
        echo "/sys/fs/cgroup/memory$p"
        return
    fi
    p=$(awk -F: '$1 == 0 { print $3 }' "/proc/$1/cgroup")
    for r in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        if [ -f "$r$p/memory.max" ]; then echo "$r$p"; return; fi
    done
}
cg_v1() { [ -f "$1/memory.limit_in_bytes" ]; }
cg_usage() { if cg_v1 "$1"; then cat "$1/memory.usage_in_bytes"; else cat "$1/memory.current"; fi 2>/dev/null; }
cg_peak() { if cg_v1 "$1"; then cat "$1/memory.max_usage_in_bytes"; else cat "$1/memory.peak"; fi 2>/dev/null; }
cg_reset() { if cg_v1 "$1"; then echo 0 >"$1/memory.max_usage_in_bytes"; else echo 0 >"$1/memory.peak"; fi 2>/dev/null; }
cg_failcnt() {
    if cg_v1 "$1"; then cat "$1/memory.failcnt"; else awk '$1 == "max" { print $2 }' "$1/memory.events"; fi 2>/dev/null
}
cg_ooms() {
    f=$1/memory.events
    cg_v1 "$1" && f=$1/memory.oom_control
    awk '$1 == "oom_kill" { print $2 }' "$f" 2>/dev/null
}
# not_killed NAME CGROUP WHEN: the container still running, never restarted, not OOM-killed:
# podman's flag, and the cgroup's own count (read while it runs), since podman 4.3 with runc and
# cgroupfs here reports OOMKilled false for a server the kernel killed (exit code 137).
not_killed() {
    st=$(podman inspect -f '{{.State.Running}} {{.State.OOMKilled}} {{.RestartCount}}' "$1" 2>&1)
    ooms=$(cg_ooms "$2")
    check '[ "$st" = "true false 0" ] && [ "$ooms" = 0 ]' \
        "$3: the container still running, not restarted, not OOM-killed (running, OOMKilled, restarts: $st; the cgroup's OOM kills: ${ooms:-?})"
}

# The engine's settings: this machine's hard limits as the containers' (podman's defaults are
# above them, and runc may not raise them), the process limit at most kernel.pid_max (here runc
# could not set one above 32768, the pid_max, though the hard limit is 96367), runc (crun
# refuses hybrid cgroups), cgroupfs and a file event log (no systemd), netavark with
# aardvark-dns (compose's service names), its networks' files in $T.
lim=$(python3 -c 'import resource as r
pid_max = int(open("/proc/sys/kernel/pid_max").read())
for n, k, cap in (("nofile", r.RLIMIT_NOFILE, None), ("nproc", r.RLIMIT_NPROC, pid_max)):
    h = r.getrlimit(k)[1]
    h = cap if h == r.RLIM_INFINITY else min(h, cap or h)
    if h is not None: print(f"\"{n}={h}:{h}\"")' | paste -sd, -)
mkdir -p "$T/networks"
cat >"$T/containers.conf" <<EOF
[containers]
default_ulimits = [ $lim ]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
network_config_dir = "$T/networks"
EOF
export CONTAINERS_CONF=$T/containers.conf
podman info >"$T/info" 2>&1 || skip "podman cannot run here: $(tail -n 3 "$T/info" | tr '\n' ' ')"
touch "$T/start-marker"
podman volume ls -q 2>/dev/null | sort >"$T/volumes-before"

# 1. The base image, made once.
BASE_MADE=cached
if ! podman image exists "$BASE"; then
    mkdir "$T/base"
    t0=$(now)
    timeout 900 sh tests/deploy/container/make_base.sh "$T/base" >"$T/base.log" 2>&1
    rc=$?
    rm -rf "$T/base"
    [ $rc -ne 3 ] || skip "this machine's apt sources name no Debian bookworm mirror to make $BASE from"
    BASE_MADE="made in $(since "$t0") s"
    if [ $rc -ne 0 ]; then
        tail -n 20 "$T/base.log"
        bad "$BASE could not be made (debootstrap from this machine's Debian mirror)"
        finish
    fi
fi
if ! podman run --rm --label "$LABEL" "$BASE" true >"$T/probe" 2>&1; then
    skip "podman cannot run a container here: $(grep -v systemd "$T/probe" | tail -n 3 | tr '\n' ' ')"
fi
ok "base image $BASE: $BASE_MADE, $(($(podman image inspect -f '{{.Size}}' "$BASE") / 1000000)) MB"

# 2. The image, from a clean export of the tree, as README says (--format docker).
mkdir "$T/src"
REV=${QDQ_CONTAINER_REV:-$(git stash create 2>/dev/null)}  # another revision, to compare
REV=${REV:-HEAD}
git archive --format=tar "$REV" | tar -x -C "$T/src"
t0=$(now)
timeout 900 podman build --format docker --layers=false --label "$LABEL" -t "$IMG" "$T/src" >"$T/build.log" 2>&1
rc=$?
BUILD_S=$(since "$t0")
if [ $rc -ne 0 ]; then
    tail -n 30 "$T/build.log"
    bad "podman build --format docker of git archive $REV (exit $rc after $BUILD_S s)"
    finish
fi
SIZE_MB=$(podman image inspect -f '{{.Size}}' "$IMG" | awk '{ printf "%.1f", $1 / 1e6 }')
ok "podman build --format docker of a clean export (git archive $(git rev-parse --short "$REV")): $BUILD_S s, image $SIZE_MB MB"
podman image inspect -f '{{json .HealthCheck}} {{.Config.User}}' "$IMG" >"$T/inspect" 2>&1
check 'grep -q "\"/usr/local/bin/qdq-server\",\"--healthcheck\"" "$T/inspect"' \
    "the image keeps its HEALTHCHECK: $(cut -c1-90 "$T/inspect")"
check 'grep -q " 10001:10001$" "$T/inspect"' "the image's user is 10001:10001"
BIN_BYTES=$(podman run --rm --label "$LABEL" --entrypoint /bin/sh "$IMG" -c 'wc -c </usr/local/bin/qdq-server' 2>/dev/null)
check '[ -n "$BIN_BYTES" ] && [ "$BIN_BYTES" -lt 1000000 ]' "the image's binary is stripped: ${BIN_BYTES:-?} bytes"
podman image inspect -f '{{json .Config.Volumes}} {{range .Config.Env}}{{.}} {{end}}' "$IMG" >"$T/inspect" 2>&1
check 'grep -q "\"/var/spool/qdq\"" "$T/inspect" && grep -q " QDQ_SPOOL_DIR=/var/spool/qdq " "$T/inspect"' \
    "the checkpoints' spool is a volume: QDQ_SPOOL_DIR=/var/spool/qdq, VOLUME $(cut -d' ' -f1 "$T/inspect")"

# The qdq command is in the image, beside the server (make install installs both). The image's
# entrypoint is the server, so qdq runs with --entrypoint: its version, and a small checkpoint
# through a volume (a directory of uid 10001's, read-only root), whose output and report equal
# the host build's qdq's.
v=$(podman run --rm --label "$LABEL" --entrypoint qdq "$IMG" --version 2>"$T/qv.err")
hv=$("$HOST_QDQ" --version 2>&1)
check '[ -n "$v" ] && [ "$v" = "$hv" ]' \
    "podman run --rm --entrypoint qdq IMAGE --version: $v (the host build's: $hv) $(grep -v systemd "$T/qv.err" | head -c 300)"
mkdir "$T/qv" "$T/qh"
"$NPY" tests/deploy/container/make_checkpoint.py "$T/qv/in.safetensors" 64 2 >"$T/qv.log" 2>&1
printf '[{"match": ["*norm*", "*.bias"], "skip": true}, {"match": "*_proj.weight", "num_bits": 4, "axis": 0}]\n' >"$T/qv/rules.json"
chown -R 10001:10001 "$T/qv"
podman run --rm --label "$LABEL" --read-only -v "$T/qv:/data" --entrypoint qdq "$IMG" --num-bits 6 \
    --rules /data/rules.json --ranges-tensors --report /data/report.json /data/in.safetensors \
    /data/out.safetensors >"$T/qv.out" 2>&1
rc=$?
"$HOST_QDQ" --num-bits 6 --rules "$T/qv/rules.json" --ranges-tensors --report "$T/qh/report.json" \
    "$T/qv/in.safetensors" "$T/qh/out.safetensors" >"$T/qh.out" 2>&1
hrc=$?
check '[ $rc -eq 0 ] && [ $hrc -eq 0 ] && cmp -s "$T/qv/out.safetensors" "$T/qh/out.safetensors" &&
    cmp -s "$T/qv/report.json" "$T/qh/report.json"' \
    "qdq in the image on a $(wc -c <"$T/qv/in.safetensors")-byte checkpoint through a volume: exit $rc, output ($(wc -c <"$T/qv/out.safetensors" 2>/dev/null) bytes) and report equal to the host build's qdq's (exit $hrc) $(grep -v systemd "$T/qv.out" | head -c 300)"

# 3. As a user runs it: -p, QDQ_* variables, read-only, limits.
C=$RUN-main
PM=$(free_port)
podman run -d --name "$C" --label "$LABEL" -p "127.0.0.1:$PM:8080" --read-only --memory 1g \
    --cpus 1 -e QDQ_LOG_FORMAT=json -e QDQ_DRAIN_TIMEOUT=20 "$IMG" >"$T/run.out" 2>"$T/run.err"
if ! wait_http "http://127.0.0.1:$PM/healthz" 20; then
    cat "$T/run.err"
    podman logs "$C" 2>&1 | tail -n 20
    # A published port is forwarded to the container's address on podman's bridge: another
    # route to that subnet (a bridge left by podman's CNI backend, this machine's default
    # without this run's containers.conf) makes it "No route to host".
    echo "routes to the container's network ($(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$C")):"
    ip route 2>&1 | grep -v '^default'
    bad "podman run -p 127.0.0.1:$PM:8080 --read-only --memory 1g --cpus 1 -e QDQ_LOG_FORMAT=json: no /healthz in 20 s"
    finish
fi
ok "podman run -p 127.0.0.1:$PM:8080 --read-only --memory 1g --cpus 1 -e QDQ_LOG_FORMAT=json: serving"
python3 tests/deploy/container/formats.py "http://127.0.0.1:$PM" "through -p" >"$T/f1" 2>&1
count "$T/f1" "formats.py"
podman exec "$C" cat /proc/1/status >"$T/status" 2>&1
ids=$(awk '/^(Uid|Gid):/ { printf "%s %s %s %s;", $2, $3, $4, $5 }' "$T/status")
caps=$(awk '/^Cap(Inh|Prm|Eff|Amb):/ { printf "%s %s ", $1, $2 }' "$T/status")
capvals=$(awk '/^Cap(Inh|Prm|Eff|Amb):/ { printf "%s", $2 }' "$T/status")
check '[ "$ids" = "10001 10001 10001 10001;10001 10001 10001 10001;" ]' "the server runs as uid/gid 10001 ($ids)"
check '[ ${#capvals} -eq 64 ] && ! echo "$capvals" | grep -q "[1-9a-f]"' "with no capabilities: $caps"
check '[ "$(podman inspect -f "{{.HostConfig.ReadonlyRootfs}}" "$C")" = true ] &&
    podman exec --user 0 "$C" touch /usr/local/bin/x 2>&1 | grep -q "Read-only file system"' \
    "its root file system is read-only (even root cannot write /usr/local/bin)"
mnt=$(podman inspect -f '{{range .Mounts}}{{.Destination}}={{.Type}} {{end}}' "$C")
fs=$(podman exec "$C" stat -f -c %T /var/spool/qdq 2>&1)
check 'echo " $mnt" | grep -q " /var/spool/qdq=volume " && [ "$fs" != tmpfs ] &&
    podman exec "$C" sh -c "echo x >/var/spool/qdq/probe && rm /var/spool/qdq/probe"' \
    "--read-only: the spool /var/spool/qdq is a volume ($mnt), on $fs (not tmpfs), writable by the server's user"
podman logs "$C" >"$T/main.log" 2>&1
check 'grep -q "listening on 0.0.0.0:8080 (1 workers, 1 http threads, max-memory 805306368)" "$T/main.log"' \
    "--cpus 1 --memory 1g: one worker, one HTTP thread, max-memory 768M (3/4 of 1g): $(grep -o 'listening on[^"]*' "$T/main.log")"
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -eq 0 ]' "podman healthcheck run: healthy $(cat "$T/hc")"
podman exec "$C" /usr/local/bin/qdq-server --healthcheck --port 9 >"$T/hc" 2>&1
check '[ $? -eq 1 ]' "the check asked at a wrong port (--healthcheck --port 9): unhealthy, $(cat "$T/hc")"
podman pause "$C" >/dev/null 2>&1
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -ne 0 ]' "paused (podman pause): not healthy: $(grep -v systemd "$T/hc" | tr '\n' ' ')"
podman unpause "$C" >/dev/null 2>&1
SPID=$(podman inspect -f '{{.State.Pid}}' "$C")
kill -STOP "$SPID"
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -eq 1 ] && grep -q unhealthy "$T/hc"' "the server stopped (SIGSTOP): unhealthy: $(tr '\n' ' ' <"$T/hc")"
kill -CONT "$SPID"
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -eq 0 ]' "resumed: healthy again $(cat "$T/hc")"

# The memory budget under the container's limit (--memory 1g: a budget of 768M): twelve
# concurrent 256 MiB raw requests, as tests/http/test_memory.c sends outside a container. Each
# client is curl streaming the body from a file (-T; never loaded whole) and its answer to cmp:
# whole numbers in [-128, 127] with that range given at 8 bits have a scale of 1, so the right
# answer is the input itself. Every request answered 200 with the right bytes or 503 with
# Retry-After; the container neither OOM-killed nor restarted; its cgroup's peak under the
# budget plus the constant the budget leaves out, without ever reaching the limit; its memory
# back near idle after --cache-idle-ms (2 s).
SPID=$(podman inspect -f '{{.State.Pid}}' "$C")
CG=$(cg_dir "$SPID")
"$NPY" - "$T/m.f32" <<'PYEOF'
import sys
import numpy as np
with open(sys.argv[1], "wb") as f:  # 256 MiB of float32, 16 MiB at a time
    for s in range(0, 1 << 26, 1 << 22):
        i = np.arange(s, s + (1 << 22), dtype=np.uint32)
        f.write(((i * np.uint32(2654435761)) >> np.uint32(7) & np.uint32(255)).astype(np.float32) - 128)
PYEOF
IDLE_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SPID/status" 2>/dev/null)
IDLE_KB=${IDLE_KB:-0}
cg_reset "$CG"
F0=$(cg_failcnt "$CG")
echo 5 >"/proc/$SPID/clear_refs" 2>/dev/null # the server's own peak (VmHWM) from now
MURL="http://127.0.0.1:$PM/quantize-dequantize?shape=67108864&num_bits=8&range_given=true&input_min=-128&input_max=127"
t0=$(now)
MPIDS=""
i=1
while [ $i -le 12 ]; do
    ({ curl -s -X POST -T "$T/m.f32" -H 'Content-Type: application/octet-stream' -D "$T/mh$i" \
        --max-time 180 "$MURL"; echo $? >"$T/mx$i"; } | cmp -s - "$T/m.f32"; echo $? >"$T/mc$i") &
    MPIDS="$MPIDS $!"
    i=$((i + 1))
done
# While they run: the most requests waiting for room, and the most bytes held.
WAITING=0
HELD=0
# shellcheck disable=SC2086
while alive $MPIDS; do
    curl -s --max-time 2 "http://127.0.0.1:$PM/metrics" >"$T/metrics" 2>/dev/null
    w=$(awk '/^qdq_memory_waiting_requests / { print $2 }' "$T/metrics")
    h=$(awk '/^qdq_memory_held_bytes / { print $2 }' "$T/metrics")
    [ "${w:-0}" -le "$WAITING" ] || WAITING=$w
    [ "${h:-0}" -le "$HELD" ] || HELD=$h
    sleep 0.2
done
# shellcheck disable=SC2086
wait $MPIDS
MEM_S=$(since "$t0")
n200=0
n503=0
lost=""
i=1
while [ $i -le 12 ]; do
    st=$(grep -a '^HTTP/' "$T/mh$i" | tail -n 1 | awk '{ print $2 }')
    if [ "$st" = 200 ] && [ "$(cat "$T/mx$i")" = 0 ] && [ "$(cat "$T/mc$i")" = 0 ]; then
        n200=$((n200 + 1))
    elif [ "$st" = 503 ] && grep -qi '^Retry-After:' "$T/mh$i"; then
        n503=$((n503 + 1))
    else
        lost="$lost #$i: status ${st:-none}, curl exit $(cat "$T/mx$i"), cmp $(cat "$T/mc$i");"
    fi
    i=$((i + 1))
done
PEAK=$(cg_peak "$CG")
HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SPID/status" 2>/dev/null)
echo "memory: 12 x 256 MiB in $MEM_S s: $n200 answered 200 with the right bytes, $n503 503;" \
    "at most $WAITING waiting, $((HELD / 1048576)) MiB held; cgroup peak $((PEAK / 1048576)) MiB," \
    "server RSS idle $((IDLE_KB / 1024)) MiB, peak $((${HWM_KB:-0} / 1024)) MiB"
check '[ $((n200 + n503)) -eq 12 ] && [ $n200 -ge 2 ]' \
    "12 concurrent 256 MiB requests under --memory 1g: $n200 answered 200 with the right bytes, $n503 503 with Retry-After, none lost$lost"
# (qdq_memory_held_bytes is not checked against the budget: it counts a finishing request's
# buffer twice for a moment, once put back in the cache and once still reserved; the RSS and
# cgroup peaks below are what the budget bounds.)
check '[ "$WAITING" -gt 0 ]' \
    "the budget held them back: up to $WAITING waiting for room (qdq_memory_waiting_requests; qdq_memory_held_bytes up to $((HELD / 1048576)) MiB)"
not_killed "$C" "$CG" "after 12 x 256 MiB"
# 96 MiB: what the budget does not count (connection memory, stacks, the program, page tables),
# as tests/http/test_memory.c allows outside a container.
F1=$(cg_failcnt "$CG")
check '[ -n "$PEAK" ] && [ "$PEAK" -lt $(((768 + 96) * 1048576)) ] && [ -n "$F0" ] && [ "$F1" = "$F0" ]' \
    "the container's cgroup peak $((${PEAK:-0} / 1048576)) MiB: under the budget (768 MiB) + 96 MiB; the limit (1024 MiB) never reached (times hit: ${F0:-?} before, ${F1:-?} after)"
# The cache lets go after --cache-idle-ms (2 s), the heap at the next trim.
n=0
# (A server that is gone has no RSS: the checks above have failed, and this one fails at once.)
until rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SPID/status" 2>/dev/null) && [ "${rss:-0}" -le $((IDLE_KB + 32768)) ] ||
    [ $n -ge 75 ] || ! kill -0 "$SPID" 2>/dev/null; do
    sleep 0.2
    n=$((n + 1))
done
curl -s --max-time 5 "http://127.0.0.1:$PM/metrics" >"$T/metrics" 2>/dev/null
held=$(awk '/^qdq_memory_held_bytes / { print $2 }' "$T/metrics")
usage=$(cg_usage "$CG")
check '[ -n "$rss" ] && [ "$rss" -le $((IDLE_KB + 32768)) ] && [ "$held" = 0 ]' \
    "back near idle $(since "$t0") s after the start: RSS $((${rss:-0} / 1024)) MiB (idle $((IDLE_KB / 1024)) MiB), cgroup $((${usage:-0} / 1048576)) MiB, ${held:-no} bytes held"
rm -f "$T/m.f32"

# Whole checkpoints (application/x-safetensors): the answer waits in a spool file of
# QDQ_SPOOL_DIR, which the image makes a volume (disk) rather than the tmpfs that --read-only
# puts on /tmp (memory, counted against the limit). Two concurrent posts of a 358 MiB
# checkpoint (two: --max-checkpoint-inflight) with a per-channel policy and the ranges as
# tensors: each byte-identical to the host build's server's answer for the same input and
# policy; no OOM kill; the cgroup's shared memory (tmpfs pages) stays near zero, where a spool
# on /tmp holds both answers (about 720 MiB).
"$NPY" tests/deploy/container/make_checkpoint.py "$T/ck.safetensors" 2048 3 >"$T/ck.log" 2>&1 ||
    bad "make_checkpoint.py: $(cat "$T/ck.log")"
CKQ=$(python3 -c 'import json, urllib.parse as u
print(u.urlencode({"num_bits": "6", "ranges": "tensors", "rules": json.dumps(
    [{"match": ["*norm*", "*.bias"], "skip": True}, {"match": "*_proj.weight", "num_bits": 4, "axis": 0}])}))')
HP=$(free_port)
"$HOST_SERVER" --listen "127.0.0.1:$HP" --grpc-listen 127.0.0.1:0 --spool-dir "$T" --access-log off \
    >/dev/null 2>"$T/host.log" &
HPID=$!
wait_http "http://127.0.0.1:$HP/healthz" 20
hcode=$(curl -s -X POST -T "$T/ck.safetensors" -H 'Content-Type: application/x-safetensors' \
    -o "$T/ck.host" -w '%{http_code}' --max-time 120 "http://127.0.0.1:$HP/quantize-dequantize?$CKQ")
kill "$HPID" 2>/dev/null
wait "$HPID" 2>/dev/null
cg_reset "$CG"
(while :; do awk '$1 == "shmem" { print $2 }' "$CG/memory.stat"; sleep 0.2; done) >"$T/shmem" 2>/dev/null &
SAMPLER=$!
t0=$(now)
CKPIDS=""
for i in 1 2; do
    curl -s -X POST -T "$T/ck.safetensors" -H 'Content-Type: application/x-safetensors' -o "$T/ck.$i" \
        -w '%{http_code}' --max-time 120 "http://127.0.0.1:$PM/quantize-dequantize?$CKQ" >"$T/ck.code$i" 2>&1 &
    CKPIDS="$CKPIDS $!"
done
# shellcheck disable=SC2086
wait $CKPIDS
CK_S=$(since "$t0")
kill "$SAMPLER" 2>/dev/null
SHM=$(sort -n "$T/shmem" | tail -n 1)
PEAK=$(cg_peak "$CG")
check '[ "$hcode" = 200 ] && [ "$(cat "$T/ck.code1") $(cat "$T/ck.code2")" = "200 200" ] &&
    cmp -s "$T/ck.1" "$T/ck.host" && cmp -s "$T/ck.2" "$T/ck.host"' \
    "two $(($(wc -c <"$T/ck.safetensors") / 1048576)) MiB checkpoints posted at once with curl -T (${CK_S} s): $(cat "$T/ck.code1") $(cat "$T/ck.code2"), byte-identical to the host build's server ($hcode, $(($(wc -c <"$T/ck.host") / 1048576)) MiB)"
not_killed "$C" "$CG" "after the checkpoints"
check '[ -n "$SHM" ] && [ "$SHM" -lt 33554432 ]' \
    "the spool is on disk: the cgroup's shared memory (tmpfs) peaked at $((${SHM:-0} / 1048576)) MiB (cgroup peak $((${PEAK:-0} / 1048576)) MiB, page cache included)"
rm -f "$T/ck.1" "$T/ck.2" "$T/ck.host"

# podman stop while a request is in flight: 8 MiB sent at 2 MB/s, answered at that rate too.
python3 - "$T/big.f32" "$T/big.want" <<'PYEOF'
import struct, sys
n = 1 << 21  # 8 MiB of float32
open(sys.argv[1], "wb").write(struct.pack("<4f", -1.0, -0.5, 0.0, 0.3) * (n // 4))
open(sys.argv[2], "wb").write(struct.pack("<4f", -1.0, -0.5, 0.0, 0.296875) * (n // 4))
PYEOF
{
    curl -s --max-time 60 --limit-rate 2M -o "$T/big.out" -w '%{http_code} %{size_download} bytes' \
        --data-binary "@$T/big.f32" -H 'Content-Type: application/octet-stream' \
        "http://127.0.0.1:$PM/quantize-dequantize?shape=2097152&num_bits=8"
    echo ", curl exit $?"
} >"$T/big.code" 2>&1 &
CURL=$!
sleep 1
t0=$(now)
podman stop -t 30 "$C" >"$T/stop" 2>&1
rc=$?
STOP_S=$(since "$t0")
wait $CURL
check '[ "$(cut -d" " -f1 "$T/big.code")" = 200 ] && cmp -s "$T/big.out" "$T/big.want"' \
    "a request in flight at the stop (8 MiB at 2 MB/s each way): $(cat "$T/big.code"), the right bytes"
code=$(podman inspect -f '{{.State.ExitCode}}' "$C")
check '[ $rc -eq 0 ] && [ "$code" = 0 ]' "podman stop: returned $rc after $STOP_S s, the container exited $code"
podman logs "$C" >"$T/main.log" 2>&1
check 'grep -q "SIGTERM: not ready" "$T/main.log" && grep -q "stopped after" "$T/main.log"' \
    "the drain is in the logs: $(grep -o '"msg":"[^"]*\(draining\|stopped after\)[^"]*' "$T/main.log" | tr '\n' ' ')"
python3 -c 'import json, sys
def obj(l):
    try:
        return isinstance(json.loads(l), dict)
    except ValueError:
        return False
lines = open(sys.argv[1]).read().splitlines()
bad = [l for l in lines if not obj(l)]
print(len(lines), "lines,", f"{len(bad)} not JSON, the first: {bad[0]!r}" if bad else "all JSON")
sys.exit(1 if bad or not lines else 0)' "$T/main.log" >"$T/jl" 2>&1
check '[ $? -eq 0 ]' "QDQ_LOG_FORMAT=json: every log line is a JSON object: $(cat "$T/jl")"
podman rm -f -v "$C" >/dev/null 2>&1

# 4. Flags only: dual-stack [::], and the health check finds a port given as a flag.
C=$RUN-v6
PF=$(free_port)
podman run -d --name "$C" --label "$LABEL" -p "127.0.0.1:$PF:9000" "$IMG" --listen '[::]:9000' \
    --workers 1 >/dev/null 2>"$T/run.err"
wait_http "http://127.0.0.1:$PF/healthz" 20
check '[ $? -eq 0 ]' "--listen [::]:9000 (a flag): an IPv4 client through the published port 127.0.0.1:$PF"
NS=/proc/$(podman inspect -f '{{.State.Pid}}' "$C")/ns/net
v6=$(nsenter --net="$NS" curl -s -g -o /dev/null -w '%{http_code}' --max-time 5 'http://[::1]:9000/healthz')
v4=$(nsenter --net="$NS" curl -s -o /dev/null -w '%{http_code}' --max-time 5 'http://127.0.0.1:9000/healthz')
check '[ "$v6" = 200 ] && [ "$v4" = 200 ]' "inside the container (nsenter): IPv6 [::1]:9000 $v6, IPv4 127.0.0.1:9000 $v4"
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -eq 0 ]' "podman healthcheck run: healthy, though the port was a flag $(cat "$T/hc")"
podman rm -f -v "$C" >/dev/null 2>&1

# --init: PID 1 is podman's init (catatonit), the server its child, configured by a flag.
C=$RUN-init
podman run -d --init --name "$C" --label "$LABEL" "$IMG" --port 9100 >/dev/null 2>"$T/run.err"
NS=/proc/$(podman inspect -f '{{.State.Pid}}' "$C")/ns/net
n=0
until [ "$(nsenter --net="$NS" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:9100/healthz)" = 200 ] || [ $n -ge 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
podman healthcheck run "$C" >"$T/hc" 2>&1
check '[ $? -eq 0 ]' "--init, --port 9100 (PID 1: $(podman exec "$C" cat /proc/1/comm 2>/dev/null)): healthy $(cat "$T/hc")"
podman rm -f -v "$C" >/dev/null 2>&1

# 5. deploy/docker-compose.yml under podman-compose. What no registry here can give is
# substituted, each key checked to be there: the qdq image is the one built above (from the
# same Dockerfile, instead of `build:`), nginx:stable is Debian's nginx on the same base
# (container/nginx.Containerfile, built once and kept), and nginx is published on 127.0.0.1 and
# free ports instead of every interface's 8080 and 8081. Everything else is the file as shipped.
mkdir "$T/compose"
cp deploy/nginx.conf "$T/compose/nginx.conf"
PN=$(free_port)
python3 - deploy/docker-compose.yml "$COMPOSE_FILE" "$IMG" "$NGINX_IMG" "$PN" "$(free_port)" >"$T/subs" 2>&1 <<'PYEOF'
import sys, yaml
src, dst, img, nginx_img, port, gport = sys.argv[1:7]
c = yaml.safe_load(open(src))
q, n = c["services"]["qdq"], c["services"]["nginx"]
assert q.pop("build", None), "qdq has no build key"
assert q.get("image") and n.get("image") == "nginx:stable", "no image keys"
print(f"qdq: build: and image {q['image']} -> {img} (built above from the Dockerfile)")
q["image"] = img
print(f"nginx: image nginx:stable -> {nginx_img}")
n["image"] = nginx_img
assert n["ports"] == ["8080:8080", "8081:8081"], f"nginx ports {n['ports']}"
print(f"nginx: ports 8080:8080, 8081:8081 -> 127.0.0.1:{port}:8080, 127.0.0.1:{gport}:8081")
n["ports"] = [f"127.0.0.1:{port}:8080", f"127.0.0.1:{gport}:8081"]
yaml.safe_dump(c, open(dst, "w"), sort_keys=False)
PYEOF
rc=$?
sed 's/^/compose substitution: /' "$T/subs"
check '[ $rc -eq 0 ]' "deploy/docker-compose.yml: the substitutions found their keys"
echo "note: podman-compose 1.0.3 ignores name: (the project is -p $RUN), stop_grace_period (podman" \
    "stop -t 25 below) and depends_on's condition: service_healthy (order only: the replicas" \
    "are checked healthy below before any load)"
if ! podman image exists "$NGINX_IMG"; then
    t0=$(now)
    timeout 600 podman build --format docker --layers=false -t "$NGINX_IMG" \
        -f tests/deploy/container/nginx.Containerfile tests/deploy/container >"$T/nginx-build.log" 2>&1
    check '[ $? -eq 0 ]' "the nginx stand-in $NGINX_IMG built in $(since "$t0") s (kept for later runs)" ||
        tail -n 20 "$T/nginx-build.log"
fi
t0=$(now)
timeout 300 podman-compose -p "$RUN" -f "$COMPOSE_FILE" up -d >"$T/compose.log" 2>&1
rc=$?
names=$(podman ps --filter "label=io.podman.compose.project=$RUN" --format '{{.Names}}' | sort | tr '\n' ' ')
check '[ $rc -eq 0 ] && [ "$names" = "${RUN}_nginx_1 ${RUN}_qdq_1 ${RUN}_qdq_2 ${RUN}_qdq_3 " ]' \
    "podman-compose up -d: $names($(since "$t0") s)" || tail -n 20 "$T/compose.log"
for i in 1 2 3; do
    n=0
    until podman healthcheck run "${RUN}_qdq_$i" >/dev/null 2>&1 || [ $n -ge 40 ]; do sleep 0.25; n=$((n + 1)); done
    podman logs "${RUN}_qdq_$i" >"$T/r$i.log" 2>&1
    check '[ $n -lt 40 ] && grep -q "(1 workers, 1 http threads, max-memory 1610612736)" "$T/r$i.log"' \
        "replica $i healthy, sized by its limits (cpus 1, memory 2g): $(grep -o '[0-9]* workers[^)]*' "$T/r$i.log")"
done
# The spool volume of the compose file (podman-compose 1.0.3 makes the anonymous volume a named
# one, <project>_qdq_<hash>, shared by the replicas; Docker Compose gives each its own).
mnt=$(podman inspect -f '{{range .Mounts}}{{.Destination}}={{.Type}} {{end}}' "${RUN}_qdq_1" 2>&1)
fs=$(podman exec "${RUN}_qdq_1" stat -f -c %T /var/spool/qdq 2>&1)
check 'echo " $mnt" | grep -q " /var/spool/qdq=volume " && [ "$fs" != tmpfs ] &&
    podman exec "${RUN}_qdq_1" sh -c "echo x >/var/spool/qdq/probe && rm /var/spool/qdq/probe"' \
    "read_only replicas spool to a volume: $mnt($fs), writable by the server's user"
LB=http://127.0.0.1:$PN
wait_http "$LB/healthz" 30
check '[ $? -eq 0 ]' "nginx answers on $LB"
python3 tests/deploy/container/formats.py "$LB" "through nginx" >"$T/f2" 2>&1
count "$T/f2" "formats.py through nginx"

NG=${RUN}_nginx_1
# nginx's access log as podman stores it (its k8s-file log), read directly: fast enough to
# watch a load run.
NGLOG=$(podman inspect -f '{{.HostConfig.LogConfig.Path}}' "$NG")
posts() { grep -c '"POST /quantize-dequantize' "$NGLOG"; }
served() { podman logs "${RUN}_qdq_$1" 2>/dev/null | grep -c '"path":"/quantize-dequantize'; }
# load FORMAT COUNT: tests/load/load_curl.sh through nginx in the background, until a fifth
# of it is answered.
load() {
    base=$(posts)
    QDQ_URL=$LB QDQ_LOAD_REQUESTS=$2 QDQ_LOAD_PARALLEL=8 QDQ_LOAD_ELEMENTS=1024 \
        sh tests/load/load_curl.sh "$1" >"$T/load-$1.out" 2>&1 &
    LOAD=$!
    n=0
    while [ $n -lt 1500 ] && [ $(($(posts) - base)) -lt $(($2 / 5)) ] && kill -0 $LOAD 2>/dev/null; do
        sleep 0.02
        n=$((n + 1))
    done
    AT=$(($(posts) - base))
}
REQUESTS=${QDQ_CONTAINER_REQUESTS:-4000}
load raw "$REQUESTS"
podman kill "${RUN}_qdq_1" >/dev/null 2>&1
wait "$LOAD"
rc=$?
cat "$T/load-raw.out"
check '[ $rc -eq 0 ] && grep -q " 0 failed$" "$T/load-raw.out"' \
    "raw: $REQUESTS requests through nginx, replica 1 killed (SIGKILL) after $AT: zero failed"
check '[ "$AT" -lt "$REQUESTS" ]' "the kill came mid-run ($AT of $REQUESTS answered)"
load json $((REQUESTS / 2))
podman stop -t 25 "${RUN}_qdq_2" >/dev/null 2>&1
src=$?
wait "$LOAD"
rc=$?
cat "$T/load-json.out"
check '[ $rc -eq 0 ] && grep -q " 0 failed$" "$T/load-json.out"' \
    "json: $((REQUESTS / 2)) requests, replica 2 stopped (SIGTERM) after $AT: zero failed"
check '[ $src -eq 0 ] && [ "$(podman inspect -f "{{.State.ExitCode}}" "${RUN}_qdq_2")" = 0 ]' \
    "the stopped replica drained and exited 0"
podman logs "$NG" 2>/dev/null | grep '"POST /quantize-dequantize' >"$T/access"
echo "compose run: nginx logged $(wc -l <"$T/access") POSTs, $(grep -c '" 200 ' "$T/access") answered 200," \
    "$(grep -c 'upstream=[^ ]*, ' "$T/access") retried on another replica; served by replica 1 (killed):" \
    "$(served 1), 2 (stopped): $(served 2), 3: $(served 3)"

# 6. Everything made here is removed; nothing was written under /etc.
timeout 120 podman-compose -p "$RUN" -f "$COMPOSE_FILE" down -v -t 2 >"$T/down.log" 2>&1
teardown
left=$( (podman ps -aq --filter "label=$LABEL"; podman ps -aq --filter "label=io.podman.compose.project=$RUN"
    podman network ls -q --filter "label=io.podman.compose.project=$RUN"
    podman image exists "$IMG" && echo "$IMG"
    podman volume ls -q | sort | comm -13 "$T/volumes-before" -) 2>/dev/null | tr '\n' ' ')
check '[ -z "$left" ]' "every container, network, volume and image of this run removed (kept as caches: $BASE, $NGINX_IMG) $left"
etc=$(find /etc/containers /etc/cni -newer "$T/start-marker" 2>/dev/null | tr '\n' ' ')
check '[ -z "$etc" ]' "nothing written under /etc/containers or /etc/cni $etc"
echo "image: $SIZE_MB MB, built in $BUILD_S s; base $BASE_MADE; test_container.sh took $(($(date +%s) - START)) s"
finish
