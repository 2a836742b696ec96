#!/bin/sh
# Bounded load with curl --parallel, one run per format (json, raw, npy, v2 by default, or those
# named): QDQ_LOAD_REQUESTS requests (2000), QDQ_LOAD_PARALLEL at a time (16), each a float32
# tensor of QDQ_LOAD_ELEMENTS elements (1024), to QDQ_URL (http://127.0.0.1:8080: a server,
# the nginx of deploy/, or a port-forwarded Kubernetes Service). QDQ_AUTH_TOKEN, when set, is
# sent as the bearer token. Prints one line per format with requests/s and failures (any answer
# but 200, or none: a refused or reset connection counts as status 000), and the status counts
# when some failed. Exits 1 when any request failed.
#
#   sh tests/load/load_curl.sh
#   QDQ_URL=http://127.0.0.1:9000 QDQ_LOAD_REQUESTS=500 sh tests/load/load_curl.sh raw npy
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
URL=${URL%/}
N=${QDQ_LOAD_REQUESTS:-2000}
P=${QDQ_LOAD_PARALLEL:-16}
E=${QDQ_LOAD_ELEMENTS:-1024}
E=$(( (E + 3) / 4 * 4 ))  # whole repeats of the 4-value pattern below
[ $# -gt 0 ] || set -- json raw npy v2
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM

# The tensor: -1, -0.5, 0, 0.3 repeated. Text for the JSON formats, little-endian float32 bytes
# for the binary ones (0xbf800000, 0xbf000000, 0, 0x3e99999a).
awk -v e="$E" 'BEGIN { split("-1.0 -0.5 0.0 0.3", v, " ");
    for (i = 0; i < e; i++) printf "%s%s", (i ? "," : ""), v[i % 4 + 1] }' >"$W/values"
printf '\000\000\200\277\000\000\000\277\000\000\000\000\232\231\231\076' >"$W/f32"
while [ "$(wc -c <"$W/f32")" -lt $((E * 4)) ]; do
    cat "$W/f32" "$W/f32" >"$W/f32.2" && mv "$W/f32.2" "$W/f32"
done
head -c $((E * 4)) "$W/f32" >"$W/raw"
# .npy 1.0: magic, header length (2 bytes LE), the header dict padded with spaces to a multiple
# of 64 bytes with the magic, ending in a newline; then the data.
hdr="{'descr': '<f4', 'fortran_order': False, 'shape': ($E,), }"
hlen=$(( (10 + ${#hdr} + 1 + 63) / 64 * 64 - 10 ))
{
    printf '\223NUMPY\001\000'
    printf "\\$(printf %o $((hlen % 256)))\\$(printf %o $((hlen / 256)))"
    printf '%-*s\n' $((hlen - 1)) "$hdr"
    cat "$W/raw"
} >"$W/npy"

total_failed=0
for fmt in "$@"; do
    case $fmt in
    json)
        path=/quantize-dequantize
        ctype=application/json
        { printf '{"input": ['; cat "$W/values"; printf '], "num_bits": 8}'; } >"$W/body" ;;
    raw)
        path="/quantize-dequantize?shape=$E&num_bits=8"
        ctype=application/octet-stream
        cp "$W/raw" "$W/body" ;;
    npy)
        path="/quantize-dequantize?num_bits=8"
        ctype=application/x-npy
        cp "$W/npy" "$W/body" ;;
    v2)
        path=/v2/models/quantize_and_dequantize_v2/infer
        ctype=application/json
        { printf '{"inputs": [{"name": "input", "shape": [%d], "datatype": "FP32", "data": [' "$E"
          cat "$W/values"; printf ']}], "parameters": {"num_bits": 8}}'; } >"$W/body" ;;
    *)
        echo "load_curl.sh: unknown format '$fmt' (json, raw, npy, v2)" >&2
        exit 2 ;;
    esac
    awk -v n="$N" -v u="$URL$path" 'BEGIN { for (i = 0; i < n; i++)
        printf "url = \"%s\"\noutput = \"/dev/null\"\n", u }' >"$W/urls"
    set -- -H "Content-Type: $ctype" --data-binary "@$W/body"
    [ -z "${QDQ_AUTH_TOKEN:-}" ] || set -- "$@" -H "Authorization: Bearer $QDQ_AUTH_TOKEN"
    t0=$(date +%s.%N)
    curl --parallel --parallel-max "$P" --silent --no-progress-meter --max-time 60 -w '%{http_code}\n' "$@" \
        -K "$W/urls" >"$W/codes" || true
    t1=$(date +%s.%N)
    ok=$(grep -c '^200$' "$W/codes" || true)
    failed=$((N - ok))
    awk -v f="$fmt" -v n="$N" -v p="$P" -v e="$E" -v t0="$t0" -v t1="$t1" -v bad="$failed" \
        'BEGIN { s = t1 - t0; if (s <= 0) s = 1e-6;
          printf "%-4s %d requests of %d elements, %d parallel: %.2f s, %.0f requests/s, %d failed\n",
                 f, n, e, p, s, n / s, bad }'
    if [ "$failed" -gt 0 ]; then
        printf '  status counts:'
        sort "$W/codes" | uniq -c | awk '{ printf " %s x%s", $2, $1 } END { print "" }'
        total_failed=$((total_failed + failed))
    fi
done
[ "$total_failed" -eq 0 ]
