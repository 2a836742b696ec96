#!/bin/sh
# The contract test (tests/contract/validate.py): the exchanges logged in LOG... by the test
# clients (QDQ_CONTRACT_LOG, set by tests/run.sh) checked against docs/openapi.yaml, with
# Debian's python3 (python3-yaml, python3-jsonschema). The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
PY=""
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import yaml, jsonschema' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "FAIL: no python3 with yaml and jsonschema (Debian packages python3-yaml, python3-jsonschema)"
    echo "0 passed, 1 failed"
    exit 1
fi
exec "$PY" tests/contract/validate.py --spec docs/openapi.yaml "$@"
