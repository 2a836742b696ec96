#!/bin/sh
# The image's runtime stage without a Docker engine: `make install DESTDIR=... PREFIX=/usr/local`
# into a fresh directory (the build stage's step), then the installed binary run from there as
# the image runs it: as uid/gid 10001 (the Dockerfile's USER; setpriv needs no passwd entry),
# from /, in a tree it cannot write, configured by QDQ_* variables only. Checks /healthz, a
# request, --healthcheck (exit 0 healthy, non-zero with no server), SIGTERM -> exit 0, and that
# every library the binary links comes from the installer's --runtime list (what the runtime
# stage installs) or libc6. Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
B=${BUILD:-build}
SERVER=${QDQ_SERVER:-$B/qdq-server}
case $SERVER in /*) ;; *) SERVER=$ROOT/$SERVER ;; esac
. tests/lib/checks.sh

D=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$D"' EXIT
trap 'exit 1' INT TERM
chmod 755 "$D"
mkdir "$D/root"
LOG=$D/server.err
: >"$LOG"
# The build directory whose binary is under test (QDQ_SERVER), so that nothing is rebuilt.
B=$(dirname "$SERVER")
case $B in "$ROOT"/*) B=${B#"$ROOT"/} ;; esac
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install BUILD="$B" DESTDIR="$D/root" PREFIX=/usr/local >"$D/make.out" 2>&1
rc=$? # before the message's $(cat) runs, which sets $? again
check '[ $rc -eq 0 ]' "make install DESTDIR=<fresh dir> PREFIX=/usr/local (exit $rc) $(cat "$D/make.out")"
BIN=$D/root/usr/local/bin/qdq-server
check '[ -x "$BIN" ] && [ "$(find "$D/root" -type f | wc -l)" -eq 1 ]' \
    "the install is one file, usr/local/bin/qdq-server"
check 'cmp -s "$BIN" "$SERVER"' "the installed binary is the one built"

# Libraries: each NEEDED one resolved, and its Debian package in the runtime list.
RUNTIME=$(sed -n 's/^RUNTIME="\(.*\)"$/\1/p' scripts/install-deps.sh)
check '[ -n "$RUNTIME" ]' "scripts/install-deps.sh has a RUNTIME list: $RUNTIME"
for lib in $(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$BIN" | awk -v l="$lib" '$1 == l { print $3 }')
    pkg=$( (dpkg -S "$path" || dpkg -S "$(readlink -f "$path")") 2>/dev/null | head -n 1 | cut -d: -f1)
    case " $RUNTIME " in
    *" $pkg "*) ok "$lib ($path) is in $pkg, which the runtime stage installs" ;;
    *) [ "$pkg" = libc6 ] && ok "$lib ($path) is in libc6, part of every Debian image" ;;
    esac
    case " $RUNTIME libc6 " in
    *" $pkg "*) ;;
    *) bad "$lib ($path) comes from '$pkg', not in install-deps.sh's RUNTIME list" ;;
    esac
done

# Run as the image does. As root: uid/gid 10001 through setpriv (util-linux). Otherwise the
# current user, who is not root either.
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
    if command -v setpriv >/dev/null; then
        RUNAS="setpriv --reuid=10001 --regid=10001 --clear-groups"
    else
        bad "setpriv (util-linux) is missing: cannot drop root"
    fi
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd / && exec env QDQ_LISTEN=127.0.0.1:$PORT QDQ_ACCESS_LOG=off QDQ_WORKERS=2 $RUNAS "$BIN") 2>"$LOG" &
PID=$!
i=0
while [ $i -lt 100 ] && ! grep -q "^listening on" "$LOG"; do sleep 0.05; i=$((i + 1)); done
check 'grep -q "^listening on 127.0.0.1:$PORT" "$LOG"' "the installed binary starts from QDQ_* variables: $(tail -n 2 "$LOG")"
U=$(ps -o uid= -p $PID 2>/dev/null | tr -d ' ')
check '[ -n "$U" ] && [ "$U" -ne 0 ]' "runs as non-root uid '$U'"
[ "$(id -u)" -ne 0 ] || check '[ "$U" = 10001 ]' "runs as the image's uid 10001"
check '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$PORT/healthz)" = 200 ]' "GET /healthz: 200"
check '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$PORT/readyz)" = 200 ]' "GET /readyz: 200"
OUT=$(curl -s -H 'Content-Type: application/json' -d '{"input": [-1.0, -0.5, 0.0, 0.3]}' \
    "http://127.0.0.1:$PORT/quantize-dequantize")
check 'echo "$OUT" | grep -qF "\"output\":[-1.0,-0.5,0.0,0.296875]"' "a request: $OUT"
check 'QDQ_LISTEN=127.0.0.1:$PORT $RUNAS "$BIN" --healthcheck' "--healthcheck: exit 0 against the running server"
# The image's QDQ_LISTEN=0.0.0.0:PORT is checked on 127.0.0.1 (the server here listens only there).
check 'QDQ_LISTEN=0.0.0.0:$PORT $RUNAS "$BIN" --healthcheck' "--healthcheck with QDQ_LISTEN=0.0.0.0:PORT asks 127.0.0.1"
kill -TERM $PID
wait $PID
rc=$?
PID=
check '[ $rc -eq 0 ]' "SIGTERM: drained, exit $rc"
check '! QDQ_LISTEN=127.0.0.1:$PORT "$BIN" --healthcheck 2>/dev/null' "--healthcheck: non-zero with no server"
finish
