#!/bin/sh
# Fuzzing: builds every target with clang (libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer)
# into build-fuzz/, runs each target once over every file of tests/fuzz/regress/<name>/
# (regressions: each must pass), then fuzzes each for $FUZZ_SECONDS seconds (default 60) on a
# copy of its seed corpus tests/fuzz/corpus/<name>/. Prints the executions per target; a crash
# input is written to tests/fuzz/crashes/ and printed (path and hex dump), and the script exits
# non-zero. The last line counts the targets: "N passed, N failed, 0 skipped" (regressions and fuzzing
# both clean: passed).
#
#   sh tests/fuzz/run.sh                 every target
#   sh tests/fuzz/run.sh json npy        some of them
#   FUZZ_SECONDS=600 sh tests/fuzz/run.sh
#   FUZZ_BUILD_ONLY=1 sh tests/fuzz/run.sh
#   FUZZ_BUILD=/tmp/fz sh tests/fuzz/run.sh  build somewhere else than build-fuzz/
#
# Targets: json query npy inflate safetensors policy kserve grpc (grpc's messages' C is
# generated here by protoc-c from proto/*.proto).
set -u
cd "$(dirname "$0")/../.." || exit 1

SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
CXX=${FUZZ_CXX:-clang++}
B=${FUZZ_BUILD:-build-fuzz}   # another folder keeps a run apart from other builds
CRASHES=tests/fuzz/crashes
ARCH=$(uname -m)

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
COMMON="-g -O1 -ffp-contract=off -fno-fast-math $SAN -D_GNU_SOURCE -Icore -Iproto -Iconfig -Iserver -I$B/gen -Itests/lib"
CFLAGS_F="-std=gnu11 $COMMON -fsanitize=fuzzer-no-link -Wall -Wextra -Wno-unused-parameter"
CXXFLAGS_F="-std=c++17 $COMMON -fsanitize=fuzzer-no-link -fno-exceptions -fno-rtti -isystem /usr/include/dragonbox-1.1.3"
AVX2=""
[ "$ARCH" = x86_64 ] && AVX2="-mavx2 -mf16c"
PKG_CFLAGS=$(pkg-config --cflags libmicrohttpd zlib libcjson libprotobuf-c 2>/dev/null)

command -v "$CC" >/dev/null 2>&1 || { echo "fuzz: $CC not found (apt-get install clang)"; exit 2; }

