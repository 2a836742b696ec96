#!/bin/sh
# Whole checkpoints (tests/checkpoint/test_checkpoint.py) against $QDQ_SERVER (default
# build/qdq-server) and the qdq beside it, with Debian's python3 (python3-numpy,
# python3-requests). The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$PWD/$SERVER ;; esac
. tests/lib/python.sh
python_or_fail "numpy and requests (Debian packages python3-numpy, python3-requests)" numpy requests
QDQ_SERVER=$SERVER exec "$PY" tests/checkpoint/test_checkpoint.py
