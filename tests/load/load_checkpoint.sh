#!/bin/sh
# Bounded load of whole checkpoints with curl --parallel: QDQ_LOAD_REQUESTS uploads (16),
# QDQ_LOAD_PARALLEL at a time (4), each `curl -T` of one safetensors file to QDQ_URL
# (http://127.0.0.1:8080) with the policy QDQ_LOAD_QUERY (num_bits=8&exclude=*norm*); every
# answer is compared byte for byte with the first. The file is QDQ_CHECKPOINT when set (a real
# model's, say), else one made here: QDQ_LOAD_CHECKPOINT_MIB (64) of float32 projections and a
# norm. A 503 (more uploads at once than the server's --max-checkpoint-inflight) is retried
# after its Retry-After. QDQ_AUTH_TOKEN, when set, is sent as the bearer token. Prints one line with uploads/s,
# MiB/s each way and the failures (any answer but 200, or none: status 000), and exits 1 when a
# request failed or an answer differed.
#
#   sh tests/load/load_checkpoint.sh
#   QDQ_CHECKPOINT=model.safetensors QDQ_LOAD_REQUESTS=4 sh tests/load/load_checkpoint.sh
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
URL=${URL%/}
N=${QDQ_LOAD_REQUESTS:-16}
P=${QDQ_LOAD_PARALLEL:-4}
Q=${QDQ_LOAD_QUERY:-num_bits=8&exclude=*norm*}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM

F=${QDQ_CHECKPOINT:-}
if [ -z "$F" ]; then
    # Tensors of 1 MiB of float32 each ([256, 1024]), named like a decoder's projections, then
    # a norm of 1024: values -1, -0.5, 0, 0.3 repeated, scaled per tensor by the byte pattern.
    mib=${QDQ_LOAD_CHECKPOINT_MIB:-64}
    printf '\000\000\200\277\000\000\000\277\000\000\000\000\232\231\231\076' >"$W/f32"
    while [ "$(wc -c <"$W/f32")" -lt 1048576 ]; do
        cat "$W/f32" "$W/f32" >"$W/f32.2" && mv "$W/f32.2" "$W/f32"
    done
    hdr='{"__metadata__":{"format":"pt"}'
    off=0
    i=0
    while [ $i -lt "$mib" ]; do
        hdr="$hdr,\"model.layers.$i.mlp.up_proj.weight\":{\"dtype\":\"F32\",\"shape\":[256,1024],\"data_offsets\":[$off,$((off + 1048576))]}"
        off=$((off + 1048576))
        i=$((i + 1))
    done
    hdr="$hdr,\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[$off,$((off + 4096))]}}"
    while [ $(( ${#hdr} % 8 )) -ne 0 ]; do hdr="$hdr "; done
    n=${#hdr}
    F=$W/model.safetensors
    {
        # The header's length: 8 bytes, little-endian.
        for s in 0 8 16 24 32 40 48 56; do
            printf "\\$(printf %o $(( (n >> s) & 255 )))"
        done
        printf '%s' "$hdr"
        i=0
        while [ $i -lt "$mib" ]; do cat "$W/f32"; i=$((i + 1)); done
        head -c 4096 "$W/f32"
    } >"$F"
fi
[ -r "$F" ] || { echo "load_checkpoint: cannot read $F" >&2; exit 1; }
bytes=$(wc -c <"$F")

# One curl, N transfers, P at a time: a config with each transfer's options (`next` starts the
# next transfer afresh).
i=1
while [ $i -le "$N" ]; do
    [ $i -eq 1 ] || echo "next"
    echo "url = \"$URL/quantize-dequantize?$Q\""
    echo "upload-file = \"$F\""
    echo "request = \"POST\""
    echo 'header = "Content-Type: application/x-safetensors"'
    echo 'header = "Expect:"'
    [ -z "${QDQ_AUTH_TOKEN:-}" ] || echo "header = \"Authorization: Bearer $QDQ_AUTH_TOKEN\""
    echo 'write-out = "%{http_code}\n"'
    # Over the server's --max-checkpoint-inflight the answer is 503 with Retry-After: waited
    # out and sent again, as a client should.
    echo 'retry = 30'
    echo "output = \"$W/out.$i\""
    i=$((i + 1))
done >"$W/config"
t0=$(date +%s.%N)
curl --silent --parallel --parallel-max "$P" --config "$W/config" >"$W/codes" 2>"$W/err" || true
t1=$(date +%s.%N)

failed=$(grep -cv '^200$' "$W/codes" || true)
got=$(wc -l <"$W/codes")
[ "$got" -eq "$N" ] || failed=$((failed + N - got))
differ=0
first=""
i=1
while [ $i -le "$N" ]; do
    o=$W/out.$i
    if [ -s "$o" ] && [ -z "$first" ] && head -c 1 "$o" | od -An -c | grep -qv '{'; then
        first=$o
    fi
    i=$((i + 1))
done
if [ -n "$first" ]; then
    i=1
    while [ $i -le "$N" ]; do
        cmp -s "$first" "$W/out.$i" || differ=$((differ + 1))
        i=$((i + 1))
    done
else
    differ=$N
fi
awk -v n="$N" -v p="$P" -v b="$bytes" -v a="$t0" -v z="$t1" -v f="$failed" -v d="$differ" 'BEGIN {
    t = z - a; if (t <= 0) t = 1e-9
    printf "checkpoint: %d uploads of %.1f MiB, %d at a time: %.2f uploads/s, %.0f MiB/s each way, %d failed, %d answers differ from the first\n",
        n, b / 1048576, p, n / t, n * b / 1048576 / t, f, d }'
if [ "$failed" -gt 0 ]; then
    sort "$W/codes" | uniq -c | sed 's/^/  status /'
    head -c 300 "$W/err"
fi
[ "$failed" -eq 0 ] && [ "$differ" -eq 0 ]
