#!/usr/bin/env bash
# deploy_checks.sh - offline checks of deploy/ (no Docker, no cluster).
#
# Usage: tests/deploy_checks.sh [path/to/gradd]   (default: $GRADD_BIN or build/gradd)
#
#  1. nginx -t on deploy/nginx/gradd.conf.template, rendered with compose's
#     values and with the loopback test's: valid and free of warnings;
#  2. systemd-analyze verify on deploy/gradd.service (a copy whose ExecStart
#     is the built binary, and gradd.1 on MANPATH for its Documentation=),
#     and `systemd-analyze security --offline` exposure at most 2.0 (of 10);
#  3. deploy/k8s rendered by tests/k8s_render.py (the part of kustomize it
#     uses; Debian ships no kubectl that can render it) and, where kubectl
#     exists, by `kubectl kustomize` too, both renderings equal; then the
#     rendered objects: validated against the Kubernetes schemas
#     (tests/k8s-validate, kubernetes-models from npm), the kinds, probes,
#     security context, resources, image, token Secret, Ingress TLS;
#  4. gradd itself accepts every GRADD_* value of deploy/gradd.env and
#     deploy/k8s/gradd.env;
#  5. the numbers agree: balancer timeout > deadline, balancer body limit =
#     --max-body, stop timeouts (systemd, compose, Kubernetes) > drain +
#     grace + 2 s, readiness probe interval x failures < drain;
#  6. the Dockerfile's runtime stage installs the package of every shared
#     library the built gradd needs (dpkg -S on its NEEDED entries).
# Prints one line per check; exits 1 if any failed.  Takes a few seconds.
#
# A check whose tool is missing (systemd-analyze, PyYAML, objdump) skips
# loudly outside CI; with CI=true (scripts/test.sh under CI) it fails instead,
# naming what to install: scripts/install-deps.sh installs all of them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GRADD=${1:-${GRADD_BIN:-$ROOT/build/gradd}}
[ -x "$GRADD" ] || { echo "deploy_checks: no gradd binary at $GRADD" >&2; exit 2; }
GRADD=$(cd "$(dirname "$GRADD")" && pwd)/$(basename "$GRADD")
D=$ROOT/deploy

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# skip WHAT: a check that cannot run here.  Under CI a skipped check is a
# failure: CI must run every check or say what is missing.
skip() {
    if [ "${CI:-}" = true ]; then
        bad "$* (CI=true: every check must run; scripts/install-deps.sh installs what it needs)"
    else
        skipped=$((skipped + 1))
        echo "skip $*"
        echo "deploy_checks: WARNING: check skipped: $*" >&2
    fi
}

# A Python with PyYAML for the structural checks (Debian: python3-yaml).
PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done

