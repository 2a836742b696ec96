#!/bin/sh
# HTTP benchmarks of qdq-server against its floors, measured in the same run:
#
#   1. curl   64 MiB float32 raw POST: median time vs. the echo server    (target ratio <= 1.25)
#   2. wrk    1024-element float32 raw POSTs, 2 threads, 64 connections: requests/s vs. the
#             echo server, p50/p99 latency                              (target ratio >= 0.70)
#   3. floor  the same 4 KiB POSTs against libmicrohttpd's own floor (bench/mhd_echo.c: a bare
#             libmicrohttpd server answering each POST with its body), qdq-server with its
#             access log on and written to a file; alternating runs, medians (target >= 0.85)
#   4. json   1M-element nested JSON end to end vs. an in-process cJSON round trip
#             (build/bench/bench_cjson, which starts its own server)     (target speedup >= 5)
#   5. rss    peak RSS of a fresh server over one 256 MiB raw float32 request, above its idle
#             RSS, as a multiple of the body size                       (target <= 1.5)
#
# The echo server (bench/echo_server.c) receives a body and sends the same bytes back: the cost
# of moving the bytes over the loopback, the floor under any server that must do that.
#
# usage: sh bench/http_bench.sh [BUILD_DIR]            (default: build)
# environment:
#   BENCH_ONLY     space-separated subset of "curl wrk floor json rss" (default: all five)
#   FLOOR_RUNS     alternating wrk runs per server in the floor section (default 3)
#   BENCH_RUNS     timed curl requests per server (default 5; one untimed warm-up before)
#   WRK_SECONDS    length of each wrk run (default 10)
#   RSS_RUNS       fresh servers measured for peak RSS (default 3)
#   BENCH_STRICT   1: exit 1 when a target is missed (default: report only)
#   QDQ_ARGS       extra qdq-server flags for the curl, wrk and rss benchmarks (word-split),
#                  e.g. "--max-header-bytes 64K --http-threads 4"
# Only 127.0.0.1 is used. Exits 0 (after "SKIP") when the server binary is missing; exits 1 when
# a server answers wrongly (or, with BENCH_STRICT=1, when a target is missed).
set -u

cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
SERVER="$B/qdq-server"
ECHO_BIN="$B/bench/echo_server"
ONLY=${BENCH_ONLY:-curl wrk floor json rss}
FLOOR_RUNS=${FLOOR_RUNS:-3}
MHD_BIN="$B/bench/mhd_echo"
RUNS=${BENCH_RUNS:-5}
WRK_SECONDS=${WRK_SECONDS:-10}
RSS_RUNS=${RSS_RUNS:-3}
STRICT=${BENCH_STRICT:-0}
QDQ_ARGS=${QDQ_ARGS:-}
CORES=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)

ROUTE=/quantize-dequantize
CT='Content-Type: application/octet-stream'
TMP=
PIDS=
FAILED=0
MISSED=0
SUMMARY=

say() { printf '%s\n' "$*"; }
has() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# Stops one process started here: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    i=0
    while alive "$1" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    alive "$1" && kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    np=
    for p in $PIDS; do [ "$p" = "$1" ] || np="$np $p"; done
    PIDS=$np
}

# Whether a process started here still runs (a zombie does not: kill -0 would say it does).
alive() { st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }

# Called before stopping the qdq-server of a section: a server that is gone already crashed or
# was killed from outside. Reports its exit status and log, and marks the run failed.
check_qdq() {
    [ -n "${QDQ_PID:-}" ] || return 0
    alive "$QDQ_PID" && return 0
    wait "$QDQ_PID" 2>/dev/null
    st=$?
    if [ $st -gt 128 ]; then how="killed by signal $((st - 128))"; else how="exit status $st"; fi
    say "error: qdq-server (pid $QDQ_PID) is gone before the end of the benchmark: $how; its log:"
    tail -n 20 "$QDQ_LOG"
    add_summary "  (qdq-server died during the run above: $how)"
    FAILED=1
    np=
    for p in $PIDS; do [ "$p" = "$QDQ_PID" ] || np="$np $p"; done
    PIDS=$np
    QDQ_PID=
}

