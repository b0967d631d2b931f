#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages gradd needs to build, test
# and benchmark.  A fast no-op when everything is already installed: only the
# missing packages trigger `apt-get update` + `apt-get install`.
# Runs apt through sudo only when not root.
set -euo pipefail

PACKAGES=(
    autoconf
    automake
    build-essential
    check
    gcovr
    libcurl4-openssl-dev
    libjansson-dev
    libmicrohttpd-dev
    libopenblas-dev
    libsubunit-dev
    pkg-config
    python3-numpy
    python3-torch
)
# HTTP load testing / reverse proxy for the server benchmarks; uncomment
# when bench/ and deploy/ start using them:
# PACKAGES+=(nginx wrk)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-deps: not root and sudo not found; install as root:" >&2
    echo "  apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
