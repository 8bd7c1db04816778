#!/usr/bin/env bash
# Build the reference SUT image (mimi-reference-sut:local) from this checkout, FROM mimi-base:local
# (docker/build-base.sh), with no image registry: the project's wheel, and its dependencies from the
# package index pip uses on this machine. Usage: docker/build-image.sh [IMAGE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
image=${1:-mimi-reference-sut:local}
python=${PYTHON:-python3}

start=$(date +%s)
rm -rf "$here/dist"
(cd "$root" && "$python" -m pip wheel --quiet --no-deps -w "$here/dist" .)
echo "wheel: $(( $(date +%s) - start ))s"

# pip's own settings here (pip config, /etc/pip.conf, PIP_*): its index and the CA bundle it trusts.
index=$("$python" -m pip config get global.index-url 2>/dev/null || true)
index=${PIP_INDEX_URL:-${index:-https://pypi.org/simple}}
cert=$("$python" -m pip config get global.cert 2>/dev/null || true)
cert=${PIP_CERT:-${cert:-/etc/ssl/certs/ca-certificates.crt}}
cp "$cert" "$here/pip-ca.pem"

start=$(date +%s)
# Host networking for the build: the index is reached as from this machine.
docker build --network host --build-arg PIP_INDEX_URL="$index" -t "$image" "$here"
echo "docker build $image: $(( $(date +%s) - start ))s"
rm -f "$here/pip-ca.pem"
docker image ls "$image"
