#!/bin/sh
# The core of this tree against the core of another revision, in one process (bench/ab_core.c):
#   sh bench/ab_core.sh [REV] [iterations] [KiB] [threads]
# REV defaults to HEAD, so an uncommitted change is measured against the last commit. The base
# is built from `git archive REV` with its own Makefile; its library's symbols are renamed
# (objcopy) so that both revisions link into one binary, build/bench/ab_core. A benchmark, not a
# test: it exits non-zero only when the two revisions' outputs differ.
set -eu
cd "$(dirname "$0")/.."
REV=${1:-HEAD}
[ $# -gt 0 ] && shift
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir "$W/base"
git archive "$REV" | tar -x -C "$W/base"
make -s -C "$W/base" build/libqdq.a
make -s build/libqdq.a
nm -g --defined-only "$W/base/build/libqdq.a" | awk 'NF == 3 { print $3 " ab_base_" $3 }' |
    sort -u >"$W/names"
objcopy --redefine-syms="$W/names" "$W/base/build/libqdq.a" "$W/libbase.a"
awk '{ print "#define " $1 " " $2 }' "$W/names" >"$W/rename.h"
CC=${CC:-cc}
FLAGS="-std=gnu11 -O2 -D_GNU_SOURCE -pthread -Wall -Wextra -Ibench"
if ! grep -q qdq_run_channels "$W/base/core/qdq.h"; then # both take the three steps then
    FLAGS="$FLAGS -DOP_NO_RUN_CHANNELS"
fi
BASE_FLAGS=
if ! grep -q qdq_acc_init_channels "$W/base/core/qdq.h"; then # the base initialises them all
    BASE_FLAGS=-DOP_NO_ACC_INIT_CHANNELS
fi
$CC $FLAGS $BASE_FLAGS -I"$W/base/core" -DAB_OPS -DAB_V=base -include "$W/rename.h" -c -o "$W/base.o" \
    bench/ab_core.c
$CC $FLAGS -Icore -DAB_OPS -DAB_V=new -c -o "$W/new.o" bench/ab_core.c
$CC $FLAGS -Icore -c -o "$W/main.o" bench/ab_core.c
mkdir -p build/bench
$CC -pthread -o build/bench/ab_core "$W/main.o" "$W/base.o" "$W/new.o" "$W/libbase.a" \
    build/libqdq.a -lm
echo "base: $(git rev-parse --short "$REV") ($REV); new: this tree"
build/bench/ab_core "$@"
