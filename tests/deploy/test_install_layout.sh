#!/bin/sh
# The image's runtime stage without a Docker engine: `make install DESTDIR=... PREFIX=/usr/local`
# into a fresh directory (the build stage's step): the two programs and their man pages (made
# by help2man from --help: every option there is on the page, and `man -l` renders it without
# a warning); then the installed binary run from there as
# the image runs it: as uid/gid 10001 (the Dockerfile's USER; setpriv needs no passwd entry),
# from /, in a tree it cannot write, configured by QDQ_* variables only. Checks that the
# installed binary is stripped (its debug symbols in the file `make install-debug` adds, which
# gdb finds), /healthz, a request, --healthcheck (exit 0 healthy, non-zero with no server; and,
# as root, as a container runs it: the server as PID 1 of its own PID namespace, configured by
# flags or variables the health check does not get, found all the same), SIGTERM -> exit 0, and
# that every library the binary links comes from the installer's --runtime list (what the
# runtime stage installs) or libc6. Prints "N passed, N failed, N skipped".
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
FILES=$(cd "$D/root" && find . -type f | sort | tr '\n' ' ')
check '[ -x "$BIN" ] && [ -x "$D/root/usr/local/bin/qdq" ] && [ "$FILES" = "./usr/local/bin/qdq ./usr/local/bin/qdq-server ./usr/local/share/man/man1/qdq-server.1 ./usr/local/share/man/man1/qdq.1 " ]' \
    "the install is the two programs and their man pages: $FILES"
# The man pages: from the built programs' --help (help2man), so every option of --help is on
# its page; `man -l` (or groff, without man-db) renders them without a warning.
for prog in qdq-server qdq; do
    page=$D/root/usr/local/share/man/man1/$prog.1
    [ -f "$page" ] || { bad "no man page $prog.1"; continue; }
    "$B/$prog" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u >"$D/opts"
    sed 's/\\-/-/g; s/\\f[BIRP]//g; s/\\f[(][A-Z][A-Z]//g' "$page" >"$D/page.txt"
    missing=$(while read -r o; do grep -q -- "$o" "$D/page.txt" || printf '%s ' "$o"; done <"$D/opts")
    check '[ -s "$D/opts" ] && [ -z "$missing" ]' \
        "man page $prog.1 has the $(wc -l <"$D/opts") options of $prog --help${missing:+; missing: $missing}"
    if command -v man >/dev/null; then
        MANWIDTH=80 man --warnings -P cat -l "$page" >"$D/man.out" 2>"$D/man.err"
    else
        groff -man -Tutf8 -ww "$page" >"$D/man.out" 2>"$D/man.err"
    fi
    rc=$?
    check '[ $rc -eq 0 ] && [ ! -s "$D/man.err" ] && grep -Eq "^ *$prog +- " "$D/man.out" &&
           grep -q "$("$B/$prog" --version | head -n 1)" "$D/man.out"' \
        "$(command -v man >/dev/null && echo 'man -l' || echo groff) renders $prog.1 ($(wc -l <"$D/man.out") lines: NAME, version $("$B/$prog" --version | head -n 1))$(head -c 300 "$D/man.err")"
done
# Stripped, with its debug symbols split off: the same build (build id), no symbol table or
# DWARF, a .gnu_debuglink to qdq-server.debug; `make install-debug` puts that file where gdb
# looks (DEBUGDIR/.build-id/), and gdb then knows the stripped binary's functions.
buildid() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: *//p'; }
sections() { readelf -SW "$1" 2>/dev/null | sed -n 's/^ *\[ *[0-9]*\] \([^ ]*\) .*/\1/p' | tr '\n' ' '; }
ID=$(buildid "$SERVER")
check '[ -n "$ID" ] && [ "$(buildid "$BIN")" = "$ID" ]' "the installed binary is the one built (build id $ID)"
S=$(sections "$BIN")
case " $S " in
*" .symtab "*|*" .debug_info "*) bad "the installed binary is not stripped ($(wc -c <"$BIN") bytes; sections: $S)" ;;
*) ok "the installed binary is stripped: $(wc -c <"$BIN") bytes (built: $(wc -c <"$SERVER"))" ;;
esac
check 'readelf -p .gnu_debuglink "$BIN" 2>/dev/null | grep -q "qdq-server\.debug"' \
    "it names its debug file, qdq-server.debug (.gnu_debuglink)"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install-debug BUILD="$B" DESTDIR="$D/dbg" PREFIX=/usr/local >"$D/make.out" 2>&1
