#!/bin/sh
# Install, from Debian's packages, whatever opx needs to build, test and run
# that is not already present. Idempotent: a second run installs nothing.
# Usage: scripts/install-deps.sh        (as root, or with sudo available)
set -eu

PACKAGES="
  build-essential cmake pkg-config make git
  libcli11-dev libfmt-dev nlohmann-json3-dev
  libhdf5-dev hdf5-tools
  libfftw3-dev
  libserialport-dev
  libboost-test-dev
  libxrl-dev
  libeigen3-dev
  libvalijson-dev
  python3 python3-numpy python3-h5py python3-jsonschema python3-pymca5 python3-xraylib
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages:$missing; run as root to install them" >&2
    exit 77
  fi
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are absent or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
  $SUDO apt-get update -qq
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done" >&2
