#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages gradd needs to build, test
# and benchmark.  A fast no-op when everything is already installed: only the
# missing packages trigger `apt-get update` + `apt-get install`.
# Runs apt through sudo only when not root.
#   --build   only what building gradd and `make check` need (the build stage
#             of deploy/Dockerfile); the rest is for coverage, benchmarks,
#             tests/scaleout_test.sh (nginx) and tests/deploy_checks.sh.
set -euo pipefail

# libgraphviz-dev: the pictures of POST /v1/explain (configure --without-graphviz
# builds without it); its runtime part is libgvc6 (deploy/Dockerfile).
PACKAGES=(
    autoconf
    automake
    build-essential
    check
    curl
    gcovr
    libcurl4-openssl-dev
    libgnutls28-dev
    libgraphviz-dev
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

# tests/ui_browser.py drives the playground page (GET /) in Debian's chromium,
# headless, over the DevTools protocol; under CI a missing chromium fails it.
PACKAGES+=(
    chromium
)

# tests/openapi_check.py validates answers against docs/openapi.json with
# jsonschema; clients/python's tests (tests/python_client.sh) run on pytest
# and compare with NumPy (python3-numpy, above).
PACKAGES+=(
    python3-jsonschema
    python3-pytest
)

BUILD_PACKAGES=(
    autoconf
    automake
    build-essential
    check
    curl
    libcurl4-openssl-dev
    libgnutls28-dev
    libgraphviz-dev
    libjansson-dev
    libmicrohttpd-dev
    libopenblas-dev
    libsubunit-dev
    openssl
    pkg-config
    python3
)
# tests/openapi_check.py lints docs/openapi.json with npm's @redocly/cli
# (Debian ships no OpenAPI 3.1 validator); installed globally where npm is
# present (it comes with the nodejs package here) and reaches its registry, otherwise the check says it skipped the lint.
REDOCLY_VERSION=2.77.0
install_redocly() {
    [ "${1:-}" = --build ] && return 0
    command -v npm >/dev/null 2>&1 || return 0
    if [ "$(redocly --version 2>/dev/null | head -n 1)" = "$REDOCLY_VERSION" ]; then return 0; fi
    echo "install-deps: npm install -g @redocly/cli@$REDOCLY_VERSION"
    timeout 600 npm install -g --no-fund --no-audit "@redocly/cli@$REDOCLY_VERSION" ||
        echo "install-deps: npm could not install @redocly/cli; tests/openapi_check.py will skip the lint" >&2
}

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

# The offline Kubernetes schema validator of tests/deploy_checks.sh
# (kubernetes-models and yaml from npm, versions locked in
# tests/k8s-validate/package-lock.json); not for --build.
npm_deps() {
    local dir
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/k8s-validate
    [ "${1:-}" = --build ] && return 0
    [ -d "$dir/node_modules/kubernetes-models" ] && return 0
    command -v npm >/dev/null 2>&1 || { echo "install-deps: npm not found: $dir not installed" >&2; return 0; }
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    install_redocly "${1:-}"
    npm_deps "${1:-}"
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
install_redocly "${1:-}"
npm_deps "${1:-}"
