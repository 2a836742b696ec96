#!/bin/sh
# Whole checkpoints (tests/checkpoint/test_checkpoint.py) against $QDQ_SERVER (default
# build/qdq-server) and the qdq beside it, with Debian's python3 (python3-numpy,
# python3-requests). The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$PWD/$SERVER ;; esac
PY=""
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import numpy, requests' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "FAIL: no python3 with numpy and requests (Debian packages python3-numpy, python3-requests)"
    echo "0 passed, 1 failed"
    exit 1
fi
QDQ_SERVER=$SERVER exec "$PY" tests/checkpoint/test_checkpoint.py
