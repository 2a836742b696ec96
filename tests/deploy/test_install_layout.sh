#!/bin/sh
# The image's runtime layout without a Docker engine: `make install DESTDIR=...` into a fresh
# directory (the Dockerfile's step), then the installed binary run from there as a non-root
# user, configured by QDQ_* variables as in the image: health, one request, --healthcheck, and
# SIGTERM -> exit 0. Also checks the Dockerfile's shape. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

D=$(mktemp -d)
LOG=$(mktemp)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$D" "$LOG"' EXIT INT TERM
chmod 755 "$D"
make -s install BUILD="$B" DESTDIR="$D" PREFIX=/usr/local >/dev/null 2>&1
BIN="$D/usr/local/bin/qdq-server"
check '[ -x "$BIN" ]' "make install did not install usr/local/bin/qdq-server"

# A non-root user, as in the image (uid 10001 there; nobody here).
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null && RUNAS="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
QDQ_LISTEN=127.0.0.1:$PORT QDQ_ACCESS_LOG=off QDQ_WORKERS=2 $RUNAS "$BIN" 2>"$LOG" &
PID=$!
i=0
while [ $i -lt 50 ] && ! grep -q "^listening on" "$LOG"; do sleep 0.1; i=$((i + 1)); done
check 'grep -q "^listening on 127.0.0.1:$PORT" "$LOG"' "installed binary did not start: $(cat "$LOG")"
U=$(ps -o user= -p $PID 2>/dev/null | tr -d ' ')
[ "$(id -u)" -ne 0 ] || check '[ "$U" = nobody ] || [ "$U" = 65534 ]' "runs as '$U', not non-root"
check '[ "$(curl -s -o /dev/null -w %{http_code} http://127.0.0.1:$PORT/healthz)" = 200 ]' "healthz"
OUT=$(curl -s -H 'Content-Type: application/json' -d '{"input": [-1.0, -0.5, 0.0, 0.3]}' \
    "http://127.0.0.1:$PORT/quantize-dequantize")
check 'echo "$OUT" | grep -q "\"output\":\[-1.0,-0.5,0.0,0.296875\]"' "answer: $OUT"
check 'QDQ_LISTEN=127.0.0.1:$PORT $RUNAS "$BIN" --healthcheck' "--healthcheck against a healthy server"
kill -TERM $PID
wait $PID
rc=$?
PID=
check '[ $rc -eq 0 ]' "exit status $rc after SIGTERM"
check '! QDQ_LISTEN=127.0.0.1:$PORT "$BIN" --healthcheck 2>/dev/null' "--healthcheck with no server"

# The Dockerfile: multi-stage on bookworm-slim, the project's own steps, non-root, exec form.
F=Dockerfile
check '[ "$(grep -c "^FROM debian:bookworm-slim" $F)" -eq 2 ]' "two bookworm-slim stages"
check 'grep -q "^RUN sh scripts/install-deps.sh$" $F' "build stage uses scripts/install-deps.sh"
check 'grep -q "make -j.*all && make install DESTDIR=" $F' "build stage uses make all/install"
check 'grep -q "install-deps.sh --runtime" $F' "runtime stage installs only runtime libraries"
check 'grep -q "^USER 10001" $F' "non-root USER"
check 'grep -q "^ENTRYPOINT \[\"/usr/local/bin/qdq-server\"\]" $F' "exec-form ENTRYPOINT"
check 'grep -q "^HEALTHCHECK .*CMD \[\"/usr/local/bin/qdq-server\", \"--healthcheck\"\]" $F' "HEALTHCHECK"
check 'grep -q "^ENV QDQ_LISTEN=0.0.0.0:8080" $F && grep -q "^EXPOSE 8080" $F' "listens on 0.0.0.0:8080"
check '[ -f .dockerignore ] && grep -q "^build$" .dockerignore' ".dockerignore"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