DBG=$D/dbg/usr/lib/debug/.build-id/$(echo "$ID" | cut -c1-2)/$(echo "$ID" | cut -c3-).debug
check '[ -f "$DBG" ] && [ "$(buildid "$DBG")" = "$ID" ] && sections "$DBG" | grep -q " .debug_info "' \
    "make install-debug: ${DBG#"$D"/dbg/}, the same build id, with DWARF"
if command -v gdb >/dev/null; then
    gdb -nx -batch -iex "set debug-file-directory $D/dbg/usr/lib/debug" -ex 'info line srv_start' \
        "$BIN" >"$D/gdb.out" 2>&1
    check 'grep -q "server/http.c" "$D/gdb.out"' "gdb finds srv_start's source line through it: $(head -n 1 "$D/gdb.out")"
fi

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

# As a container runs it (as root: unshare): the server is PID 1 of its own PID namespace, with
# the image's QDQ_LISTEN=0.0.0.0:<a port nothing listens on> in its environment, and its real
# port set by a flag (`docker run IMAGE --port N`) or another variable (`-e QDQ_PORT=N`). The
# health check runs inside (nsenter), as the image's user, with the image's environment only:
# alone it must find the server's port anyway; given options, it asks where they say.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v nsenter >/dev/null; then
    free() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    NOWHERE=$(free)
    # ns_server NAME [ENV...] -- [ARGS...]: starts it; NSPID is its pid (PID 1 inside)
    ns_server() {
        name=$1
        shift
        : >"$D/$name.err"
        (cd / && exec unshare --pid --fork --mount-proc env -i QDQ_LISTEN=0.0.0.0:$NOWHERE \
            QDQ_GRPC_LISTEN=none QDQ_ACCESS_LOG=off "$@") 2>"$D/$name.err" &
        i=0
        while [ $i -lt 100 ] && ! grep -q "^listening on" "$D/$name.err"; do sleep 0.05; i=$((i + 1)); done
        NSPID=$(pgrep -P $! 2>/dev/null | head -n 1)
    }
    hc_in() { # PID [ARGS]: the health check inside PID's namespaces, as uid 10001, image env only
        p=$1
        shift
        nsenter -t "$p" -p -m env -i QDQ_LISTEN=0.0.0.0:$NOWHERE $RUNAS "$BIN" --healthcheck "$@" 2>"$D/hc.err"
    }
    P1=$(free)
    ns_server flag $RUNAS "$BIN" --port "$P1"
    if [ -n "$NSPID" ]; then
        check 'hc_in $NSPID || { cat "$D/hc.err"; false; }' \
            "--healthcheck in the namespace of a server started with --port $P1 (PID 1): healthy"
        check '! hc_in $NSPID --port $NOWHERE' "--healthcheck --port $NOWHERE there: unhealthy (options given win)"
        check '! QDQ_LISTEN=0.0.0.0:$NOWHERE "$BIN" --healthcheck 2>/dev/null' \
            "--healthcheck outside it (PID 1 is not a server): the port of its own QDQ_LISTEN, unhealthy"
        kill -TERM "$NSPID"
    else
        bad "the server did not start as PID 1 of a new PID namespace: $(cat "$D/flag.err")"
    fi
    P2=$(free)
    ns_server env QDQ_PORT="$P2" $RUNAS "$BIN" --workers 1
    if [ -n "$NSPID" ]; then
        check 'hc_in $NSPID || { cat "$D/hc.err"; false; }' \
            "--healthcheck in the namespace of a server started with QDQ_PORT=$P2 (PID 1): healthy"
        kill -TERM "$NSPID"
    else
        bad "the server did not start as PID 1 of a new PID namespace: $(cat "$D/env.err")"
    fi
    wait
fi
finish