# ---------------------------------------------------------------------------
# 1. nginx: the template rendered as compose and as the loopback test do
# ---------------------------------------------------------------------------
nginx_check() {  # NAME, then NAME=value... for the template
    local name=$1 dir out
    shift
    dir=$TMP/nginx-${name// /-}
    mkdir -p "$dir"
    if ! out=$(python3 "$ROOT/tests/scaleout.py" render "$D/nginx/gradd.conf.template" "$dir/gradd.conf" "$@" 2>&1); then
        bad "deploy/nginx/gradd.conf.template ($name): $out"
        return
    fi
    cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
http {
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/gradd.conf;
}
EOF
    if out=$(nginx -t -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" 2>&1) &&
        ! grep -q -E '\[(warn|emerg|alert|crit|error)\]' <<<"$out"; then
        ok "nginx -t deploy/nginx/gradd.conf.template ($name)"
    else
        bad "nginx -t deploy/nginx/gradd.conf.template ($name):"
        echo "$out" | sed 's/^/     /'
    fi
}
# TLS at the edge as compose.tls.yaml mounts it: nginx/tls.conf with a
# self-signed pair made here (its paths pointed at the pair).
tls_conf_dir() {
    local dir=$TMP/tls
    mkdir -p "$dir/pair"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$dir/pair/tls.key" -out "$dir/pair/tls.crt" >/dev/null 2>&1 || return 1
    sed "s|/etc/nginx/gradd-tls/pair/|$dir/pair/|" "$D/nginx/tls.conf" >"$dir/tls.conf"
    grep -q "$dir/pair/tls.key" "$dir/tls.conf" || return 1
    echo "$dir/*.conf"
}
if command -v nginx >/dev/null 2>&1; then
    if command -v openssl >/dev/null 2>&1 && TLS_GLOB=$(tls_conf_dir); then
        nginx_check "compose values, TLS" GRADD_UPSTREAM=gradd:8080 GRADD_DNS=127.0.0.11 BALANCER_LISTEN=8080 \
            BALANCER_ACCESS_LOG=/dev/stdout BALANCER_TLS_CONF="$TLS_GLOB"
    else
        bad "deploy/nginx/tls.conf: openssl missing or the pair's paths are not /etc/nginx/gradd-tls/pair/"
    fi
    nginx_check "compose values" GRADD_UPSTREAM=gradd:8080 GRADD_DNS=127.0.0.11 BALANCER_LISTEN=8080 \
        BALANCER_ACCESS_LOG=/dev/stdout BALANCER_TLS_CONF=/etc/nginx/gradd-tls/*.conf
    nginx_check "loopback values" GRADD_UPSTREAM=gradd:18080 GRADD_DNS=127.0.0.1:15353 \
        BALANCER_LISTEN=127.0.0.1:18081 BALANCER_ACCESS_LOG="$TMP/access.log" BALANCER_TLS_CONF="$TMP/none/*.conf"
else
    bad "nginx not found (scripts/install-deps.sh installs it)"
fi

# docker-compose 1.29 (Debian 12), where installed, must accept the files
# (deploy/docker_test.sh installs it and runs them; Compose v2 likewise).
for dc in "docker-compose" "docker compose"; do
    # shellcheck disable=SC2086
    if $dc version >/dev/null 2>&1; then
        if out=$(cd "$D" && GRADD_TLS_DIR=$TMP $dc -p gradd -f compose.yaml -f compose.tls.yaml config -q 2>&1); then
            ok "$dc ($($dc version --short 2>/dev/null || true)) accepts compose.yaml + compose.tls.yaml"
        else
            bad "$dc rejects compose.yaml + compose.tls.yaml:"
            echo "$out" | sed 's/^/     /'
        fi
    else
        echo "info $dc not installed: compose files checked by the structural checks below only"
    fi
done

# ---------------------------------------------------------------------------
# 2. systemd
# ---------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$TMP/unit" "$TMP/man/man1"
    cp "$ROOT/man/gradd.1" "$TMP/man/man1/"
    grep -q '^ExecStart=/usr/local/bin/gradd ' "$D/gradd.service" ||
        bad "deploy/gradd.service: ExecStart is not /usr/local/bin/gradd"
    sed "s|^ExecStart=/usr/local/bin/gradd |ExecStart=$GRADD |" "$D/gradd.service" >"$TMP/unit/gradd.service"
    if out=$(MANPATH="$TMP/man" systemd-analyze verify "$TMP/unit/gradd.service" 2>&1) && [ -z "$out" ]; then
        ok "systemd-analyze verify deploy/gradd.service"
    else
        bad "systemd-analyze verify deploy/gradd.service:"
        echo "$out" | sed 's/^/     /'
    fi
    if out=$(systemd-analyze security --offline=true --threshold=20 "$TMP/unit/gradd.service" 2>&1); then
        ok "systemd-analyze security: $(echo "$out" | sed -n 's/.*Overall exposure level for gradd.service: //p')"
    else
        bad "systemd-analyze security: exposure over 2.0:"
        echo "$out" | grep -E '✗|Overall' | sed 's/^/     /'
    fi
else
    skip "systemd-analyze not found (Debian: systemd): deploy/gradd.service is not verified"
fi

# ---------------------------------------------------------------------------
# 3. Kubernetes
# ---------------------------------------------------------------------------
K8S_OUT=
if [ -n "$PY" ]; then
    if "$PY" "$ROOT/tests/k8s_render.py" "$D/k8s" >"$TMP/k8s.yaml" 2>"$TMP/k8s.err"; then
        ok "tests/k8s_render.py deploy/k8s ($(grep -c '^kind:' "$TMP/k8s.yaml") objects)"
        K8S_OUT=$TMP/k8s.yaml
    else
        bad "tests/k8s_render.py deploy/k8s:"
        sed 's/^/     /' "$TMP/k8s.err"
    fi
else
    skip "no python3 with PyYAML (Debian: python3-yaml): deploy/k8s is not rendered"
fi
# kubectl, where it exists, must render the same objects: deploy/README.md
# tells users to `kubectl apply -k deploy/k8s`, and the comparison keeps
# tests/k8s_render.py faithful to kustomize.
if command -v kubectl >/dev/null 2>&1; then
    kver=$(kubectl version --client 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
    if ! kubectl kustomize "$D/k8s" >"$TMP/k8s-kubectl.yaml" 2>"$TMP/k8s.err"; then
        bad "kubectl kustomize deploy/k8s ($kver):"
        sed 's/^/     /' "$TMP/k8s.err"
    elif [ -z "$K8S_OUT" ]; then
        ok "kubectl kustomize deploy/k8s ($(grep -c '^kind:' "$TMP/k8s-kubectl.yaml") objects)"
        K8S_OUT=$TMP/k8s-kubectl.yaml
    elif "$PY" "$ROOT/tests/k8s_render.py" "$D/k8s" --compare "$TMP/k8s-kubectl.yaml" >/dev/null 2>"$TMP/k8s.err"; then
        ok "kubectl kustomize deploy/k8s renders the same objects ($kver)"
    else
        bad "kubectl kustomize deploy/k8s and tests/k8s_render.py disagree ($kver):"
        sed 's/^/     /' "$TMP/k8s.err"
    fi
else
    echo "info kubectl not found: deploy/k8s rendered by tests/k8s_render.py alone"
fi

# Schema validation, offline: every rendered object against the Kubernetes
# OpenAPI schema of its kind (kubernetes-models from npm, installed by
# scripts/install-deps.sh into tests/k8s-validate/; kubeconform is not in
# Debian).
if [ -n "$K8S_OUT" ]; then
    if command -v node >/dev/null 2>&1 && [ -d "$ROOT/tests/k8s-validate/node_modules/kubernetes-models" ]; then
        if out=$(node "$ROOT/tests/k8s-validate/validate.mjs" "$K8S_OUT" 2>&1); then
            ok "deploy/k8s: $(grep -c '^ok' <<<"$out") objects valid against the Kubernetes schemas (kubernetes-models)"
        else
            bad "deploy/k8s: schema validation:"
            echo "$out" | sed 's/^/     /'
        fi
    else
        skip "no node or tests/k8s-validate/node_modules (scripts/install-deps.sh: npm ci there): deploy/k8s is not schema-validated"
    fi
fi

# ---------------------------------------------------------------------------
# 4. gradd accepts the env files (a bad value exits 2 before --version)
# ---------------------------------------------------------------------------
env_file_check() {
    local f=$1 unknown vars help
    mapfile -t vars < <(grep -E '^[A-Z_]+=' "$f")
    # read once: with pipefail, grep -q leaving early would fail the pipe
    # (SIGPIPE) as soon as --help is longer than one stdio buffer
    help=$("$GRADD" --help)
    unknown=$(grep -oE '^GRADD_[A-Z_]+' "$f" | while read -r v; do
        grep -qF "[$v;" <<<"$help" || echo "$v"; done)
    if [ -n "$unknown" ]; then
        bad "${f#"$ROOT"/}: not gradd variables: $unknown"
    elif out=$(env -i "${vars[@]}" "$GRADD" --version 2>&1); then
        ok "${f#"$ROOT"/}: ${#vars[@]} values accepted by gradd"
    else
        bad "${f#"$ROOT"/}: gradd rejects it: $out"
    fi
}
env_file_check "$D/gradd.env"
env_file_check "$D/k8s/gradd.env"

# ---------------------------------------------------------------------------
# 4b. The health check on "::" where the loopback has no IPv6 address (a
#     container with IPv6 off, as Docker's default bridge makes it): gradd's
#     dual-stack socket listens, and `gradd --healthcheck --host ::` must
#     reach it on 127.0.0.1 (the k8s env and `docker run -e GRADD_HOST=::`).
#     In a network namespace of its own (root: unshare -n).
# ---------------------------------------------------------------------------
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
    unshare -n true 2>/dev/null; then
    if out=$(unshare -n bash -c '
        ip link set lo up && sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 || exit 3
        "$0" --host :: --port 18080 --workers 1 2>/dev/null &
        for _ in $(seq 1 50); do
            "$0" --healthcheck --host 127.0.0.1 --port 18080 >/dev/null 2>&1 && break
            sleep 0.1
        done
        "$0" --healthcheck --host :: --port 18080 2>&1; rc=$?
        kill %1; wait; exit $rc' "$GRADD" 2>&1); then
        ok "gradd --healthcheck --host :: reaches a dual-stack gradd without an IPv6 loopback ($out)"
    else
        bad "gradd --healthcheck --host :: without an IPv6 loopback: $out"
    fi
else
    skip "not root, or no unshare/ip (Debian: util-linux, iproute2): --healthcheck on :: without IPv6 not checked"
fi

# ---------------------------------------------------------------------------
# 5. Numbers that must agree, and 3's structure
# ---------------------------------------------------------------------------
if [ -n "$PY" ]; then
    py_rc=0
    "$PY" - "$D" "$K8S_OUT" >"$TMP/py.out" 2>&1 <<'EOF' || py_rc=$?
import os, re, sys, yaml

d, k8s = sys.argv[1], sys.argv[2]
fails = []

def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        fails.append(msg)

def envfile(path):
    out = {}
    for ln in open(path):
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            k, v = ln.split("=", 1)
            out[k] = v
    return out

def size(v):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", v)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]

def secs(v):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(v).strip())
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]

# gradd's defaults, where an env file leaves a value out
DEFAULTS = {"GRADD_DRAIN_MS": "5000", "GRADD_GRACE_MS": "20000", "GRADD_DEADLINE_MS": "30000",
            "GRADD_MAX_BODY": "64M"}
FLUSH_S = 2  # gradd's wait for the last answers to leave (server/main.c)

def stop_need(env):
    e = dict(DEFAULTS, **env)
    return (int(e["GRADD_DRAIN_MS"]) + int(e["GRADD_GRACE_MS"])) / 1000 + FLUSH_S

genv = dict(DEFAULTS, **envfile(os.path.join(d, "gradd.env")))
tpl = open(os.path.join(d, "nginx", "gradd.conf.template")).read()

def nginx_size(v):
    m = re.fullmatch(r"(\d+)([kmg]?)", v.lower())
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]

# nginx against gradd.env
t_read = secs(re.search(r"^\s*proxy_read_timeout (\S+);", tpl, re.M).group(1))
check(t_read > int(genv["GRADD_DEADLINE_MS"]) / 1000,
      "nginx proxy_read_timeout %gs > GRADD_DEADLINE_MS %s" % (t_read, genv["GRADD_DEADLINE_MS"]))
body = re.search(r"^\s*client_max_body_size (\S+);", tpl, re.M).group(1)
check(nginx_size(body) == size(genv["GRADD_MAX_BODY"]),
      "nginx client_max_body_size %s = GRADD_MAX_BODY %s" % (body, genv["GRADD_MAX_BODY"]))
m = re.search(r'"The request body is larger than the limit of (\d+) bytes', tpl)
check(m is not None and int(m.group(1)) == size(genv["GRADD_MAX_BODY"]), "nginx 413 message names the limit")
nu = re.search(r"^\s*proxy_next_upstream (.*);", tpl, re.M).group(1).split()
check(all(k in nu for k in ("error", "timeout", "http_503", "non_idempotent")),
      "nginx retries another replica on error, timeout and 503, POSTs included")
check(re.search(r"^\s*proxy_pass http://\$gradd_upstream;", tpl, re.M) is not None
      and re.search(r"^resolver \$\{GRADD_DNS\} valid=\d+s", tpl, re.M) is not None,
      "nginx resolves the replicas per request (resolver + variable), so --scale is seen")

# Behind a balancer or an ingress every connection comes from its address:
# the per-address limits must give it the whole budget (docs/operations.md).
def per_ip_lifted(env, where):
    buffered = size(env["GRADD_MAX_BUFFERED"]) if "GRADD_MAX_BUFFERED" in env else 4 * size(env["GRADD_MAX_BODY"])
    per_ip = env.get("GRADD_MAX_BUFFERED_PER_IP")
    check(env.get("GRADD_MAX_CONNS_PER_IP") == "0" and per_ip is not None and size(per_ip) >= buffered,
          "%s: per-address limits lifted behind the proxy (GRADD_MAX_CONNS_PER_IP=0, "
          "GRADD_MAX_BUFFERED_PER_IP %s >= max-buffered %d)" % (where, per_ip, buffered))

per_ip_lifted(genv, "gradd.env")

# compose
comp = yaml.safe_load(open(os.path.join(d, "compose.yaml")))
g = comp["services"]["gradd"]
check(g.get("env_file") == "gradd.env", "compose: replicas read gradd.env")
check(g["deploy"]["replicas"] == 3, "compose: 3 replicas by default")
check(secs(g["stop_grace_period"]) > stop_need(genv),
      "compose stop_grace_period %s > drain + grace + %ds = %gs" % (g["stop_grace_period"], FLUSH_S, stop_need(genv)))
check(g["healthcheck"]["test"] == ["CMD", "gradd", "--healthcheck"], "compose: health check is gradd --healthcheck")
b = comp["services"]["balancer"]
check(b["depends_on"]["gradd"]["condition"] == "service_healthy", "compose: balancer waits for healthy replicas")
check("./nginx/gradd.conf.template:/etc/nginx/templates/gradd.conf.template:ro" in b["volumes"],
      "compose: balancer renders deploy/nginx/gradd.conf.template")
# docker-compose 1.29 (Debian 12) rejects a top-level name: (Compose v2 only)
check("name" not in comp and set(comp) <= {"services", "networks", "volumes", "configs", "secrets"},
      "compose: no top-level name: or version: (docker-compose 1.29 and Compose v2 both read it)")
tls = yaml.safe_load(open(os.path.join(d, "compose.tls.yaml")))
tb = tls["services"]["balancer"]
check("./nginx/tls.conf:/etc/nginx/gradd-tls/tls.conf:ro" in tb["volumes"]
      and any(v.endswith(":/etc/nginx/gradd-tls/pair:ro") for v in tb["volumes"])
      and b["environment"]["BALANCER_TLS_CONF"] == "/etc/nginx/gradd-tls/*.conf"
      and re.search(r"^listen 8443 ssl;", open(os.path.join(d, "nginx", "tls.conf")).read(), re.M) is not None
      and any(p.endswith(":8443") for p in tb["ports"]),
      "compose.tls.yaml: nginx terminates TLS on 8443 with the mounted pair")
ct = secs(re.search(r"^\s*proxy_connect_timeout (\S+);", tpl, re.M).group(1))
check(ct <= 1, "nginx proxy_connect_timeout %gs <= 1s (a removed replica's address hangs until it)" % ct)
used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", tpl))
check(used == set(b["environment"]), "compose: balancer sets exactly the template's variables %s" % sorted(used))
check(b["environment"]["GRADD_UPSTREAM"] == "gradd:%s" % genv.get("GRADD_PORT", "8080"),
      "compose: upstream gradd:%s matches GRADD_PORT" % genv.get("GRADD_PORT", "8080"))

# systemd (gradd's defaults plus the unit's Environment= lines)
unit = open(os.path.join(d, "gradd.service")).read()
uenv = dict(re.findall(r"^Environment=(GRADD_[A-Z_]+)=(\S+)", unit, re.M))
tstop = secs(re.search(r"^TimeoutStopSec=(\S+)", unit, re.M).group(1))
check(tstop > stop_need(uenv), "systemd TimeoutStopSec %gs > drain + grace + %ds = %gs" % (tstop, FLUSH_S, stop_need(uenv)))
for key in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "KillSignal=SIGTERM"):
    check(re.search("^" + key + "$", unit, re.M) is not None, "systemd unit has " + key)

# Dockerfile
df = open(os.path.join(d, "Dockerfile")).read()
check("bash scripts/install-deps.sh --build" in df, "Dockerfile: build stage uses scripts/install-deps.sh")
check(not re.search(r"^#\s*syntax\s*=", df, re.M | re.I),
      "Dockerfile: no '# syntax=' line (BuildKit would fetch a frontend image from a registry)")
check(re.search(r'^ENTRYPOINT \["gradd"\]$', df, re.M) is not None
      and re.search(r"^ENV GRADD_HOST=0\.0\.0\.0", df, re.M) is not None,
      "Dockerfile: bare ENTRYPOINT [\"gradd\"], address from ENV GRADD_HOST (so -e GRADD_HOST reaches the listener)")
check(re.search(r'^\s*CMD \["gradd-healthcheck"\]$', df, re.M) is not None
      and "COPY deploy/gradd-healthcheck /usr/local/bin/gradd-healthcheck" in df,
      "Dockerfile: HEALTHCHECK via gradd-healthcheck (gradd --healthcheck with the running gradd's flags)")
hc = open(os.path.join(d, "gradd-healthcheck")).read()
check("/cmdline" in hc and "--healthcheck" in hc and os.access(os.path.join(d, "gradd-healthcheck"), os.X_OK),
      "deploy/gradd-healthcheck: executable, probes with the flags of the running gradd")
rt = df[df.index(" AS runtime"):]
check("&& apt-get clean" in rt and "rm -rf /var/lib/apt/lists/*" in rt,
      "Dockerfile runtime stage: apt-get clean and lists removed (not left to the base image)")
check('CK_TIMEOUT_MULTIPLIER="$GD_TEST_TIME_SCALE"' in df and re.search(r"^ARG GD_TEST_TIME_SCALE=[3-9]", df, re.M),
      "Dockerfile build stage: make check with stretched timeouts (CK_TIMEOUT_MULTIPLIER, GD_TEST_TIME_SCALE >= 3)")
ua = re.search(r"&& useradd ([^\n]*(?:\\\n[^\n]*)*)", df).group(1)
uid = int(re.search(r"--uid (\d+)", ua).group(1))
check(uid >= 1000 and "--system" not in ua, "Dockerfile: useradd --uid %d without --system (no SYS_UID_MAX warning)" % uid)
base = re.search(r"^ARG DEBIAN_IMAGE=(\S+)", df, re.M).group(1)
check(re.fullmatch(r"debian:\d+\.\d+-slim(@sha256:[0-9a-f]{64})?", base) is not None and "@sha256:" in df,
      "Dockerfile: base pinned by Debian point release (%s), pinning by digest documented" % base)

# Kubernetes
if k8s:
    objs = [o for o in yaml.safe_load_all(open(k8s)) if o]
    kinds = {o["kind"]: o for o in objs}
    for k in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Ingress"):
        check(k in kinds, "k8s: a " + k)
    cm = kinds["ConfigMap"]["data"]
    per_ip_lifted(cm, "k8s ConfigMap")
    dep = kinds["Deployment"]["spec"]["template"]["spec"]
    c = dep["containers"][0]
    check(c["envFrom"][0]["configMapRef"]["name"] == kinds["ConfigMap"]["metadata"]["name"],
          "k8s: the container reads the ConfigMap")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "k8s: readinessProbe on /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "k8s: livenessProbe on /healthz")
    rp = c["readinessProbe"]
    check(rp["periodSeconds"] * rp["failureThreshold"] < int(cm["GRADD_DRAIN_MS"]) / 1000,
          "k8s: readiness notices the drain within %ds < GRADD_DRAIN_MS %s"
          % (rp["periodSeconds"] * rp["failureThreshold"], cm["GRADD_DRAIN_MS"]))
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    pre_s = int(pre[1]) if pre[0] == "sleep" else 0
    need = pre_s + stop_need(cm)
    check(dep["terminationGracePeriodSeconds"] > need,
          "k8s: terminationGracePeriodSeconds %d > preStop %ds + drain + grace + %ds = %gs"
          % (dep["terminationGracePeriodSeconds"], pre_s, FLUSH_S, need))
    check(dep["terminationGracePeriodSeconds"] > int(cm["GRADD_DEADLINE_MS"]) / 1000,
          "k8s: terminationGracePeriodSeconds > the compute deadline")
    sc, psc = c["securityContext"], dep["securityContext"]
    check(psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False and sc["capabilities"]["drop"] == ["ALL"],
          "k8s: non-root, read-only root, no privilege escalation, capabilities dropped")
    check(all(k in c["resources"].get(s, {}) for s in ("requests", "limits") for k in ("cpu", "memory")),
          "k8s: CPU and memory requests and limits")
    res = c["resources"]
    check(res["requests"] == res["limits"], "k8s: requests = limits (Guaranteed QoS): %s" % res["limits"])
    def k8s_mem(v):
        m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(v))
        return int(m.group(1)) * {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}[m.group(2)]
    cpus = float(str(res["limits"]["cpu"]).rstrip("m")) / (1000 if str(res["limits"]["cpu"]).endswith("m") else 1)
    workers = int(cm.get("GRADD_WORKERS", max(1, int(cpus))))
    buffered = size(cm["GRADD_MAX_BUFFERED"]) if "GRADD_MAX_BUFFERED" in cm else 4 * size(cm["GRADD_MAX_BODY"])
    worst = buffered + workers * size(cm["GRADD_MAX_MEMORY"])
    check(k8s_mem(res["limits"]["memory"]) >= worst + (256 << 20),
          "k8s: memory %s >= buffered %d MiB + %d workers x max-memory %s + 256 MiB for responses"
          % (res["limits"]["memory"], buffered >> 20, workers, cm["GRADD_MAX_MEMORY"]))
    img = c["image"]
    check("/" in img and "." in img.split("/")[0] and img.split("/")[0] != "docker.io",
          "k8s: image %s names a registry (a bare name resolves to a public registry's library)" % img)
    check("replicas" not in kinds["Deployment"]["spec"], "k8s: the Deployment sets no replicas (the HPA owns them)")
    check(cm.get("GRADD_HOST") == "::", "k8s: GRADD_HOST=:: (dual-stack: IPv4, IPv6-only and dual-stack clusters)")
    tok = [e for e in c.get("env", []) if e["name"] == "GRADD_TOKEN_FILE"]
    vols = {v["name"]: v for v in dep.get("volumes", [])}
    mnt = [m for m in c.get("volumeMounts", []) if tok and tok[0]["value"].startswith(m["mountPath"] + "/")]
    check(bool(tok and mnt and "secret" in vols.get(mnt[0]["name"], {}) and mnt[0].get("readOnly")
               and psc.get("fsGroup") == psc.get("runAsGroup")),
          "k8s: --token-file (GRADD_TOKEN_FILE) read from a Secret mounted read-only, readable by the pod's group")
    ing = kinds.get("Ingress")
    check(ing is not None and ing["spec"]["tls"][0]["secretName"]
          and ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == kinds["Service"]["metadata"]["name"],
          "k8s: an Ingress terminates TLS (secret %s) in front of the Service"
          % (ing["spec"]["tls"][0]["secretName"] if ing else None))
    hpa = kinds["HorizontalPodAutoscaler"]
    check(hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu",
          "k8s: HPA autoscaling/v2 on CPU")
    check(kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
          == kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
          "k8s: Service, Deployment and PDB select the same pods")
sys.exit(1 if fails else 0)
EOF
    cat "$TMP/py.out"
    passed=$((passed + $(grep -c '^ok ' "$TMP/py.out" || true)))
    failed=$((failed + $(grep -c '^FAIL' "$TMP/py.out" || true)))
    if [ "$py_rc" -ne 0 ] && ! grep -q '^FAIL' "$TMP/py.out"; then
        bad "the consistency checks stopped with status $py_rc (see above)"
    fi
else
    skip "no python3 with PyYAML (Debian: python3-yaml): consistency checks not run"
fi

# ---------------------------------------------------------------------------
# 6. Runtime libraries of the image
# ---------------------------------------------------------------------------
if command -v dpkg >/dev/null 2>&1 && command -v objdump >/dev/null 2>&1; then
    # The Debian package of a file, looked up as linked, resolved, and without
    # the /usr prefix (merged /usr: dpkg may know either spelling).
    owner() {
        local f r out
        r=$(readlink -f "$1")
        for f in "$1" "$r" "${r#/usr}" "/usr$1"; do
            if out=$(dpkg -S "$f" 2>/dev/null); then
                echo "${out%%:*}"
                return 0
            fi
        done
    }
    runtime=$(sed -n '/^FROM .* AS runtime/,$p' "$D/Dockerfile")
    # Libraries the build stage copies into /staging, which the runtime stage
    # takes whole (Graphviz's libgvc and two plugins, without the packages'
    # cairo/pango/libgd): their own NEEDED libraries must then be installed.
    staged=""
    grep -q '^COPY --from=build /staging/usr/lib/' <<<"$runtime" && staged=$(sed -n '1,/^FROM .* AS runtime/p' "$D/Dockerfile")
    # The path of a linked library: ldconfig's cache, else gradd's RUNPATH.
    lib_path() {
        local p rp
        p=$(ldconfig -p | awk -v l="$1" '$1 == l && !p { p = $NF } END { print p }')
        if [ -z "$p" ]; then
            for rp in $(objdump -p "$GRADD" | awk '$1 == "RUNPATH" || $1 == "RPATH" { gsub(":", " ", $2); print $2 }'); do
                [ -e "$rp/$1" ] && { p=$rp/$1; break; }
            done
        fi
        echo "$p"
    }
    missing=""
    mapfile -t needed < <(objdump -p "$GRADD" | awk '$1 == "NEEDED" { print $2 }')
    i=0
    while [ "$i" -lt "${#needed[@]}" ]; do
        lib=${needed[$i]}
        i=$((i + 1))
        path=$(lib_path "$lib")
        [ -n "$path" ] || { missing="$missing $lib(not found)"; continue; }
        if [ -n "$staged" ] && grep -q -F "/$lib" <<<"$staged"; then
            # copied: what it needs in turn is checked like gradd's own
            for dep in $(objdump -p "$path" | awk '$1 == "NEEDED" { print $2 }'); do
                printf '%s\n' "${needed[@]}" | grep -q -x -F "$dep" || needed+=("$dep")
            done
            continue
        fi
        pkg=$(owner "$path")
        case "$pkg" in
            libc6) ;;   # in every Debian image
            "") missing="$missing $lib(no package)" ;;
            *) grep -q -E "^\s+$pkg( |\\\\|$)" <<<"$runtime" || missing="$missing $lib($pkg)" ;;
        esac
    done
    if [ -z "$missing" ]; then
        ok "Dockerfile runtime stage installs every library gradd links"
    else
        bad "Dockerfile runtime stage lacks:$missing"
    fi
else
    skip "dpkg or objdump not found (Debian: binutils): the image's runtime libraries are not checked"
fi

echo "deploy_checks: $passed passed, $failed failed, $skipped skipped"
[ "$skipped" -eq 0 ] || echo "deploy_checks: WARNING: $skipped check(s) skipped (see 'skip' above); under CI=true they fail" >&2
[ "$failed" -eq 0 ]
