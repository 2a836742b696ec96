#!/bin/bash
# Soak: a real server under wrk at SOAK_CONNECTIONS connections (default 256) for SOAK_SECONDS
# (default 60), 127.0.0.1 only, a mix of formats and sizes (soak.lua: JSON nested and object
# forms, raw, .npy float64 and bfloat16, KServe v2, gzip bodies, raw answered as JSON, 1 MiB
# raw), after a warm-up of the same load (SOAK_WARMUP seconds, default 45).
#
# Meanwhile a curl verifier sends every request of the mix again and again and compares each
# answer, byte for byte, with the answer the idle server gave before the load; two of them are
# also compared with expected answers checked in (data/*.expected: the README's example and a
# per-channel raw tensor; tests/unit/test_reference.c checks both against the independent
# reference of tests/lib/ref.h).
#
# Prints requests served, failures (wrk's socket and status errors and the verifier's
# mismatches: must be 0), latency percentiles, and the server's RSS, sampled twice a second.
# The load runs without a pause from the warm-up into the run, and the RSS check compares two
# levels under that same load: "after warm-up" is the median of the samples of SOAK_RSS_WINDOW
# seconds (default 20) from 5 s into the run (when wrk reconnects, the server's heaps shrink
# for a moment and grow back), "at the end" the median of the run's last ones; the end must
# be within 10% + SOAK_RSS_SLACK_KB (default 8192) of the start. Medians, not peaks: under
# load the RSS swings by +-10% from one second to the next with how many 1 MiB requests
# happen to be in flight and how glibc's per-thread arenas are fragmented, while a leak moves
# every sample. The arenas reach their working size at 256 connections after 30 to 60 s of
# load (the level climbs a few percent more between the two): hence a 45 s warm-up, with
# which the two medians have stayed within a few percent. Peaks, a timeline, and
# idle values (before the warm-up, after the run: not compared, since the arenas keep whatever
# the last burst left in them) are printed too. Ends with "N passed, N failed, N skipped" (the checks
# below) and exits non-zero on any failure. The server is $SOAK_SERVER (default
# build/qdq-server, built with make when missing).
#
#   bash tests/soak/soak.sh
#   SOAK_SECONDS=600 SOAK_CONNECTIONS=512 bash tests/soak/soak.sh
set -u
cd "$(dirname "$0")/../.." || exit 2

SECONDS_RUN=${SOAK_SECONDS:-60}
CONNS=${SOAK_CONNECTIONS:-256}
WARMUP=${SOAK_WARMUP:-45}
SLACK_KB=${SOAK_RSS_SLACK_KB:-8192}
WINDOW=${SOAK_RSS_WINDOW:-20}
THREADS=${SOAK_THREADS:-2}
SERVER=${SOAK_SERVER:-build/qdq-server}
DATA=$PWD/tests/soak/data

command -v wrk >/dev/null 2>&1 || { echo "soak: wrk is not installed (apt-get install wrk)"; exit 2; }
command -v curl >/dev/null 2>&1 || { echo "soak: curl is not installed"; exit 2; }
if [ ! -x "$SERVER" ]; then
    make -s all >/dev/null || { echo "soak: cannot build the server"; exit 2; }
