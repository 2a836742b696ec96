#!/bin/bash
# make soak: the soak (soak.sh), then SIGTERM under load (shutdown_under_load.sh). Each prints
# its figures as it goes and ends with "N passed, N failed, N skipped"; the last line here is the total
# (tests/lib/tally.sh, as tests/run.sh sums), and the exit status is non-zero on any failure.
# Bounded: about 2 minutes for the soak (45 s warm-up, 60 s run) and 15 s for the shutdown.
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/tally.sh
LOG=$(mktemp "${TMPDIR:-/tmp}/qdq-soak-run-XXXXXX") || exit 2
trap 'rm -f "$LOG"' EXIT
for t in tests/soak/soak.sh tests/soak/shutdown_under_load.sh; do
    bash "$t" 2>&1 | tee "$LOG"
    rc=${PIPESTATUS[0]}
    tally "$t" "$rc" "$(cat "$LOG")" 0
done
tally_total
