#!/bin/bash
# SIGTERM during a load run (api.md 5): readiness turns 503, the listener stops accepting,
# every request accepted before the signal completes with 200 and the right answer, and the
# process exits 0 within the drain timeout.
#
# SHUTDOWN_CLIENTS (default 16) curl loops post an 8 MiB raw tensor (a third of them with the
# upload throttled to 16 MiB/s, so that requests are mid-upload, mid-compute and mid-download
# when the signal comes), each with its own X-Request-Id, and log what came back. The server
# writes its access log (JSON lines: completion time, duration, status, request id), so that
# "accepted before the signal" means what the server did: it had begun the request. After
# SHUTDOWN_LOAD_SECONDS (default 3) the server gets SIGTERM; then:
#   - on keep-alive connections opened before the signal, /readyz answers 503 (a connection the
#     server closes instead is counted; at least one must answer, and none with 200);
#   - every request the server began before the signal got 200 and the bytes of the idle
#     server's answer; at least one was still in flight at the signal;
#   - no request begun after the signal got 200; a new connection is refused (or answered 503);
#   - the server exits 0 within --drain-timeout (SHUTDOWN_DRAIN, default 20 s).
# Requests a client had sent before the signal that the server had not yet begun (still in the
# kernel's listen backlog when the listener closed: reset; or headers not yet read by a busy
# libmicrohttpd thread: 503) are counted and printed, not failed: the server never saw them.
# Server: $SOAK_SERVER (default build/qdq-server). 127.0.0.1 only; bounded in time.
set -u
cd "$(dirname "$0")/../.." || exit 2

CLIENTS=${SHUTDOWN_CLIENTS:-16}
LOAD_S=${SHUTDOWN_LOAD_SECONDS:-3}
DRAIN=${SHUTDOWN_DRAIN:-20}
SERVER=${SOAK_SERVER:-build/qdq-server}
KEPT=4 # keep-alive connections that ask /readyz after the signal

