#!/usr/bin/env bash
# A Docker engine for the image connector: use the running one, or, as root with apt-get, install
# Debian's docker.io (and debootstrap, for docker/build-base.sh) and start dockerd in the background.
# Exits non-zero, saying why, when there is no engine and none can be had here.
set -euo pipefail
log=${DOCKERD_LOG:-${TMPDIR:-/tmp}/dockerd.log}
if docker info >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "no Docker engine here, and no root apt-get to install one" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
# Its own session: the engine must outlive this script, make, and the shell that ran them.
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 30s (its log: $log)" >&2
exit 1
