#!/bin/sh
# Installs what qdq-server needs on Debian bookworm: the build and runtime libraries, and, with
# --dev, the tools the tests and benchmarks use. Idempotent: installs only what is missing.
# Must run as root (or with sudo available).
set -eu

# The container engine tests/deploy/test_container.sh runs the image under: podman with runc
# (crun refuses hybrid cgroups), netavark and aardvark-dns (compose's service names), catatonit
# (--init), podman-compose, and debootstrap to make the base image without a registry.
ENGINE="podman runc uidmap slirp4netns containernetworking-plugins netavark aardvark-dns \
fuse-overlayfs catatonit podman-compose debootstrap"
RUNTIME="libmicrohttpd12 libuv1 libcjson1 zlib1g libstdc++6 libgrpc29 libprotobuf-c1"
BUILD="build-essential pkg-config libmicrohttpd-dev libuv1-dev libcjson-dev zlib1g-dev \
libdragonbox-dev libfast-float-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler help2man"
DEV="curl libcurl4-openssl-dev clang libclang-rt-14-dev wrk libeigen3-dev python3 ca-certificates \
prometheus openssl nginx yamllint python3-numpy python3-requests python3-kubernetes python3-yaml \
python3-grpcio python3-protobuf protobuf-compiler nghttp2-client python3-jsonschema \
python3-grpc-tools groff-base $ENGINE"
# The OpenAPI linter (package.json): Debian's nodejs and npm, unless a node with its own npm is
# there already (NodeSource's nodejs package bundles npm and conflicts with Debian's).
command -v npm >/dev/null 2>&1 || DEV="$DEV nodejs npm"

want="$RUNTIME $BUILD"
npm_ci=""
case "${1:-}" in
  --dev) want="$want $DEV"; npm_ci=1 ;;
  --runtime) want="$RUNTIME" ;;
  "") ;;
  *) echo "usage: $0 [--dev|--runtime]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# --dev: the npm packages of package-lock.json (the OpenAPI linter) into node_modules/ at the
# repository root, as the user running this (not root through sudo). npm ci prefers its cache,
# so after a first install it needs no network; skipped when node_modules holds this very lock.
npm_install() {
    [ -n "$npm_ci" ] || return 0
    root=$(cd "$(dirname "$0")/.." && pwd)
    [ -f "$root/package-lock.json" ] || return 0
    stamp=$root/node_modules/.qdq-lock.sha256
    sum=$(sha256sum <"$root/package-lock.json")
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 0
    echo "installing: npm packages of package-lock.json" >&2
    if (cd "$root" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "$sum" >"$stamp"
    else # the tests that need it say so (tests/deploy/test_openapi.sh)
        echo "warning: npm ci failed: the OpenAPI linter is not installed" >&2
    fi
}

if [ -z "$missing" ]; then
    npm_install
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages with services (nginx, prometheus) must not start them: tests run their own copies.
added_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
fi
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
[ -z "$added_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
npm_install