fi
case "$SECONDS_RUN$CONNS$WARMUP$WINDOW$SLACK_KB" in *[!0-9]*) echo "soak: numbers only"; exit 2 ;; esac
[ "$SECONDS_RUN" -ge 1 ] && [ "$SECONDS_RUN" -le 86400 ] || { echo "soak: SOAK_SECONDS 1..86400"; exit 2; }
[ "$CONNS" -ge 1 ] && [ "$CONNS" -le 10000 ] || { echo "soak: SOAK_CONNECTIONS 1..10000"; exit 2; }
# The first RSS window starts SETTLE s into the run; the two do not overlap.
SETTLE=5
[ "$SECONDS_RUN" -ge $((2 * SETTLE)) ] || SETTLE=0
[ $((SETTLE + 2 * WINDOW)) -le "$SECONDS_RUN" ] || WINDOW=$(((SECONDS_RUN - SETTLE) / 2))
[ "$WINDOW" -ge 1 ] || WINDOW=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qdq-soak-XXXXXX") || exit 2
PID=
VPID=
cleanup() {
    [ -n "$VPID" ] && kill "$VPID" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 3' INT TERM

# 1 MiB of raw float32: the 16 KiB tensor 64 times.
for _ in $(seq 64); do cat "$DATA/ch64x64.f32"; done > "$WORK/big.f32"

# ---- the server ----
MAXCONN=$((CONNS + 64))
[ "$MAXCONN" -lt 1024 ] && MAXCONN=1024
"$SERVER" --listen 127.0.0.1:0 --access-log off --log-level warn --max-connections "$MAXCONN" \
    --max-inflight "$MAXCONN" --max-queue "$MAXCONN" > "$WORK/server.log" 2>&1 &
PID=$!
PORT=
for _ in $(seq 500); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.02
done
if [ -z "$PORT" ]; then
    echo "soak: the server did not start:"; cat "$WORK/server.log"; exit 2
fi
BASE=http://127.0.0.1:$PORT
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$PID/status" 2>/dev/null; }
# Waits (up to 15 s) until the server has no request in flight (wrk leaves some behind when
# it stops), then a second more for the memory of the last ones to be freed.
idle() {
    local n
    for _ in $(seq 150); do
        n=$(curl -s -m 2 "$BASE/metrics" | sed -n 's/^qdq_inflight_requests{protocol="http"} \([0-9]*\)$/\1/p')
        [ "$n" = 1 ] && break  # the /metrics request itself
        sleep 0.1
    done
    sleep 1
}

# ---- the requests of the mix, for the verifier (as soak.lua sends them) ----
Q=/quantize-dequantize
V2=/v2/models/quantize_and_dequantize_v2/infer
# name|path|content-type|extra header|file
CASES="readme|$Q|application/json||$DATA/readme.json
ch|$Q?shape=64,64&num_bits=6&axis=0|application/octet-stream||$DATA/ch64x64.f32
f64npy|$Q?num_bits=8|application/x-npy||$DATA/f64_32x32.npy
json100|$Q|application/json||$DATA/json_10x100.json
kserve|$V2|application/json||$DATA/kserve.json
bf16npy|$Q?dtype=bfloat16&axis=0|application/x-npy||$DATA/bf16_2048.npy
b64f16|$Q|application/json||$DATA/json_b64_f16.json
gzip|$Q?num_bits=4|application/octet-stream|Content-Encoding: gzip|$DATA/raw16k.f32.gz
chjson|$Q?shape=64,64&num_bits=6&axis=0|application/octet-stream|Accept: application/json|$DATA/ch64x64.f32
big|$Q?shape=256,1024&num_bits=8&axis=0|application/octet-stream||$WORK/big.f32"

# post NAME OUT: sends case NAME, answer body to OUT, prints the status.
post() {
    local line path ct extra file
    line=$(printf '%s\n' "$CASES" | grep "^$1|")
    IFS='|' read -r _ path ct extra file <<EOF
$line
EOF
    if [ -n "$extra" ]; then
        curl -s -m 30 -o "$2" -w '%{http_code}' -H "Content-Type: $ct" -H "$extra" \
            --data-binary @"$file" "$BASE$path"
    else
        curl -s -m 30 -o "$2" -w '%{http_code}' -H "Content-Type: $ct" \
            --data-binary @"$file" "$BASE$path"
    fi
}
NAMES=$(printf '%s\n' "$CASES" | cut -d'|' -f1)

# References: the idle server's answers; two also checked against files in the repository.
fail=0
for n in $NAMES; do
    code=$(post "$n" "$WORK/ref.$n")
    if [ "$code" != 200 ]; then
        echo "soak: reference request $n: HTTP $code: $(head -c 300 "$WORK/ref.$n")"; fail=1
    fi
done
cmp -s "$WORK/ref.readme" "$DATA/readme.json.expected" ||
    { echo "soak: the README example's answer differs from data/readme.json.expected"; fail=1; }
cmp -s "$WORK/ref.ch" "$DATA/ch64x64.f32.expected" ||
    { echo "soak: the per-channel raw answer differs from data/ch64x64.f32.expected"; fail=1; }
[ "$fail" -eq 0 ] || exit 1

# The verifier: every case in turn until told to stop (bounded by time and count).
verifier() {
    local deadline=$(( $(date +%s) + SECONDS_RUN + 60 )) ok=0 bad=0 i=0 n code
    while [ ! -e "$WORK/stop" ] && [ "$(date +%s)" -lt "$deadline" ] && [ "$i" -lt 1000000 ]; do
        for n in $NAMES; do
            code=$(post "$n" "$WORK/v.$n")
            if [ "$code" = 200 ] && cmp -s "$WORK/v.$n" "$WORK/ref.$n"; then
                ok=$((ok + 1))
            else
                bad=$((bad + 1))
                [ "$bad" -le 5 ] && echo "soak: verifier: $n: HTTP $code, answer differs" \
                    "($(wc -c < "$WORK/v.$n") bytes; reference $(wc -c < "$WORK/ref.$n"))" >&2
            fi
            i=$((i + 1))
        done
    done
    echo "$ok $bad" > "$WORK/verifier"
}

RSS0=$(rss)
echo "soak: server on $BASE (pid $PID), $CONNS connections, warm-up ${WARMUP}s, run ${SECONDS_RUN}s"
# RSS twice a second from here to the end of the run (bounded): "ms KiB" lines.
( for _ in $(seq $(( (WARMUP + SECONDS_RUN + 60) * 2 ))); do
      [ -e "$WORK/stop" ] && break
      r=$(rss); [ -n "$r" ] && echo "$(( $(date +%s%N) / 1000000 )) $r"
      sleep 0.5
  done > "$WORK/rss.samples" ) &
SPID=$!
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Over the samples taken between times $1 and $2 (ms): "median peak count".
rss_level() {
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { print $2 }' "$WORK/rss.samples" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)], v[NR], NR; else print 0, 0, 0 }'
}
export SOAK_DATA="$DATA" SOAK_WORK="$WORK"
T_WARM=$(ms)
if [ "$WARMUP" -gt 0 ]; then
    wrk -t "$THREADS" -c "$CONNS" -d "${WARMUP}s" --timeout 30s -s tests/soak/soak.lua "$BASE" \
        > "$WORK/warmup.out" 2>&1
    WARM_LINE=$(grep '^SOAK_WRK' "$WORK/warmup.out")
    [ -n "$WARM_LINE" ] || { echo "soak: wrk (warm-up) failed:"; cat "$WORK/warmup.out"; exit 1; }
    echo "soak: warm-up: $WARM_LINE"
fi
# Straight on (no pause: the arenas keep their working size): the run, with the verifier.
verifier &
VPID=$!
T_RUN=$(ms)
wrk -t "$THREADS" -c "$CONNS" -d "${SECONDS_RUN}s" --timeout 30s -s tests/soak/soak.lua "$BASE" \
    > "$WORK/run.out" 2>&1
T_END=$(ms)
touch "$WORK/stop"
wait "$SPID" 2>/dev/null
wait "$VPID"
VPID=
idle
RSS2_IDLE=$(rss)
# Under load: WINDOW seconds from SETTLE s into the run, and the run's last WINDOW seconds.
read -r RSS1 PEAK1 N1 <<EOF
$(rss_level $((T_RUN + SETTLE * 1000)) $((T_RUN + (SETTLE + WINDOW) * 1000)))
EOF
read -r RSS2 PEAK2 N2 <<EOF
$(rss_level $((T_END - WINDOW * 1000)) "$T_END")
EOF
# Every 5 s from the start of the warm-up; "|" where the run begins.
TIMELINE=$(awk -v a="$T_WARM" -v r="$T_RUN" -v e="$T_END" 'BEGIN { n = 0 } $1 >= a && $1 <= e {
    if (!m && $1 >= r) { printf "| "; m = 1 }
    if ($1 >= a + 5000 * n) { printf "%s ", $2; n++ } }' "$WORK/rss.samples")
LINE=$(grep '^SOAK_WRK' "$WORK/run.out")
[ -n "$LINE" ] || { echo "soak: wrk failed:"; cat "$WORK/run.out"; exit 1; }
val() { printf '%s\n' "$LINE" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
read -r VOK VBAD < "$WORK/verifier" || { VOK=0; VBAD=1; }
WREQ=$(val requests)
WERR=$(val errors)
WARMERR=0
[ -n "${WARM_LINE:-}" ] && WARMERR=$(printf '%s\n' "$WARM_LINE" | tr ' ' '\n' | sed -n 's/^errors=//p')

ALIVE=yes
kill -0 "$PID" 2>/dev/null || ALIVE=no
kill -TERM "$PID" 2>/dev/null
EXIT=
for _ in $(seq 600); do
    if ! kill -0 "$PID" 2>/dev/null; then wait "$PID"; EXIT=$?; break; fi
    sleep 0.05
done
PID=

LIMIT=$(( RSS1 + RSS1 / 10 + SLACK_KB ))
FAILS=$(( WERR + WARMERR + VBAD ))
echo "soak: requests served: $((WREQ + VOK + VBAD)) (wrk $WREQ at $(val rps)/s, verifier $((VOK + VBAD)) compared byte for byte)"
echo "soak: failures: $FAILS (wrk errors $WERR: connect $(val connect) read $(val read) write $(val write) timeout $(val timeout) non-2xx $(val status); warm-up errors $WARMERR; verifier mismatches $VBAD)"
echo "soak: latency ms: p50 $(val p50_ms)  p90 $(val p90_ms)  p99 $(val p99_ms)  p99.9 $(val p999_ms)  max $(val max_ms)"
echo "soak: server RSS KiB under load (median of ${WINDOW} s of samples): after warm-up $RSS1, at the end $RSS2 ($(awk -v a="$RSS1" -v b="$RSS2" 'BEGIN { printf "%+.1f%%", a ? (b - a) * 100 / a : 0 }'); limit $LIMIT: +10% + $SLACK_KB KiB); peaks $PEAK1 and $PEAK2 ($N1 and $N2 samples)"
echo "soak: server RSS KiB idle: before warm-up $RSS0, after the run $RSS2_IDLE"
echo "soak: server RSS KiB every 5 s from the warm-up to the end: $TIMELINE"
echo "soak: server alive at the end: $ALIVE; exit status after SIGTERM: ${EXIT:-timeout}"
pass=0 fail=0
check() { # STATUS MESSAGE: counts a check (0: passed)
    if [ "$1" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "soak: FAILED: $2"; fi
}
[ "$FAILS" -eq 0 ]; check $? "$FAILS failures"
[ "$VOK" -gt 0 ]; check $? "the verifier compared nothing"
[ "$N1" -gt 0 ] && [ "$N2" -gt 0 ] && [ "$RSS2" -le "$LIMIT" ]; check $? "RSS grew from $RSS1 to $RSS2 KiB"
[ "$ALIVE" = yes ]; check $? "the server died"
[ "${EXIT:-1}" = 0 ]; check $? "exit status ${EXIT:-timeout} after SIGTERM"
[ "${EXIT:-1}" = 0 ] || tail -n 20 "$WORK/server.log"
[ "$fail" -eq 0 ] && echo "soak: ok"
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