cleanup() {
    for p in $PIDS; do stop_pid "$p"; done
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts qdq-server on a free port (--listen 127.0.0.1:0; the port is read from its stderr).
# Sets QDQ_PID and QDQ_PORT. Extra arguments go to the server.
start_qdq() {
    log="$TMP/qdq.$$.$(date +%s%N).err"
    : >"$log"
    "$SERVER" --listen 127.0.0.1:0 --access-log off "$@" >"${QDQ_STDOUT:-/dev/stdout}" 2>"$log" &
    QDQ_PID=$!
    QDQ_LOG=$log
    PIDS="$PIDS $QDQ_PID"
    QDQ_PORT=
    i=0
    while [ $i -lt 100 ]; do
        QDQ_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
        [ -n "$QDQ_PORT" ] && return 0
        alive "$QDQ_PID" || break
        sleep 0.1
        i=$((i + 1))
    done
    say "error: qdq-server did not start:"
    cat "$log"
    return 1
}

# Starts the echo server on a free port, trying a few. Sets ECHO_PID and ECHO_PORT.
start_echo() {
    a=0
    while [ $a -lt 20 ]; do
        ECHO_PORT=$(awk -v s="$$$a" 'BEGIN { srand(s + systime()); print 20000 + int(rand() * 40000) }')
        "$ECHO_BIN" "$ECHO_PORT" 2>/dev/null &
        ECHO_PID=$!
        i=0
        while [ $i -lt 20 ] && alive "$ECHO_PID"; do
            if curl -s -o /dev/null --max-time 2 --data-binary x "http://127.0.0.1:$ECHO_PORT/" &&
               alive "$ECHO_PID"; then
                PIDS="$PIDS $ECHO_PID"
                return 0
            fi
            sleep 0.05
            i=$((i + 1))
        done
        kill -KILL "$ECHO_PID" 2>/dev/null
        wait "$ECHO_PID" 2>/dev/null
        a=$((a + 1))
    done
    say "error: the echo server did not start"
    return 1
}

# Writes COUNT deterministic float32 values (|x| < 4, finite; a 1 MiB block repeated) to FILE.
gen_f32() {
    perl -e '
        my ($n, $file) = @ARGV;
        my $block = $n < 262144 ? $n : 262144;
        my ($x, @v) = (2463534242);
        for (1 .. $block) {
            $x ^= ($x << 13) & 0xffffffff; $x ^= $x >> 17; $x ^= ($x << 5) & 0xffffffff;
            push @v, ($x / 4294967296.0) * 7.5 - 3.7;
        }
        my $bytes = pack("f<*", @v);
        open(my $f, ">:raw", $file) or die "$file: $!";
        my $left = $n;
        while ($left > 0) {
            my $k = $left < $block ? $left : $block;
            print $f substr($bytes, 0, 4 * $k);
            $left -= $k;
        }
        close($f) or die "$file: $!";
    ' "$1" "$2"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minmax() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
# verdict VALUE OP LIMIT: prints PASS or MISS (runs in a subshell: see count_miss)
verdict() {
    if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { exit !((op == "<=") ? v <= l : v >= l) }'; then
        echo PASS
    else
        echo MISS
    fi
}
count_miss() { [ "$1" = MISS ] && MISSED=$((MISSED + 1)); return 0; }
add_summary() { SUMMARY="$SUMMARY$1
"; }

# One POST of FILE to URL; prints time_total. Fails unless 200 with EXPECT_BYTES back.
post_time() {
    out=$(curl -s -o /dev/null --max-time 120 -w '%{http_code} %{size_download} %{time_total}' \
        --data-binary @"$2" -H "$CT" "$1") || { say "error: curl failed for $1" >&2; return 1; }
    # shellcheck disable=SC2086 # three numbers, split on purpose
    set -- $out "$3"
    if [ "$1" != 200 ] || [ "$2" != "$4" ]; then
        say "error: status $1 with $2 bytes (expected 200 with $4)" >&2
        return 1
    fi
    echo "$3"
}

# Server CPU time (user + system) in clock ticks, and ticks -> microseconds per request.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
us_per() { awk -v t="$1" -v n="$2" -v k="$TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / k / n; else print "nan" }'; }

# N POSTs of FILE to URL on one connection (curl --next); prints the times of transfers 2..N.
# Fails unless every answer is 200 with EXPECT_BYTES and the connection was reused.
post_series() {
    url=$1 file=$2 want=$3 n=$4
    set --
    i=0
    while [ $i -lt "$n" ]; do
        [ $i -gt 0 ] && set -- "$@" --next
        set -- "$@" -s -o /dev/null --data-binary @"$file" -H "$CT" \
            -w '%{http_code} %{size_download} %{num_connects} %{time_total}\n' "$url"
        i=$((i + 1))
    done
    out=$(curl --max-time 300 "$@") || { say "error: curl failed for $url" >&2; return 1; }
    printf '%s\n' "$out" | awk -v want="$want" -v n="$n" '
        $1 != 200 || $2 != want || (NR > 1 && $3 != 0) { bad = 1 }
        NR > 1 { print $4 }
        END { if (bad || NR != n) { print "error: keep-alive series failed" > "/dev/stderr"; exit 1 } }'
}

# field LINE NAME: the value of NAME=VALUE in a space-separated line; nth N LINE: Nth word.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
nth() { printf '%s\n' "$2" | cut -d' ' -f"$1"; }

# wrk_one URL PID NAME: one wrk run (2 threads, 64 connections); prints
# "req/s p50_us p99_us socket_errors status_errors server_cpu_us_per_request", or nothing.
wrk_one() {
    c0=$(cpu_ticks "$2")
    WRK_BODY_FILE="$TMP/body4k.f32" timeout $((WRK_SECONDS + 30)) \
        wrk -t2 -c64 -d"${WRK_SECONDS}s" --timeout 5s -s bench/wrk_raw.lua "$1" >"$TMP/wrk_$3" 2>&1
    c1=$(cpu_ticks "$2")
    l=$(grep '^WRK_RESULT' "$TMP/wrk_$3") || return 0
    echo "$(field "$l" rps) $(field "$l" p50_us) $(field "$l" p99_us) $(field "$l" errors)" \
        "$(field "$l" status_errors) $(us_per $((c1 - c0)) "$(field "$l" requests)")"
}

kb_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
say "http_bench: $CORES cores ($(uname -m)), build dir $B"
mkdir -p "$B/bench" || exit 1
if ! cc -O2 -pthread -o "$ECHO_BIN" bench/echo_server.c; then
    say "error: cannot build the echo server"
    exit 1
fi
if [ ! -x "$SERVER" ]; then
    say "SKIP: no server binary at $SERVER (run make first)"
    exit 0
fi
for tool in curl perl; do
    command -v $tool >/dev/null 2>&1 || { say "SKIP: $tool is not installed"; exit 0; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qdq-bench.XXXXXX") || exit 1

# ---- 1. curl, 64 MiB -------------------------------------------------------------------------
if has curl; then
    say ""
    say "== curl: 64 MiB float32 raw POST, $RUNS timed runs each, alternating ($CORES cores) =="
    BYTES=$((64 << 20))
    gen_f32 $((BYTES / 4)) "$TMP/in64.f32" || exit 1
    if start_echo && start_qdq $QDQ_ARGS; then
        EU="http://127.0.0.1:$ECHO_PORT/"
        QU="http://127.0.0.1:$QDQ_PORT$ROUTE?shape=$((BYTES / 4))"
        : >"$TMP/t_echo"; : >"$TMP/t_qdq"
        ok=1
        ecold=$(post_time "$EU" "$TMP/in64.f32" $BYTES) || ok=0
        qcold=$(post_time "$QU" "$TMP/in64.f32" $BYTES) || ok=0
        ce=0; cq=0
        r=0
        while [ $ok = 1 ] && [ $r -lt "$RUNS" ]; do
            a=$(cpu_ticks "$ECHO_PID")
            post_time "$EU" "$TMP/in64.f32" $BYTES >>"$TMP/t_echo" || ok=0
            b=$(cpu_ticks "$ECHO_PID"); ce=$((ce + b - a)); a=$(cpu_ticks "$QDQ_PID")
            post_time "$QU" "$TMP/in64.f32" $BYTES >>"$TMP/t_qdq" || ok=0
            b=$(cpu_ticks "$QDQ_PID"); cq=$((cq + b - a))
            r=$((r + 1))
        done
        # The same on one kept-alive connection per server: the echo server then reuses its
        # buffer (a new connection is a new thread with a fresh, not yet faulted-in malloc).
        if [ $ok = 1 ]; then
            post_series "$EU" "$TMP/in64.f32" $BYTES $((RUNS + 1)) >"$TMP/k_echo" || ok=0
            post_series "$QU" "$TMP/in64.f32" $BYTES $((RUNS + 1)) >"$TMP/k_qdq" || ok=0
        fi
        if [ $ok = 1 ]; then
            me=$(median <"$TMP/t_echo"); mq=$(median <"$TMP/t_qdq")
            ra=$(ratio "$mq" "$me"); v=$(verdict "$ra" "<=" 1.25); count_miss "$v"
            say "first request:  echo $ecold s, qdq-server $qcold s"
            say "echo server:    median $me s (range $(minmax <"$TMP/t_echo"))"
            say "qdq-server:     median $mq s (range $(minmax <"$TMP/t_qdq"))"
            say "ratio qdq/echo: $ra (target <= 1.25) $v"
            say "server CPU per request (user+sys): echo $(us_per $ce "$RUNS") us, qdq-server $(us_per $cq "$RUNS") us"
            ke=$(median <"$TMP/k_echo"); kq=$(median <"$TMP/k_qdq"); kr=$(ratio "$kq" "$ke")
            say "keep-alive, one connection ($RUNS after a warm-up): echo median $ke s, qdq-server median $kq s, ratio $kr (info)"
            add_summary "$(printf 'curl 64MiB raw   qdq %8.4f s    echo %8.4f s    ratio %6.3f (<= 1.25)  %s  keep-alive ratio %s' "$mq" "$me" "$ra" "$v" "$kr")"
        else
            FAILED=1
            add_summary "curl 64MiB raw   FAILED"
        fi
    else
        FAILED=1
    fi
    check_qdq; stop_pid "${QDQ_PID:-}"; stop_pid "${ECHO_PID:-}"
    rm -f "$TMP/in64.f32"
fi

# ---- 2. wrk, 1024 elements -------------------------------------------------------------------
if has wrk; then
    say ""
    say "== wrk: 1024-element float32 raw POST, 2 threads, 64 connections, ${WRK_SECONDS} s each ($CORES cores) =="
    if ! command -v wrk >/dev/null 2>&1; then
        say "SKIP: wrk is not installed"
    else
        gen_f32 1024 "$TMP/body4k.f32" || exit 1
        if start_echo && start_qdq $QDQ_ARGS; then
            EU="http://127.0.0.1:$ECHO_PORT/"
            QU="http://127.0.0.1:$QDQ_PORT$ROUTE?shape=1024"
            if post_time "$QU" "$TMP/body4k.f32" 4096 >/dev/null &&
               post_time "$EU" "$TMP/body4k.f32" 4096 >/dev/null; then
                e=$(wrk_one "$EU" "$ECHO_PID" echo); q=$(wrk_one "$QU" "$QDQ_PID" qdq)
                if [ -n "$e" ] && [ -n "$q" ]; then
                    e_rps=$(nth 1 "$e"); q_rps=$(nth 1 "$q")
                    ra=$(ratio "$q_rps" "$e_rps"); v=$(verdict "$ra" ">=" 0.70); count_miss "$v"
                    say "echo server:    $e_rps req/s  p50 $(nth 2 "$e") us  p99 $(nth 3 "$e") us  errors $(nth 4 "$e")/$(nth 5 "$e")  server CPU $(nth 6 "$e") us/req"
                    say "qdq-server:     $q_rps req/s  p50 $(nth 2 "$q") us  p99 $(nth 3 "$q") us  errors $(nth 4 "$q")/$(nth 5 "$q")  server CPU $(nth 6 "$q") us/req"
                    say "ratio qdq/echo: $ra (target >= 0.70) $v"
                    if [ "$(nth 4 "$q")" != 0 ] || [ "$(nth 5 "$q")" != 0 ]; then
                        say "error: qdq-server had socket or HTTP errors under wrk"
                        FAILED=1
                    fi
                    add_summary "$(printf 'wrk 4KiB raw     qdq %8.0f r/s  echo %8.0f r/s  ratio %6.3f (>= 0.70)  %s  p50/p99 qdq %s/%s us, echo %s/%s us; CPU/req qdq %s us, echo %s us' \
                        "$q_rps" "$e_rps" "$ra" "$v" "$(nth 2 "$q")" "$(nth 3 "$q")" "$(nth 2 "$e")" "$(nth 3 "$e")" "$(nth 6 "$q")" "$(nth 6 "$e")")"
                else
                    say "error: wrk produced no result:"; cat "$TMP/wrk_echo" "$TMP/wrk_qdq"
                    FAILED=1
                fi
            else
                FAILED=1
            fi
        else
            FAILED=1
        fi
        check_qdq; stop_pid "${QDQ_PID:-}"; stop_pid "${ECHO_PID:-}"
    fi
fi

# ---- 3. floor: libmicrohttpd's own, 4 KiB ----------------------------------------------------
if has floor; then
    say ""
    say "== floor: 4 KiB float32 raw POST under wrk (2 threads, 64 connections, ${WRK_SECONDS} s), qdq-server with its access log to a file, vs. a bare libmicrohttpd server; $FLOOR_RUNS runs each, alternating ($CORES cores) =="
    if ! command -v wrk >/dev/null 2>&1; then
        say "SKIP: wrk is not installed"
    elif ! cc -O2 -o "$MHD_BIN" bench/mhd_echo.c $(pkg-config --cflags --libs libmicrohttpd); then
        say "error: cannot build bench/mhd_echo.c"
        FAILED=1
    else
        [ -f "$TMP/body4k.f32" ] || gen_f32 1024 "$TMP/body4k.f32" || exit 1
        MPORT=$(awk -v s="$$" 'BEGIN { srand(s + systime()); print 20000 + int(rand() * 40000) }')
        "$MHD_BIN" "$MPORT" 2>/dev/null &
        MHD_PID=$!
        PIDS="$PIDS $MHD_PID"
        i=0
        until curl -s -o /dev/null --max-time 2 --data-binary x "http://127.0.0.1:$MPORT/" || [ $i -ge 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
        if QDQ_STDOUT="$TMP/access.log" start_qdq $QDQ_ARGS --access-log on; then
            MU="http://127.0.0.1:$MPORT/"
            QU="http://127.0.0.1:$QDQ_PORT$ROUTE?shape=1024"
            : >"$TMP/f_mhd"; : >"$TMP/f_qdq"
            ok=1
            post_time "$QU" "$TMP/body4k.f32" 4096 >/dev/null || ok=0
            post_time "$MU" "$TMP/body4k.f32" 4096 >/dev/null || ok=0
            r=0
            while [ $ok = 1 ] && [ $r -lt "$FLOOR_RUNS" ]; do
                m=$(wrk_one "$MU" "$MHD_PID" mhd); q=$(wrk_one "$QU" "$QDQ_PID" qdq)
                [ -n "$m" ] && [ -n "$q" ] || { ok=0; break; }
                if [ "$(nth 4 "$q")" != 0 ] || [ "$(nth 5 "$q")" != 0 ]; then
                    say "error: qdq-server had socket or HTTP errors under wrk"
                    FAILED=1
                fi
                say "run $((r + 1)): libmicrohttpd $(nth 1 "$m") req/s p99 $(nth 3 "$m") us CPU $(nth 6 "$m") us/req; qdq-server $(nth 1 "$q") req/s p99 $(nth 3 "$q") us CPU $(nth 6 "$q") us/req (ratio $(ratio "$(nth 1 "$q")" "$(nth 1 "$m")"))"
                echo "$m" >>"$TMP/f_mhd"; echo "$q" >>"$TMP/f_qdq"
                r=$((r + 1))
            done
            if [ $ok = 1 ]; then
                m_rps=$(cut -d' ' -f1 <"$TMP/f_mhd" | median); q_rps=$(cut -d' ' -f1 <"$TMP/f_qdq" | median)
                m_p99=$(cut -d' ' -f3 <"$TMP/f_mhd" | median); q_p99=$(cut -d' ' -f3 <"$TMP/f_qdq" | median)
                lines=$(wc -l <"$TMP/access.log")
                ra=$(ratio "$q_rps" "$m_rps"); v=$(verdict "$ra" ">=" 0.85); count_miss "$v"
                m_cpu=$(cut -d' ' -f6 <"$TMP/f_mhd" | median); q_cpu=$(cut -d' ' -f6 <"$TMP/f_qdq" | median)
                say "libmicrohttpd:  median $m_rps req/s, p99 $m_p99 us, server CPU $m_cpu us/req"
                say "qdq-server:     median $q_rps req/s, p99 $q_p99 us, server CPU $q_cpu us/req ($lines access-log lines written)"
                say "ratio qdq/floor: $ra (target >= 0.85) $v"
                add_summary "$(printf 'floor 4KiB raw   qdq %8.0f r/s  mhd  %8.0f r/s  ratio %6.3f (>= 0.85)  %s  p99 qdq %s us, mhd %s us; CPU/req qdq %s us, mhd %s us (access log on, to a file)' \
                    "$q_rps" "$m_rps" "$ra" "$v" "$q_p99" "$m_p99" "$q_cpu" "$m_cpu")"
            else
                say "error: the floor runs failed"; cat "$TMP/wrk_mhd" "$TMP/wrk_qdq"
                FAILED=1
            fi
        else
            FAILED=1
        fi
        check_qdq; stop_pid "${QDQ_PID:-}"; stop_pid "${MHD_PID:-}"
    fi
fi

# ---- 4. JSON, 1M elements (bench_cjson starts its own server) --------------------------------
if has json; then
    say ""
    say "== json: 1M-element nested float32 JSON vs. a cJSON round trip ($CORES cores) =="
    if [ ! -x "$B/bench/bench_cjson" ]; then
        make -s BUILD="$B" "$B/bench/bench_cjson" >/dev/null 2>&1
    fi
    if [ -x "$B/bench/bench_cjson" ]; then
        QDQ_SERVER="$SERVER" timeout 600 "$B/bench/bench_cjson" | tee "$TMP/json"
        line=$(grep '^JSON_RESULT' "$TMP/json")
        if [ -n "$line" ]; then
            sp=$(field "$line" speedup)
            v=$(verdict "$sp" ">=" 5); count_miss "$v"
            add_summary "$(printf 'json 1M nested   qdq %8.4f s    cJSON %7.4f s    speedup %5.2fx (>= 5)  %s' \
                "$(field "$line" e2e_s)" "$(field "$line" cjson_s)" "$sp" "$v")"
        elif grep -q '^SKIP' "$TMP/json"; then
            add_summary "json 1M nested   SKIPPED"
        else
            FAILED=1
            add_summary "json 1M nested   FAILED"
        fi
        grep -q '^FAIL' "$TMP/json" && FAILED=1
    else
        say "SKIP: $B/bench/bench_cjson is not built"
        add_summary "json 1M nested   SKIPPED (no $B/bench/bench_cjson)"
    fi
fi

# ---- 5. peak RSS, 256 MiB --------------------------------------------------------------------
if has rss; then
    say ""
    say "== rss: peak RSS over one 256 MiB float32 raw POST, fresh process each, $RSS_RUNS runs ($CORES cores) =="
    BYTES=$((256 << 20))
    gen_f32 $((BYTES / 4)) "$TMP/in256.f32" || exit 1
    : >"$TMP/rss_qdq"; : >"$TMP/rss_echo"
    r=0
    while [ $r -lt "$RSS_RUNS" ]; do
        for who in qdq echo; do
            if [ $who = qdq ]; then
                start_qdq $QDQ_ARGS || { FAILED=1; break 2; }
                pid=$QDQ_PID; u="http://127.0.0.1:$QDQ_PORT$ROUTE?shape=$((BYTES / 4))"
            else
                start_echo || { FAILED=1; break 2; }
                pid=$ECHO_PID; u="http://127.0.0.1:$ECHO_PORT/"
            fi
            sleep 0.3
            idle=$(kb_of "$pid" VmRSS)
            t=$(post_time "$u" "$TMP/in256.f32" $BYTES) || {
                [ $who = qdq ] && check_qdq
                FAILED=1; stop_pid "$pid"; break 2
            }
            hwm=$(kb_of "$pid" VmHWM); after=$(kb_of "$pid" VmRSS)
            x=$(awk -v h="$hwm" -v i="$idle" -v b="$BYTES" 'BEGIN { printf "%.3f", (h - i) * 1024 / b }')
            echo "$x" >>"$TMP/rss_$who"
            [ $who = qdq ] && check_qdq
            say "$(printf '%-11s idle %7d KiB  peak %7d KiB  after %7d KiB  (peak-idle)/body %s  (%s s)' \
                "$who:" "$idle" "$hwm" "$after" "$x" "$t")"
            stop_pid "$pid"
        done
        r=$((r + 1))
    done
    rm -f "$TMP/in256.f32"
    if [ -s "$TMP/rss_qdq" ] && [ -s "$TMP/rss_echo" ]; then
        worst=$(sort -n "$TMP/rss_qdq" | tail -n 1); ew=$(sort -n "$TMP/rss_echo" | tail -n 1)
        v=$(verdict "$worst" "<=" 1.5); count_miss "$v"
        say "qdq-server (peak-idle)/body: worst $worst (range $(minmax <"$TMP/rss_qdq")); echo server: $ew; target <= 1.5 $v"
        add_summary "$(printf 'rss 256MiB raw   qdq %6.3fx body  echo %6.3fx body  (peak-idle)/body (<= 1.5)  %s' "$worst" "$ew" "$v")"
    else
        add_summary "rss 256MiB raw   FAILED"
    fi
fi

say ""
say "== summary ($CORES cores) =="
printf '%s' "$SUMMARY"
if [ $FAILED != 0 ]; then
    say "http_bench: a server answered wrongly, did not start, or died"
    exit 1
fi
if [ "$STRICT" = 1 ] && [ $MISSED != 0 ]; then
    say "http_bench: $MISSED target(s) missed"
    exit 1
fi
exit 0
