#!/bin/sh
# Runs every test program of each build directory given (default: build) and prints the total
# as the last line: "N passed, N failed". Each program prints its own "N passed, N failed" line;
# a program that crashes or prints no such line counts as one failure.
# Black-box tests find the server binary through QDQ_SERVER (set here per build).
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- build
total_p=0
total_f=0
for dir in "$@"; do
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$(QDQ_SERVER="$PWD/$dir/qdq-server" QDQ_TESTDATA="$PWD/tests" "$t" 2>&1)
        rc=$?
        line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
        if [ -z "$line" ]; then
            p=0; f=1
        else
            p=${line%% passed*}
            f=${line#*, }; f=${f%% failed*}
            [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
        fi
        if [ "$f" -gt 0 ]; then
            printf '%s\n' "$out" | tail -n 40
            echo "FAILED: $t (exit $rc): $p passed, $f failed"
        else
            echo "ok: $t: $p passed"
        fi
        total_p=$((total_p + p))
        total_f=$((total_f + f))
    done
done
# Deployment checks (shell scripts, each ending in "N passed, N failed"), against the first build.
for t in tests/deploy/test_*.sh; do
    [ -f "$t" ] || continue
    out=$(BUILD="$1" QDQ_SERVER="$PWD/$1/qdq-server" sh "$t" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then p=0; f=1; else
        p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
        [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
    fi
    if [ "$f" -gt 0 ]; then
        printf '%s\n' "$out" | tail -n 40
        echo "FAILED: $t (exit $rc): $p passed, $f failed"
    else
        echo "ok: $t: $p passed"
    fi
    total_p=$((total_p + p))
    total_f=$((total_f + f))
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
