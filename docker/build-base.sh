#!/usr/bin/env bash
# The base image with no registry: a minimal Debian root filesystem (debootstrap), loaded with
# `docker import` as mimi-base:local. Needs root, debootstrap and a Docker engine.
# Usage: docker/build-base.sh [WORKDIR]   (env: SUITE, MIRROR, BASE_IMAGE)
set -euo pipefail
workdir=${1:-${TMPDIR:-/tmp}/mimi-base}
# The Debian release of this machine (and its Debian mirror, not a third-party repository), so the image's python3 matches the one the wheel is tested with.
suite=${SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")}
mirror=${MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}
base_image=${BASE_IMAGE:-mimi-base:local}

rootfs="$workdir/rootfs"
rm -rf "$rootfs"
mkdir -p "$workdir"
start=$(date +%s)
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$rootfs" "$mirror"
apt-get -o RootDir="$rootfs" clean 2>/dev/null || rm -rf "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs"/var/lib/apt/lists/*
echo "debootstrap $suite from $mirror: $(( $(date +%s) - start ))s"
start=$(date +%s)
tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$base_image"
echo "docker import $base_image: $(( $(date +%s) - start ))s"
docker image ls "$base_image"
