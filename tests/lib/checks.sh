# The counting the shell tests share (sourced after `cd` to the repository root; it brings
# tests/lib/python.sh too):
#   ok TEXT, bad TEXT   one check passed or failed (printed as "ok: TEXT" or "FAIL: TEXT")
#   skip TEXT           a check that cannot run here (printed "skip: TEXT" and counted): for what
#                       no machine of ours has (a container engine, a cluster, a package Debian
#                       does not have), or what CI runs by itself
#   need CMD TEXT       a precondition (a tool of scripts/install-deps.sh --dev): returns 0 when
#                       the shell command CMD succeeds; otherwise counts a skip, or a failure when
#                       QDQ_CI=1 (CI's machine has every such tool), and returns 1
#   check CMD TEXT      ok or bad as the shell command CMD succeeds. CMD runs after TEXT is
#                       expanded: to test a status, save it first (rc=$?; check '[ $rc -eq 0 ]'
#                       "... $(cat log)"), since a $(...) in TEXT sets $? again (in bash).
#   finish              prints "N passed, N failed, N skipped" and exits, non-zero on any failure
pass=0
fail=0
skipped=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
skip() { skipped=$((skipped + 1)); echo "skip: $*"; }
need() {
    if eval "$1"; then return 0; fi
    if [ "${QDQ_CI:-}" = 1 ]; then bad "$2 (QDQ_CI=1: the CI machine must run this)"; else skip "$2"; fi
    return 1
}
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }
finish() { echo "$pass passed, $fail failed, $skipped skipped"; [ "$fail" -eq 0 ]; exit; }
. tests/lib/python.sh

# server_ports LOG PID [grpc]: waits (5 s at most, and no longer than PID lives) until LOG, a
# qdq-server's stderr, names the HTTP port it listens on, and the gRPC one too with "grpc";
# sets HPORT and GPORT (empty when not named). Text logs start lines with "listening on ADDRESS"
# and "grpc serving on ADDRESS"; JSON logs carry the same words in the line's msg.
server_ports() {
    _n=0
    while [ $_n -lt 100 ] && kill -0 "$2" 2>/dev/null &&
        ! { grep -q 'listening on' "$1" && { [ "${3:-}" != grpc ] || grep -q 'grpc serving on' "$1"; }; }; do
        sleep 0.05
        _n=$((_n + 1))
    done
    HPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
    GPORT=$(sed -n 's/.*grpc serving on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1)
}
