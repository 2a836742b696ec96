#!/bin/sh
# The contract test (tests/contract/validate.py): the exchanges logged in LOG... by the test
# clients (QDQ_CONTRACT_LOG, set by tests/run.sh) checked against docs/openapi.yaml, with
# Debian's python3 (python3-yaml, python3-jsonschema). The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/python.sh
python_or_fail "yaml and jsonschema (Debian packages python3-yaml, python3-jsonschema)" yaml jsonschema
exec "$PY" tests/contract/validate.py --spec docs/openapi.yaml "$@"
