#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages gradd needs to build, test
# and benchmark.  A fast no-op when everything is already installed: only the
# missing packages trigger `apt-get update` + `apt-get install`.
# Runs apt through sudo only when not root.
#   --build   only what building gradd and `make check` need (the build stage
#             of deploy/Dockerfile); the rest is for coverage, benchmarks,
#             tests/scaleout_test.sh (nginx) and tests/deploy_checks.sh.
set -euo pipefail

PACKAGES=(
    autoconf
    automake
    build-essential
    check
    curl
    gcovr
    libcurl4-openssl-dev
    libgnutls28-dev
    libjansson-dev
    libmicrohttpd-dev
    libopenblas-dev
    libsubunit-dev
    nginx
    openssl
    pkg-config
    python3-mpmath
    python3-numpy
    python3-torch
    python3-yaml
)
# tests/deploy_checks.sh: systemd-analyze verify/security on deploy/gradd.service
# (under CI a missing tool fails the check).  deploy/k8s is rendered by
# tests/k8s_render.py (python3-yaml): Debian 12's kubectl (kubernetes-client
# 1.20, kustomize v2) cannot read it, and Debian ships no kustomize.
PACKAGES+=(
    systemd
)
# bench/http_bench.sh (`make bench-http`): wrk drives the load; the FastAPI +
# PyTorch peer runs on uvicorn with uvloop + httptools (uvicorn[standard]'s
# stack; bare asyncio with --workers leaves Nagle on, see bench/http_bench.sh).
PACKAGES+=(
    python3-fastapi
    python3-httptools
    python3-uvicorn
    python3-uvloop
    wrk
)

# make fuzz (scripts/test.sh's fuzzing step): clang with libFuzzer's runtime
# (libclang_rt.fuzzer, in libclang-rt-14-dev on Debian 12).
PACKAGES+=(
    clang
    libclang-rt-14-dev
)

# tests/readme_examples.py runs the documentation's JavaScript client
# (examples/js/grad.mjs) with node; under CI a missing node fails make check.
PACKAGES+=(
    nodejs
)
# clients/js (the TypeScript package) and examples/ts are built with Debian's
# tsc (no npm download), tested by tests/js_client.py; examples/shell is
# curl + jq.  Under CI a missing tsc or jq fails make check.
PACKAGES+=(
    jq
    node-typescript
)

BUILD_PACKAGES=(
    autoconf
    automake
    build-essential
    check
    curl
    libcurl4-openssl-dev
    libgnutls28-dev
    libjansson-dev
    libmicrohttpd-dev
    libopenblas-dev
    libsubunit-dev
    openssl
    pkg-config
    python3
)
case "${1:-}" in
    --build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
    "") ;;
    *) echo "install-deps: unknown argument '$1' (only --build)" >&2; exit 2 ;;
esac

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
