#!/usr/bin/env bash
# docker_test.sh - build the image of deploy/Dockerfile and run it, alone and
# as the compose stack of deploy/compose.yaml: what deploy/README.md promises.
#
# Usage: deploy/docker_test.sh            (from anywhere; root, or a docker group user)
#
#  0. an engine: Debian's docker.io (and docker-compose) is installed when
#     docker is absent; dockerd is started when none answers, and stopped at
#     the end (only the one this script started);
#  1. the base image: the Dockerfile's FROM (ARG DEBIAN_IMAGE) if present or
#     pullable, else made here with `debootstrap --variant=minbase bookworm`
#     and `docker import`, tagged as FROM names it: the host's Debian apt
#     sources are copied in, slim's dpkg excludes (no docs, man pages,
#     locales) set, and nothing else of the host (resolv.conf, hostname,
#     apt lists and caches are removed).  The rootfs tarball is kept in
#     $GRADD_DOCKER_CACHE (default /var/cache/gradd-docker-test) when that
#     directory exists, and reused from there;
#  2. docker build (BuildKit where the client has it; the build stage runs
#     `make check` unless DOCKER_TEST_MAKE_CHECK=0); the image size is at most
#     IMAGE_BUDGET_MB (180);
#  3. the container, run --read-only --cap-drop ALL: healthy per its
#     HEALTHCHECK, /healthz, /readyz, /v1/ops, a gradient and a picture answered right,
#     runs as uid 10001 with no capabilities and an unwritable root,
#     GRADD_HOST=:: and a --port flag still healthy (the health check probes
#     what gradd listens on), and `docker stop` drains (/readyz 503 while
#     /healthz 200) and exits 0;
#  4. the compose stack (docker compose v2, else docker-compose v1), 3
#     replicas behind nginx with deploy/compose.tls.yaml (TLS at the edge, a
#     self-signed pair made here): HTTP and HTTPS answered, then the
#     scale-out load (tests/scaleout.py) through the balancer while one
#     replica is SIGKILLed (docker kill) mid-load: every request answered
#     correctly, none lost.
#     The balancer is nginx:1.26 if present or pullable, else an image made
#     here from the base image and Debian's nginx, rendering the templates as
#     the nginx image does (envsubst of /etc/nginx/templates/*.template).
# Prints one line per check and `N passed, M failed`; exits 1 if any failed.
# Skips (exit 0, saying why) only when no engine can be had (no docker and no
# way to install it, or dockerd does not start here).  Removes the containers,
# images, networks and volumes it made, except the base image (kept, tagged
# as FROM names it; the stand-in nginx image is rebuilt each run).  Takes about 10-15 minutes on 2 CPUs, most of it the image build.
#
# DOCKER_TEST_GVC=1 also reports what Graphviz's libgvc6 adds to the runtime
# image (installed with --no-install-recommends in a throw-away container).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE_BUDGET_MB=${IMAGE_BUDGET_MB:-180}
CACHE=${GRADD_DOCKER_CACHE:-/var/cache/gradd-docker-test}
TAG=gradd-test:$$
NGINX_LOCAL=gradd-test-nginx:bookworm
P=gradd-test-$$            # container name / compose project prefix
export OPENBLAS_NUM_THREADS=1
scale=${GD_TEST_TIME_SCALE:-1}
scaled() { awk -v n="$1" -v s="$scale" 'BEGIN { if (s + 0 < 1) s = 1; printf "%d", n * s + 0.999 }'; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
note() { echo "docker_test: $*"; }
check() {  # check DESCRIPTION COMMAND...: ok/bad on the command's status
    local what=$1; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
skip_all() {
    echo "docker_test: SKIP: $*"
    echo "docker_test: 0 passed, 0 failed, 1 skipped"
    exit 0
}

TMP=$(mktemp -d)
STARTED_DOCKERD=
COMPOSE=()
CONTAINERS=()
cleanup() {
    set +e
    if [ "${#COMPOSE[@]}" -gt 0 ]; then
        "${COMPOSE[@]}" down -v --remove-orphans -t 1 >/dev/null 2>&1
    fi
    for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
    docker image rm -f "$TAG" "$NGINX_LOCAL" >/dev/null 2>&1
    docker image prune -f --filter "label=gradd.test=$$" >/dev/null 2>&1
    if [ -n "$STARTED_DOCKERD" ]; then
        kill -TERM "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.2; done
        note "stopped the dockerd it started (pid $STARTED_DOCKERD)"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "docker_test: interrupted"; exit 143' TERM INT

# ---------------------------------------------------------------------------
# 0. engine
# ---------------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        note "installing Debian's docker.io and docker-compose"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            docker.io docker-compose >"$TMP/apt.log" 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                docker.io docker-compose >"$TMP/apt.log" 2>&1; } ||
            skip_all "docker is absent and apt-get install docker.io failed: $(tail -n 2 "$TMP/apt.log")"
    elif ! command -v docker >/dev/null 2>&1; then
        skip_all "no docker client, and not root with apt-get to install docker.io"
    fi
fi
# Debian's client matches Debian's engine (and has BuildKit without buildx).
DOCKER_BIN=$(command -v docker)
[ -x /usr/bin/docker ] && [ -x /usr/sbin/dockerd ] && DOCKER_BIN=/usr/bin/docker
docker() { "$DOCKER_BIN" "$@"; }

if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null 2>&1 || skip_all "no Docker engine answers and there is no dockerd to start"
    [ "$(id -u)" = 0 ] || skip_all "no Docker engine answers and only root can start dockerd"
    note "starting dockerd (log: $TMP/dockerd.log)"
    dockerd >"$TMP/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 "$(scaled 60)"); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        tail -n 5 "$TMP/dockerd.log" | sed 's/^/  dockerd: /'
        skip_all "dockerd does not start on this machine (see its log above)"
    fi
fi
note "engine: $(docker version -f 'client {{.Client.Version}}, server {{.Server.Version}}' 2>/dev/null)"

# ---------------------------------------------------------------------------
# 1. base image
# ---------------------------------------------------------------------------
BASE=$(sed -n 's/^ARG DEBIAN_IMAGE=\(.*\)$/\1/p' deploy/Dockerfile | head -n 1)
[ -n "$BASE" ] || { bad "deploy/Dockerfile: no ARG DEBIAN_IMAGE=..."; exit 1; }

# have_image NAME: present, or pulled within 30 s.
have_image() {
    docker image inspect "$1" >/dev/null 2>&1 && return 0
    timeout 30 "$DOCKER_BIN" pull -q "$1" >/dev/null 2>&1
}

# The host's Debian apt sources (those a Debian image can verify: no third
# parties, whose keys the image lacks).
copy_apt_sources() {
    local root=$1 f
    rm -f "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -s "$f" ] || continue
        if grep -qE '^[^#]*(debian-archive-keyring|/debian(-security)?/?( |$))' "$f"; then
            cp "$f" "$root$f"
        else
            note "not copied into the base image (not a Debian archive): $f"
        fi
    done
}

make_base() {
    local dir=$TMP/rootfs tarball=$CACHE/bookworm-minbase.tar mirror
    if [ -s "$tarball" ]; then
        note "base image $BASE from the cached rootfs $tarball"
    else
        command -v debootstrap >/dev/null 2>&1 ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >"$TMP/apt.log" 2>&1 ||
            return 1
        mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
                 2>/dev/null | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 || true)
        mirror=${mirror% }
        note "base image $BASE: debootstrap --variant=minbase bookworm from ${mirror:-the default mirror}"
        debootstrap --variant=minbase bookworm "$dir" ${mirror:+"$mirror"} >"$TMP/debootstrap.log" 2>&1 ||
            { tail -n 5 "$TMP/debootstrap.log"; return 1; }
        copy_apt_sources "$dir"
        # As debian:*-slim: no docs, man pages or locales from later installs,
        # apt keeps no caches.
        cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
        printf '%s\n' 'APT::Install-Recommends "false";' >"$dir/etc/apt/apt.conf.d/docker-no-recommends"
        find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
        rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
               "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
               "$dir"/var/log/* "$dir"/debootstrap "$dir"/tmp/* "$dir"/root/.bash_history
        # Nothing of the host: Docker mounts its own resolv.conf, hostname, hosts.
        : >"$dir/etc/resolv.conf"
        echo localhost >"$dir/etc/hostname"
        printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
        rm -f "$dir/etc/machine-id" && : >"$dir/etc/machine-id"
        tarball=$TMP/rootfs.tar
        tar -C "$dir" --numeric-owner -cf "$tarball" . || return 1
        # Nothing of the host left: no name server, no apt lists, no logs.
        if tar -xOf "$tarball" ./etc/resolv.conf | grep -q . ||
           tar -tf "$tarball" | grep -qE '^\./var/lib/apt/lists/[^/]+_|^\./var/log/.+|^\./debootstrap/'; then
            echo "docker_test: the rootfs still holds host files" >&2
            return 1
        fi
        rm -rf "$dir"
        if [ -d "$CACHE" ] && [ -w "$CACHE" ]; then
            cp "$tarball" "$CACHE/bookworm-minbase.tar" && note "rootfs cached in $CACHE"
        fi
    fi
    docker import -c 'CMD ["bash"]' "$tarball" "$BASE" >/dev/null
}

if have_image "$BASE"; then
    ok "base image $BASE present or pulled"
elif make_base; then
    ok "base image $BASE made locally (debootstrap, docker import: $(docker image inspect -f '{{.Size}}' "$BASE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
else
    bad "base image $BASE: not pullable, and debootstrap failed"
    echo "docker_test: $passed passed, $failed failed"
    exit 1
fi
# ---------------------------------------------------------------------------
# 2. image build
# ---------------------------------------------------------------------------
BUILD_ENV=()
# BuildKit where the client has it built in (Debian's 20.10) or as buildx:
# the Dockerfile must not need a registry for its frontend (no # syntax=).
if "$DOCKER_BIN" buildx version >/dev/null 2>&1 || "$DOCKER_BIN" version -f '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
    BUILD_ENV=(DOCKER_BUILDKIT=1)
fi
t0=$(date +%s)
# --no-cache: every run builds from the sources, as on a fresh machine.
if env "${BUILD_ENV[@]}" "$DOCKER_BIN" build --no-cache --network host -f deploy/Dockerfile -t "$TAG" \
        --label "gradd.test=$$" \
        --build-arg "GRADD_MAKE_CHECK=${DOCKER_TEST_MAKE_CHECK:-1}" \
        --build-arg "GD_TEST_TIME_SCALE=$(scaled 3)" . >"$TMP/build.log" 2>&1; then
    ok "docker build -f deploy/Dockerfile ($(( $(date +%s) - t0 )) s, ${BUILD_ENV[*]:-legacy builder})"
else
    bad "docker build -f deploy/Dockerfile:"
    # make check's failures (Check's ":F:"/":E:" lines, the FAIL summary) first:
    # test-suite.log, printed by the Dockerfile, puts them far above the tail.
    grep -E ':[FE]:|^#[0-9]+ [0-9.]+ (FAIL|ERROR):|FAIL |Assertion' "$TMP/build.log" | head -n 40 | sed 's/^/     /'
    tail -n 40 "$TMP/build.log" | sed 's/^/     /'
    echo "docker_test: $passed passed, $failed failed"
    exit 1
fi
size=$(docker image inspect -f '{{.Size}}' "$TAG")
size_mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
check "image size $size_mb MB <= budget $IMAGE_BUDGET_MB MB" awk -v s="$size" -v b="$IMAGE_BUDGET_MB" 'BEGIN { exit !(s <= b * 1e6) }'

# ---------------------------------------------------------------------------
# 3. one container
# ---------------------------------------------------------------------------
GRAD_BODY='{"graph": {"nodes": [{"name": "x", "op": "variable"}, {"name": "t", "op": "input"},
  {"name": "d", "op": "sub", "inputs": ["x", "t"]}, {"name": "l", "op": "square", "inputs": ["d"]},
  {"name": "s", "op": "sum", "inputs": ["l"]}]}, "values": {"x": [1, 2], "t": [0, 0]}, "target": "s"}'

# run_gradd NAME [docker run args...] -- [gradd args...]: start a hardened container.
run_gradd() {
    local name=$P-$1; shift
    local dargs=() gargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do dargs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    gargs=("$@")
    CONTAINERS+=("$name")
    docker run -d --name "$name" --read-only --cap-drop ALL --security-opt no-new-privileges \
        --cpus 1 "${dargs[@]}" "$TAG" "${gargs[@]}" >/dev/null
}
# health NAME: the container's health status.
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$P-$1" 2>/dev/null; }
wait_healthy() {
    local s=
    for _ in $(seq 1 "$(scaled 60)"); do
        s=$(health "$1")
        [ "$s" = healthy ] && return 0
        [ "$(docker inspect -f '{{.State.Running}}' "$P-$1" 2>/dev/null)" = true ] || break
        sleep 1
    done
    echo "     $1: health '$s'; last log lines:"
    docker logs --tail 5 "$P-$1" 2>&1 | sed 's/^/     /'
    return 1
}
host_port() { docker port "$P-$1" "$2/tcp" | sed -n 's/^0\.0\.0\.0:\([0-9]*\)$/\1/p; s/^127\.0\.0\.1:\([0-9]*\)$/\1/p' | head -n 1; }

t0=$(date +%s)
run_gradd main -p 127.0.0.1::8080 -- || bad "docker run (main)"
if wait_healthy main; then
    ok "container healthy (HEALTHCHECK gradd-healthcheck) in $(( $(date +%s) - t0 )) s"
else
    bad "container did not become healthy"
fi
PORT=$(host_port main 8080 || true)
U=http://127.0.0.1:$PORT
check "GET /healthz 200" curl -sf --max-time 5 -o /dev/null "$U/healthz"
check "GET /readyz 200" curl -sf --max-time 5 -o /dev/null "$U/readyz"
check "GET /v1/ops lists ops" sh -c "curl -sf --max-time 5 '$U/v1/ops' | grep -q '\"matmul\"'"
grad=$(curl -s --max-time 10 "$U/v1/grad" -H 'Content-Type: application/json' -d "$GRAD_BODY" || true)
check "POST /v1/grad: d/dx sum((x-t)^2) at x=[1,2], t=0 is [2,4]" \
    python3 -c 'import json, sys; g = json.loads(sys.argv[1]); sys.exit(0 if g["gradients"]["x"] == [2, 4] else 1)' "$grad"
svg=$(curl -s --max-time 20 "$U/v1/explain" -H 'Content-Type: application/json' -d "$GRAD_BODY" || true)
check "POST /v1/explain: an SVG drawn by the image's Graphviz (libgvc and its two plugins)" \
    sh -c 'case "$1" in *"<svg"*"</svg>"*) exit 0 ;; *) exit 1 ;; esac' _ "$svg"
check "runs as uid 10001, not root" sh -c "[ \"\$(docker exec $P-main id -u)\" = 10001 ]"
check "no capabilities (CapEff 0)" sh -c "docker exec $P-main grep -q '^CapEff:[[:space:]]*0*\$' /proc/1/status"
check "read-only root: writing / and /usr fails" sh -c "! docker exec $P-main sh -c 'touch /x || touch /usr/x' 2>/dev/null"

# The health check probes what gradd listens on, whatever the settings: the
# address from GRADD_HOST (IPv6 wildcard) and the port from a flag.
run_gradd v6 -e GRADD_HOST=:: -- || bad "docker run -e GRADD_HOST=::"
check "GRADD_HOST=:: : healthy (listens and is probed on ::)" wait_healthy v6
run_gradd flags -- --port 9000 --workers 1 || bad "docker run ... --port 9000"
check "--port 9000 as a flag: healthy (the health check follows the flag)" wait_healthy flags
check "--port 9000 as a flag: /healthz answers on 9000" \
    docker exec "$P-flags" gradd --healthcheck --port 9000

# docker stop: SIGTERM, drain (readyz 503, healthz 200, still serving), exit 0.
docker stop -t 45 "$P-main" >/dev/null 2>&1 &
stop_pid=$!
drain_seen=
for _ in $(seq 1 "$(scaled 100)"); do
    r=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$U/readyz" || true)
    if [ "$r" = 503 ]; then
        h=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$U/healthz" || true)
        drain_seen="readyz 503, healthz $h"
        break
    fi
    sleep 0.05
done
check "docker stop: gradd drains (${drain_seen:-no 503 from /readyz seen})" test "$drain_seen" = "readyz 503, healthz 200"
wait "$stop_pid" || true
check "docker stop: exit code 0 within the stop timeout" \
    test "$(docker inspect -f '{{.State.ExitCode}}' "$P-main")" = 0
check "docker stop: the log says it drained and stopped" \
    sh -c "docker logs $P-main 2>&1 | grep -q 'stopped'"

if [ "${DOCKER_TEST_GVC:-0}" = 1 ]; then
    # What Graphviz's renderer library adds (issue 11): installed on top of
    # the runtime image, apt lists removed, then the committed size compared.
    # Prints the packages it added, largest first (dpkg's Installed-Size, KiB).
    if docker run --name "$P-gvc" --user 0 --network host --entrypoint sh "$TAG" -c \
        'dpkg-query -W -f "\${Package}\n" | sort >/tmp/before
         apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libgvc6 >/dev/null \
         && apt-get clean && rm -rf /var/lib/apt/lists/* || exit 1
         dpkg-query -W -f "\${Package}\t\${Installed-Size}\n" | sort >/tmp/after
         cut -f1 /tmp/after | comm -13 /tmp/before - | while read -r p; do grep "^$p	" /tmp/after; done \
           | sort -t "	" -k2,2nr | awk -F "	" "{ printf \"  %-28s %6.1f MB\\n\", \$1, \$2 / 1024 }"' \
        >"$TMP/gvc.log" 2>&1; then
        docker commit "$P-gvc" "$TAG-gvc" >/dev/null
        gsize=$(docker image inspect -f '{{.Size}}' "$TAG-gvc")
        note "with libgvc6: $(awk -v s="$gsize" -v b="$size" 'BEGIN { printf "%.1f MB (+%.1f MB)", s / 1e6, (s - b) / 1e6 }'); the packages it adds:"
        cat "$TMP/gvc.log"
        docker image rm -f "$TAG-gvc" >/dev/null
    else
        note "libgvc6 could not be installed: $(tail -n 2 "$TMP/gvc.log")"
    fi
    docker rm -f "$P-gvc" >/dev/null 2>&1 || true
fi
for c in main v6 flags; do docker rm -f "$P-$c" >/dev/null 2>&1 || true; done

# ---------------------------------------------------------------------------
# 4. compose: 3 replicas behind nginx, TLS at the edge, a replica killed
# ---------------------------------------------------------------------------
if "$DOCKER_BIN" compose version >/dev/null 2>&1; then
    COMPOSE_CMD=("$DOCKER_BIN" compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
else
    bad "no docker compose (v2) nor docker-compose (v1)"
    echo "docker_test: $passed passed, $failed failed"
    exit 1
fi
note "compose: $("${COMPOSE_CMD[@]}" version --short 2>/dev/null || "${COMPOSE_CMD[@]}" version | head -n 1)"

BALANCER=nginx:1.26
if ! have_image "$BALANCER"; then
    # Debian's nginx, rendering /etc/nginx/templates/*.template into conf.d
    # with envsubst of the variables set, as the nginx image does.
    BALANCER=$NGINX_LOCAL
    mkdir -p "$TMP/nginx-image"
    cat >"$TMP/nginx-image/entrypoint.sh" <<'EOF'
#!/bin/sh
set -eu
vars=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
for t in /etc/nginx/templates/*.template; do
    [ -f "$t" ] || continue
    envsubst "$vars" <"$t" >"/etc/nginx/conf.d/$(basename "$t" .template)"
done
exec "$@"
EOF
    cat >"$TMP/nginx-image/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light gettext-base \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \\
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["sh", "/entrypoint.sh"]
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
    if docker build --network host -t "$BALANCER" "$TMP/nginx-image" >"$TMP/nginx-build.log" 2>&1; then
        note "balancer image: $BALANCER (Debian's nginx; nginx:1.26 cannot be pulled here)"
    else
        bad "building the stand-in balancer image:"
        tail -n 20 "$TMP/nginx-build.log" | sed 's/^/     /'
    fi
fi

# A self-signed pair for the edge, made here.
mkdir -p "$TMP/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/tls/tls.key" -out "$TMP/tls/tls.crt" >/dev/null 2>&1
chmod 644 "$TMP/tls/tls.key" "$TMP/tls/tls.crt"
chmod 755 "$TMP" "$TMP/tls"

LB_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TLS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COMPOSE=("${COMPOSE_CMD[@]}" -p "gradd-test-$$" -f deploy/compose.yaml -f deploy/compose.tls.yaml)
export GRADD_IMAGE=$TAG BALANCER_IMAGE=$BALANCER BALANCER_PORT=127.0.0.1:$LB_PORT \
    BALANCER_TLS_PORT=127.0.0.1:$TLS_PORT GRADD_TLS_DIR=$TMP/tls
t0=$(date +%s)
if "${COMPOSE[@]}" up -d --no-build >"$TMP/compose-up.log" 2>&1; then
    ok "compose up: 3 replicas + balancer ($(( $(date +%s) - t0 )) s)"
else
    bad "compose up:"
    tail -n 20 "$TMP/compose-up.log" | sed 's/^/     /'
fi
replicas() {
    docker ps -q --filter "label=com.docker.compose.project=gradd-test-$$" \
        --filter label=com.docker.compose.service=gradd
}
check "compose: 3 gradd replicas running" test "$(replicas | wc -l)" = 3
LB=http://127.0.0.1:$LB_PORT
for _ in $(seq 1 "$(scaled 60)"); do curl -sf --max-time 2 -o /dev/null "$LB/readyz" && break; sleep 0.5; done
check "compose: GET /v1/ops through the balancer" sh -c "curl -sf --max-time 5 '$LB/v1/ops' | grep -q '\"matmul\"'"
tls_grad=$(curl -s --max-time 10 --cacert "$TMP/tls/tls.crt" "https://localhost:$TLS_PORT/v1/grad" \
    --resolve "localhost:$TLS_PORT:127.0.0.1" -H 'Content-Type: application/json' -d "$GRAD_BODY" || true)
check "compose: POST /v1/grad over HTTPS (TLS at the balancer, self-signed pair) answered right" \
    python3 -c 'import json, sys; g = json.loads(sys.argv[1]); sys.exit(0 if g["gradients"]["x"] == [2, 4] else 1)' "$tls_grad"

# The scale-out load through nginx; one replica SIGKILLed mid-load.
REQUESTS=${DOCKER_TEST_REQUESTS:-2000}
python3 tests/scaleout.py load --url "$LB" --clients 8 --requests "$REQUESTS" \
    --progress "$TMP/progress" --max-seconds "$(scaled 300)" --timeout "$(scaled 60)" >"$TMP/load.out" 2>&1 &
load_pid=$!
killed=
for _ in $(seq 1 "$(scaled 3000)"); do
    got=0
    [ -f "$TMP/progress" ] && read -r got _ <"$TMP/progress"
    if [ "$got" -ge $(( REQUESTS / 3 )) ]; then
        victim=$(replicas | head -n 1)
        docker kill "$victim" >/dev/null && killed="replica ${victim:0:12} SIGKILLed at $got of $REQUESTS requests"
        note "$killed"
        break
    fi
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.05
done
load_rc=0
wait "$load_pid" || load_rc=$?
cat "$TMP/load.out"
check "compose: a replica was killed mid-load (${killed:-not reached})" test -n "$killed"
check "compose: every one of $REQUESTS requests answered right through nginx: 0 lost" \
    sh -c "[ $load_rc = 0 ] && grep -q '\"answered\": $REQUESTS,' '$TMP/load.out' && grep -q '\"failures\": 0,' '$TMP/load.out'"
"${COMPOSE[@]}" logs --no-color balancer 2>/dev/null | grep -c 'ustatus="50[23], 200"' >"$TMP/retries" || true
note "balancer log: $(cat "$TMP/retries") request(s) retried on another replica after a failed one"
t0=$(date +%s)
if "${COMPOSE[@]}" down -v --remove-orphans >"$TMP/compose-down.log" 2>&1; then
    ok "compose down ($(( $(date +%s) - t0 )) s: replicas drained and stopped)"
else
    bad "compose down:"
    tail -n 10 "$TMP/compose-down.log" | sed 's/^/     /'
fi
COMPOSE=()

echo "docker_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
