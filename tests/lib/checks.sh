# The counting the shell tests share (sourced after `cd` to the repository root):
#   ok TEXT, bad TEXT   one check passed or failed (printed as "ok: TEXT" or "FAIL: TEXT")
#   check CMD TEXT      ok or bad as the shell command CMD succeeds. CMD runs after TEXT is
#                       expanded: to test a status, save it first (rc=$?; check '[ $rc -eq 0 ]'
#                       "... $(cat log)"), since a $(...) in TEXT sets $? again (in bash).
#   finish              prints "N passed, N failed" and exits, non-zero on any failure
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
