#!/bin/sh
# A bounded load test with curl: QDQ_LOAD_REQUESTS (1000) JSON requests, QDQ_LOAD_PARALLEL (8)
# at a time over kept-alive connections, against $QDQ_URL (http://127.0.0.1:8080). Prints the
# rate and the count of each status; exits 1 when any answer was not 200 (000: no answer).
#   sh examples/load.sh
#   QDQ_LOAD_REQUESTS=20000 QDQ_LOAD_PARALLEL=32 sh examples/load.sh
# (wrk drives far more load: tests/load/*.lua; tests/load/load_curl.sh does every format.)
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
N=${QDQ_LOAD_REQUESTS:-1000}
P=${QDQ_LOAD_PARALLEL:-8}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# One body (1024 float32 values), sent N times: curl reads its URLs from a config file.
awk 'BEGIN { printf "{\"input\": ["; for (i = 0; i < 1024; i++) printf "%s%.4f", (i ? "," : ""),
    sin(i) ; printf "], \"num_bits\": 8}" }' >"$T/body.json"
awk -v n="$N" -v u="$URL/quantize-dequantize" \
    'BEGIN { for (i = 0; i < n; i++) printf "url = \"%s\"\noutput = \"/dev/null\"\n", u }' >"$T/urls"

start=$(date +%s.%N)
curl --parallel --parallel-max "$P" -s --no-progress-meter --max-time 30 -w '%{http_code}\n' \
    -H 'Content-Type: application/json' --data-binary @"$T/body.json" -K "$T/urls" >"$T/codes" || true
end=$(date +%s.%N)

awk -v n="$N" -v p="$P" -v s="$start" -v e="$end" \
    'BEGIN { t = e - s; printf "%d requests, %d parallel: %.2f s, %.0f requests/s\n", n, p, t, n / t }'
sort "$T/codes" | uniq -c | awk '{ printf "status %s: %d\n", $2, $1 }'
[ "$(grep -c '^200$' "$T/codes")" -eq "$N" ]
