#!/bin/bash
# SIGTERM during a load run (docs/api.md, "Graceful shutdown"): readiness turns 503 at once;
# for --shutdown-grace (SHUTDOWN_GRACE, default 2 s) the server is a lame duck: it still
# accepts connections and serves every request, each answer with Connection: close; then the
# listener closes and the requests in flight finish; the process exits 0 within the drain
# timeout.
#
# SHUTDOWN_CLIENTS (default 16) curl loops post an 8 MiB raw tensor (a third of them with the
# upload throttled to 16 MiB/s, so that requests are mid-upload, mid-compute and mid-download
# when the signal comes), a new connection each, and log when each began and what came back.
# After SHUTDOWN_LOAD_SECONDS (default 3) the server gets SIGTERM; then, each step waiting for
# an event (the server's answers and its log), not for a time:
#   - every request a client began before the signal got 200 and the bytes of the idle
#     server's answer (whether the server had read it yet or not); at least one was in flight;
#   - every request begun after it got 200 and the bytes, or was refused (curl could not
#     connect) after the listener closed, by the server's log: nothing is reset or answered
#     otherwise;
#   - /readyz answers 503 on new connections and on keep-alive connections opened before the
#     signal;
#   - a new connection during the grace (right after /readyz turned 503, the listener still
#     open by the log) is served with Connection: close; one after the log says the listener
#     closed is refused; the listener closed no earlier than the grace;
#   - the server exits 0, after the grace and within --drain-timeout (SHUTDOWN_DRAIN, 20 s).
# Ends with "N passed, N failed, N skipped". Server: $SOAK_SERVER (default build/qdq-server).
# 127.0.0.1 only; bounded in time.
set -u
cd "$(dirname "$0")/../.." || exit 2

CLIENTS=${SHUTDOWN_CLIENTS:-16}
LOAD_S=${SHUTDOWN_LOAD_SECONDS:-3}
DRAIN=${SHUTDOWN_DRAIN:-20}
GRACE=${SHUTDOWN_GRACE:-2}
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

"$SERVER" --listen 127.0.0.1:0 --access-log off --log-level info --workers 2 \
    --drain-timeout "$DRAIN" --shutdown-grace "$GRACE" > "$WORK/server.log" 2>&1 &
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
# When the process ends (noted within 20 ms; bounded).
( for _ in $(seq $(( (DRAIN + 10) * 50 ))); do
      kill -0 "$PID" 2>/dev/null || { now_ms > "$WORK/exit_ms"; break; }
      sleep 0.02
  done ) &
# What follows waits for events, not for times, so that a slow machine cannot trip it: the
# server is draining once /readyz answers 503 (asked on new connections, bounded: 10 s).
ready_event=
for _ in $(seq 500); do
    ready_event=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$BASE/readyz")
    [ "$ready_event" = 200 ] || break
    sleep 0.02
done
# A new connection now, within the grace, is served (with Connection: close); the log tells
# whether the listener was still open when the answer came.
during=$(curl -s -m 30 -D "$WORK/during.h" -o /dev/null -w '%{http_code}' "$BASE/healthz")
during_close=no
grep -qi '^Connection: close' "$WORK/during.h" 2>/dev/null && during_close=yes
grace_open=yes
grep -q 'listener closed' "$WORK/server.log" && grace_open=no
T_DURING=$(( $(now_ms) - T ))
after_ready=""
for f in $(seq 3 $((2 + KEPT))); do
    s=$(ready_on "$f")
    after_ready="$after_ready${s:-closed} "
    eval "exec $f<&-"
done
# Once the server says the listener is closed (bounded), a new connection is refused.
for _ in $(seq $(( (GRACE + 30) * 50 ))); do
    grep -q 'listener closed' "$WORK/server.log" && break
    sleep 0.02
