#!/bin/sh
# Builds everything and runs every test: unit, HTTP black-box, in a normal and a sanitizer
# (ASan+UBSan) build. Installs what is missing first (Debian/Ubuntu; as root or with sudo).
# The last line is the total: "N passed, N failed".
set -eu
cd "$(dirname "$0")"
sh scripts/install-deps.sh --dev
exec make test
