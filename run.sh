#!/bin/sh
# Builds qdq-server and starts it with working defaults (127.0.0.1:8080; see --help).
# Installs what is missing first (Debian/Ubuntu; as root or with sudo). Extra arguments go to
# the server:  ./run.sh --listen 0.0.0.0:8080 --workers 4
set -eu
cd "$(dirname "$0")"
sh scripts/install-deps.sh
make -j"$(nproc)" all
exec ./build/qdq-server "$@"