command -v curl >/dev/null 2>&1 || { echo "shutdown: curl is not installed"; exit 2; }
if [ ! -x "$SERVER" ]; then
    make -s all >/dev/null || { echo "shutdown: cannot build the server"; exit 2; }
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qdq-shutdown-XXXXXX") || exit 2
PID=
cleanup() {
    touch "$WORK/stop" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 3' INT TERM
trap '' PIPE # a write to a connection the server closed fails; it does not end the script
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# 8 MiB of raw float32: the soak's 16 KiB tensor 512 times.
for _ in $(seq 512); do cat tests/soak/data/ch64x64.f32; done > "$WORK/in.f32"

"$SERVER" --listen 127.0.0.1:0 --access-log on --log-format json --log-level warn --workers 2 \
    --drain-timeout "$DRAIN" > "$WORK/server.log" 2>&1 &
PID=$!
PORT=
for _ in $(seq 500); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.02
done
[ -n "$PORT" ] || { echo "shutdown: the server did not start:"; cat "$WORK/server.log"; exit 2; }
BASE=http://127.0.0.1:$PORT
URL="$BASE/quantize-dequantize?shape=2048,1024&num_bits=8&axis=0"

# The idle server's answer is the reference.
code=$(curl -s -m 30 -o "$WORK/ref.out" -w '%{http_code}' -H 'Content-Type: application/octet-stream' \
       --data-binary @"$WORK/in.f32" "$URL")
[ "$code" = 200 ] || { echo "shutdown: reference request: HTTP $code"; exit 1; }

# client N: requests until told to stop (at most 400, at most 60 s); one line per request:
#   request_id start_ms pretransfer_s end_ms http_code same(1/0) curl_exit
client() {
    local id=$1 k=0 t0 out rc same code tp deadline=$(( $(now_ms) + 60000 ))
    local rate=()
    [ $((id % 3)) = 0 ] && rate=(--limit-rate 16M)
    for _ in $(seq 400); do
        [ -e "$WORK/stop" ] && break
        [ "$(now_ms)" -lt "$deadline" ] || break
        k=$((k + 1))
        t0=$(now_ms)
        out=$(curl -s -m 60 "${rate[@]}" -o "$WORK/c$id.out" -w '%{time_pretransfer} %{http_code}' \
              -H "X-Request-Id: c$id-$k" -H 'Content-Type: application/octet-stream' \
              --data-binary @"$WORK/in.f32" "$URL")
        rc=$?
        same=0
        cmp -s "$WORK/c$id.out" "$WORK/ref.out" && same=1
        read -r tp code <<EOF
$out
EOF
        echo "c$id-$k $t0 ${tp:-0} $(now_ms) ${code:-000} $same $rc" >> "$WORK/log.$id"
        rm -f "$WORK/c$id.out"
        [ "${code:-000}" = 200 ] || break # after a refusal the listener is gone: stop
    done
}
for i in $(seq "$CLIENTS"); do client "$i" & done

# Keep-alive connections opened (and used once) before the signal, on fds 3 .. 3+KEPT-1.
ready_on() { # fd -> the status line's code, or "" when the connection is gone
    local first=
    printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$1" 2>/dev/null &&
        IFS= read -r -t 5 first <&"$1"
    printf '%s' "$first" | cut -d' ' -f2
    # the rest of the answer: headers, then a short body
    while IFS= read -r -t 1 line <&"$1"; do [ "$line" = $'\r' ] && break; done
    read -r -t 0.3 -N 200 _ <&"$1"
}
before_ready=""
for f in $(seq 3 $((2 + KEPT))); do
    eval "exec $f<>/dev/tcp/127.0.0.1/$PORT" || { echo "shutdown: cannot connect"; exit 1; }
    before_ready="$before_ready$(ready_on "$f") "
done

sleep "$LOAD_S"
T=$(now_ms)
kill -TERM "$PID"
sleep 0.2
after_ready=""
for f in $(seq 3 $((2 + KEPT))); do
    s=$(ready_on "$f")
    after_ready="$after_ready${s:-closed} "
    eval "exec $f<&-"
done
# A new connection after the signal: refused (the listener is closed) or 503.
late=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$BASE/readyz")

EXIT=
for _ in $(seq $(( (DRAIN + 10) * 20 ))); do
    if ! kill -0 "$PID" 2>/dev/null; then wait "$PID"; EXIT=$?; break; fi
    sleep 0.05
done
T_EXIT=$(now_ms)
LEFT=$PID
[ -n "$EXIT" ] && PID=
touch "$WORK/stop"
for _ in $(seq 600); do [ -z "$(jobs -rp)" ] && break; sleep 0.05; done

# ---- the verdict ----
# The server's view: request id -> "start_ms status" (start = completion time - duration).
grep '"request_id":"c[0-9]*-[0-9]*"' "$WORK/server.log" | while IFS= read -r line; do
    id=$(printf '%s' "$line" | sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
    ts=$(printf '%s' "$line" | sed -n 's/.*"time":"\([^"]*\)".*/\1/p')
    dur=$(printf '%s' "$line" | sed -n 's/.*"duration_ms":\([0-9.]*\).*/\1/p')
    st=$(printf '%s' "$line" | sed -n 's/.*"status":\([0-9]*\).*/\1/p')
    end=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    echo "$id $(awk -v e="$end" -v d="$dur" 'BEGIN { printf "%.0f", e - d }') $st"
done > "$WORK/server.view"

began=0 began_ok=0 inflight=0 after=0 after_ok=0 unseen=0 unseen_sent=0 late503=0 bad=0
for f in "$WORK"/log.*; do
    [ -e "$f" ] || continue
    while read -r id t0 tp t1 code same rc; do
        sent=$(awk -v a="$t0" -v b="$tp" 'BEGIN { printf "%.0f", a + b * 1000 }')
        if [ "$code" = 200 ] && [ "$same" != 1 ]; then
            bad=$((bad + 1)); echo "shutdown: $id: a 200 with a wrong answer"
        fi
        view=$(grep "^$id " "$WORK/server.view")
        if [ -z "$view" ]; then
            unseen=$((unseen + 1))
            if [ "$tp" != "0.000000" ] && [ "$sent" -lt "$T" ]; then
                unseen_sent=$((unseen_sent + 1))
                echo "shutdown: note: $id connected $((sent - T)) ms before the signal but the server never began it (curl exit $rc, HTTP $code: reset in the listen backlog)"
            fi
            continue
        fi
        read -r _ sstart sstatus <<EOF
$view
EOF
        if [ "$sstart" -lt "$T" ]; then
            began=$((began + 1))
            [ "$t1" -gt "$T" ] && inflight=$((inflight + 1))
            if [ "$code" = 200 ] && [ "$same" = 1 ] && [ "$sstatus" = 200 ]; then
                began_ok=$((began_ok + 1))
            else
                bad=$((bad + 1))
                echo "shutdown: $id: begun by the server $((sstart - T)) ms before the signal, then HTTP $code (server $sstatus, curl exit $rc, ended $((t1 - T)) ms after the signal)"
            fi
        else
            after=$((after + 1))
            if [ "$code" = 200 ]; then
                # draining begins when the signal is handled, a moment after it is sent
                after_ok=$((after_ok + 1))
                [ "$sstart" -gt $((T + 100)) ] && { bad=$((bad + 1)); echo "shutdown: $id: begun $((sstart - T)) ms after the signal and served"; }
            elif [ "$tp" != "0.000000" ] && [ "$sent" -lt "$T" ]; then
                late503=$((late503 + 1))
                echo "shutdown: note: $id was sent $((sent - T)) ms before the signal, but the server read its head $((sstart - T)) ms after it: HTTP $code"
            fi
        fi
    done < "$f"
done

n503=$(printf '%s' "$after_ready" | tr ' ' '\n' | grep -c '^503$')
n200=$(printf '%s' "$after_ready" | tr ' ' '\n' | grep -c '^200$')
echo "shutdown: $began requests begun by the server before the signal ($inflight still in flight at it): $began_ok answered 200 with the right bytes"
echo "shutdown: $after begun by the server after it ($after_ok served in the moment before draining began); $unseen never reached the server ($unseen_sent of them connected before the signal); $late503 sent before it but begun after it"
echo "shutdown: /readyz on $KEPT kept connections: before the signal: ${before_ready}; after it: ${after_ready}; a new connection after it: ${late}"
echo "shutdown: exit status ${EXIT:-none (still running)} $((T_EXIT - T)) ms after SIGTERM (--drain-timeout $DRAIN)"
pass=0 fail=0
check() { # STATUS MESSAGE: counts a check (0: passed)
    if [ "$1" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "shutdown: FAILED: $2"; fi
}
[ "$inflight" -gt 0 ]; check $? "no request was in flight at the signal"
[ "$bad" -eq 0 ]; check $? "$bad requests went wrong"
[ "$(printf '%s' "$before_ready" | tr ' ' '\n' | grep -c '^200$')" = "$KEPT" ]
check $? "/readyz before the signal: $before_ready"
[ "$n503" -ge 1 ] && [ "$n200" -eq 0 ]; check $? "/readyz after the signal: $after_ready(want 503)"
[ "$late" != 200 ]; check $? "a new connection after the signal was served"
[ "${EXIT:-x}" = 0 ]; check $? "exit status ${EXIT:-none}"
[ "${EXIT:-x}" = 0 ] || grep -v '"request_id"' "$WORK/server.log" | tail -n 20
[ $((T_EXIT - T)) -le $((DRAIN * 1000 + 1000)) ]; check $? "exit took $((T_EXIT - T)) ms"
[ "$fail" -eq 0 ] && echo "shutdown: ok"
[ -z "$PID" ] || kill -9 "$LEFT" 2>/dev/null
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