# The messages' C, as the Makefile generates it (protoc-c, from proto/*.proto).
mkdir -p "$B/gen"
for p in proto/*.proto; do
    [ -f "$p" ] || continue
    g=$B/gen/$(basename "$p" .proto).pb-c.c
    if [ ! -f "$g" ] || [ "$p" -nt "$g" ]; then
        echo "  GEN $p"
        protoc-c --c_out="$B/gen" -Iproto "$p" || { echo "fuzz: protoc-c cannot compile $p"; exit 2; }
    fi
done

# An object is rebuilt when its source or any project header is newer.
HEADERS=$(ls core/*.h proto/*.h server/*.h config/config.h tests/fuzz/*.h tests/lib/ref.h "$B"/gen/*.h 2>/dev/null)
stale() { # obj src
    [ -f "$1" ] || return 0
    [ "$2" -nt "$1" ] && return 0
    for h in $HEADERS; do [ "$h" -nt "$1" ] && return 0; done
    return 1
}
compile() { # src obj extra-flags
    stale "$2" "$1" || return 0
    mkdir -p "$(dirname "$2")"
    case "$1" in
        *.cc) echo "  CXX $1"; $CXX $CXXFLAGS_F $3 -c -o "$2" "$1" ;;
        *) echo "  CC  $1"; $CC $CFLAGS_F $PKG_CFLAGS $3 -c -o "$2" "$1" ;;
    esac
}

has_kserve() {
    [ -f proto/kserve.c ] && grep -q 'proto_v2_decode' proto/kserve.c
}

# ---- build ----
echo "fuzz: building into $B/ with $CC"
LIBOBJS=""
for src in core/*.c proto/*.c proto/*.cc "$B"/gen/*.pb-c.c; do
    [ -f "$src" ] || continue
    case "$src" in
        proto/kserve.c) has_kserve || continue ;;
    esac
    case "$src" in
        "$B"/gen/*) obj=$(echo "$src" | sed 's/\.c$/.o/') ;;
        *) obj=$B/$(echo "$src" | sed 's/\.cc$/.o/; s/\.c$/.o/') ;;
    esac
    extra=""
    [ "$src" = core/kernels_avx2.c ] && extra="$AVX2 -O3"
    compile "$src" "$obj" "$extra" || { echo "fuzz: cannot compile $src"; exit 2; }
    LIBOBJS="$LIBOBJS $obj"
done
compile server/encoding.c "$B/server/encoding.o" "" || { echo "fuzz: cannot compile server/encoding.c"; exit 2; }
# The decoder targets check the op against the independent reference of the tests.
compile tests/lib/ref.c "$B/tests/lib/ref.o" "" || { echo "fuzz: cannot compile tests/lib/ref.c"; exit 2; }

ALL="json query npy inflate safetensors policy"
has_kserve && [ -f tests/fuzz/fuzz_kserve.c ] && ALL="$ALL kserve"
[ -f proto/v2_grpc.c ] && [ -f tests/fuzz/fuzz_grpc.c ] && ALL="$ALL grpc"
[ $# -gt 0 ] && ALL="$*"

for t in $ALL; do
    src=tests/fuzz/fuzz_$t.c
    [ -f "$src" ] || { echo "fuzz: no target $src"; exit 2; }
    objs="$LIBOBJS $B/tests/lib/ref.o"
    [ "$t" = inflate ] && objs="$B/server/encoding.o $B/proto/buf.o $B/proto/status.o $B/core/error.o"
    compile "$src" "$B/fuzz/fuzz_$t.o" "" || { echo "fuzz: cannot compile $src"; exit 2; }
    relink=0 # when the binary is missing or older than any of its objects
    [ -x "$B/fuzz_$t" ] || relink=1
    for o in "$B/fuzz/fuzz_$t.o" $objs; do
        [ "$o" -nt "$B/fuzz_$t" ] && relink=1
    done
    if [ "$relink" = 1 ]; then
        echo "  LD  $B/fuzz_$t"
        $CXX -fsanitize=fuzzer $SAN -o "$B/fuzz_$t" "$B/fuzz/fuzz_$t.o" $objs -lcjson -lprotobuf-c -lz -lm -pthread ||
            { echo "fuzz: cannot link fuzz_$t"; exit 2; }
    fi
done
[ "${FUZZ_BUILD_ONLY:-}" = 1 ] && exit 0

# ---- run ----
mkdir -p "$CRASHES"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qdq-fuzz-XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT INT TERM
failed=0
npass=0
nfail=0
summary=""

print_crashes() { # name
    for f in "$CRASHES/$1"-*; do
        [ -f "$f" ] || continue
        echo "  crash input: $f ($(wc -c < "$f") bytes); reproduce: $B/fuzz_$1 $f"
        od -A d -t x1z -v "$f" | head -n 32
    done
}

for t in $ALL; do
    bin=$B/fuzz_$t
    # Regressions: every file once (inputs that once crashed or that pin a decision).
    nreg=0
    if [ -d "tests/fuzz/regress/$t" ]; then
        files=$(find "tests/fuzz/regress/$t" -type f | sort)
        if [ -n "$files" ]; then
            nreg=$(echo "$files" | wc -l)
            # shellcheck disable=SC2086
            if ! "$bin" -rss_limit_mb=2048 -timeout=30 $files > "$WORK/$t.regress.log" 2>&1; then
                tail -n 60 "$WORK/$t.regress.log"
                echo "FAILED: fuzz_$t regression inputs (tests/fuzz/regress/$t/)"
                failed=1
                nfail=$((nfail + 1))
                summary="$summary
fuzz_$t: regressions FAILED"
                continue
            fi
        fi
    fi
    corpus=$WORK/corpus-$t
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$t" ] && cp -R "tests/fuzz/corpus/$t/." "$corpus/"
    extra_dirs=""
    [ -d "tests/fuzz/regress/$t" ] && extra_dirs="tests/fuzz/regress/$t"
    maxlen=65536
    [ "$t" = query ] && maxlen=4096
    echo "fuzz: $t for ${SECONDS_EACH}s ($nreg regression inputs passed)"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
        -max_len=$maxlen -artifact_prefix="$CRASHES/$t-" "$corpus" $extra_dirs \
        > "$WORK/$t.log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$WORK/$t.log" | tail -n 1 | awk '{print $2}')
    cov=$(grep -E '#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$WORK/$t.log" | tail -n 1 |
          sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    units=$(ls "$corpus" | wc -l)
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR|invariant|SUMMARY|#[0-9]+ in ' "$WORK/$t.log" | head -n 40
        echo "FAILED: fuzz_$t (exit $rc)"
        print_crashes "$t"
        failed=1
        nfail=$((nfail + 1))
        summary="$summary
fuzz_$t: CRASH after ${execs:-?} executions"
    else
        npass=$((npass + 1))
        summary="$summary
fuzz_$t: ${execs:-?} executions in ${SECONDS_EACH}s, coverage ${cov:-?}, corpus $units inputs"
    fi
done
echo "fuzz summary:$summary"
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED (crash inputs are in $CRASHES/)"
    echo "$npass passed, $nfail failed, 0 skipped"
    exit 1
fi
echo "fuzz: no crashes"
echo "$npass passed, $nfail failed, 0 skipped"