done
late=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$BASE/healthz")
T_LATE=$(( $(now_ms) - T ))
# "listener closed X s after the signal": X in ms (-1 when the line is missing).
CLOSE_MS=$(sed -n 's/.*listener closed \([0-9]*\)\.\([0-9]\) s after the signal.*/\1\200/p' "$WORK/server.log" | head -n 1)
if [ -n "$CLOSE_MS" ]; then CLOSE_MS=$((10#$CLOSE_MS)); else CLOSE_MS=-1; fi

EXIT=
for _ in $(seq $(( (DRAIN + 10) * 20 ))); do
    if ! kill -0 "$PID" 2>/dev/null; then wait "$PID"; EXIT=$?; break; fi
    sleep 0.05
done
T_EXIT=$(now_ms)
for _ in $(seq 50); do [ -s "$WORK/exit_ms" ] && break; sleep 0.02; done
[ -s "$WORK/exit_ms" ] && T_EXIT=$(cat "$WORK/exit_ms")
LEFT=$PID
[ -n "$EXIT" ] && PID=
touch "$WORK/stop"
for _ in $(seq 600); do [ -z "$(jobs -rp)" ] && break; sleep 0.05; done

# ---- the verdict ----
# Client lines: request_id start_ms pretransfer_s end_ms http_code same(1/0) curl_exit.
# A request begun before the signal must be answered 200 right. One begun after it must be
# answered 200 right, or refused (curl could not connect) once the listener was closed: the
# server's log says when that was (CLOSE_MS after it took the signal, which is after T), so a
# refusal that ended before T + CLOSE_MS (less the log's 0.1 s rounding) came while it was
# open. Anything else (a reset, a 503, a wrong answer) is wrong.
before=0 before_ok=0 inflight=0 after=0 after_ok=0 refused=0 refused_open=0 bad=0
for f in "$WORK"/log.*; do
    [ -e "$f" ] || continue
    while read -r id t0 tp t1 code same rc; do
        right=no
        [ "$code" = 200 ] && [ "$same" = 1 ] && right=yes
        if [ "$code" = 200 ] && [ "$same" != 1 ]; then
            bad=$((bad + 1)); echo "shutdown: $id: a 200 with a wrong answer"
        fi
        if [ "$t0" -lt "$T" ]; then
            before=$((before + 1))
            [ "$t1" -gt "$T" ] && inflight=$((inflight + 1))
            if [ "$right" = yes ]; then before_ok=$((before_ok + 1)); else
                bad=$((bad + 1))
                echo "shutdown: $id: begun $((t0 - T)) ms before the signal, then HTTP $code (curl exit $rc, ended $((t1 - T)) ms after the signal)"
            fi
        else
            after=$((after + 1))
            if [ "$right" = yes ]; then after_ok=$((after_ok + 1));
            elif [ "$code" = 000 ] && [ "$rc" = 7 ]; then
                refused=$((refused + 1))
                if [ "$CLOSE_MS" -lt 0 ] || [ "$t1" -lt $((T + CLOSE_MS - 100)) ]; then
                    refused_open=$((refused_open + 1)); bad=$((bad + 1))
                    echo "shutdown: $id: refused, ended $((t1 - T)) ms after the signal, before the listener closed (${CLOSE_MS} ms)"
                fi
            else
                bad=$((bad + 1))
                echo "shutdown: $id: begun $((t0 - T)) ms after the signal (grace ${GRACE} s), then HTTP $code (curl exit $rc): neither served nor refused"
            fi
        fi
    done < "$f"
done

n503=$(printf '%s' "$after_ready" | tr ' ' '\n' | grep -c '^503$')
echo "shutdown: $before requests begun before the signal ($inflight still in flight at it): $before_ok answered 200 with the right bytes"
echo "shutdown: $after begun after it: $after_ok answered 200 with the right bytes, $refused refused ($refused_open of them while the listener was open)"
echo "shutdown: /readyz on $KEPT kept connections: before the signal: ${before_ready}; after it: ${after_ready}; on a new connection after it: $ready_event"
echo "shutdown: a new connection $T_DURING ms after the signal: ${during} (Connection: close: $during_close; listener still open after it: $grace_open); one $T_LATE ms after it, once the listener was closed: ${late}"
echo "shutdown: exit status ${EXIT:-none (still running)} $((T_EXIT - T)) ms after SIGTERM (--shutdown-grace $GRACE, --drain-timeout $DRAIN)"
grep -o 'listener closed.*' "$WORK/server.log" | sed 's/^/shutdown: server: /'
pass=0 fail=0
check() { # STATUS MESSAGE: counts a check (0: passed)
    if [ "$1" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "shutdown: FAILED: $2"; fi
}
[ "$inflight" -gt 0 ]; check $? "no request was in flight at the signal"
[ "$before" -gt 0 ] && [ "$before_ok" = "$before" ]; check $? "$((before - before_ok)) of $before requests begun before the signal were not answered 200 right"
[ "$bad" -eq 0 ]; check $? "$bad requests went wrong"
[ "$(printf '%s' "$before_ready" | tr ' ' '\n' | grep -c '^200$')" = "$KEPT" ]
check $? "/readyz before the signal: $before_ready"
[ "$ready_event" = 503 ]; check $? "/readyz on a new connection after the signal: $ready_event (want 503)"
[ "$n503" = "$KEPT" ]; check $? "/readyz after the signal: $after_ready(want 503 on each)"
[ "$during" = 200 ] && [ "$during_close" = yes ] && [ "$grace_open" = yes ]
check $? "a new connection during the grace: HTTP $during, Connection: close $during_close, listener still open after it: $grace_open"
[ "$late" = 000 ]; check $? "a new connection once the listener was closed: HTTP $late (want refused)"
[ "$CLOSE_MS" -ge $((GRACE * 1000)) ]; check $? "the listener closed $CLOSE_MS ms after the signal (want after the ${GRACE} s grace)"
[ "${EXIT:-x}" = 0 ]; check $? "exit status ${EXIT:-none}"
[ "${EXIT:-x}" = 0 ] || tail -n 20 "$WORK/server.log"
# Within the drain timeout: the server enforces it itself; 5 s more for a busy machine's exit.
[ $((T_EXIT - T)) -le $((DRAIN * 1000 + 5000)) ] && [ $((T_EXIT - T)) -ge $((GRACE * 1000)) ]
check $? "exit $((T_EXIT - T)) ms after the signal (want after the ${GRACE} s grace, within ${DRAIN} s)"
[ "$fail" -eq 0 ] && echo "shutdown: ok"
[ -z "$PID" ] || kill -9 "$LEFT" 2>/dev/null
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
