#!/usr/bin/env bash
# scaleout_test.sh - gradd replicas behind the compose balancer, on loopback.
#
# Usage: tests/scaleout_test.sh [path/to/gradd]   (default: $GRADD_BIN or build/gradd)
#
# Runs nginx with deploy/nginx/gradd.conf.template, rendered as the nginx
# image renders it for deploy/compose.yaml; only the upstream addresses (and
# the listening address and log path) differ: the replicas' name resolves
# through a small DNS server (tests/scaleout.py dns, standing in for Docker's
# 127.0.0.11) to loopback addresses 127.0.0.2-5, where gradd replicas run
# with deploy/gradd.env.
#   1. three replicas A B C, the balancer, 16 clients sending a bounded mixed
#      load (tests/scaleout.py load: every response checked for its own
#      correct answer);
#   2. at 15 % of the load, with requests in flight on A (its gradd_in_flight
#      gauge > 0): SIGKILL A;
#   3. at 30 %, with requests in flight on B: SIGTERM B (it finishes the
#      requests in flight, turns new ones from the balancer away with 503
#      during its drain, which nginx replays on another replica, then stops
#      accepting and exits 0);
#   4. at 45 %: a fourth replica D starts and its address is added to the
#      DNS answer, as `docker compose up --scale gradd=4` would do.
# Passes when every client request got its correct answer (no 502, no
# connection error), B exited 0 having finished requests after its SIGTERM,
# and the balancer's access log shows every request, the load spread over
# A, B, C and D, retries on another replica, and B leaving the rotation while
# it drained (a 503 from B replayed elsewhere).  No Docker needed.
# Needs nginx, curl and python3 (standard library); takes about 20 s.
#
# GD_TEST_TIME_SCALE (default 1; see tests/http_harness.h) stretches every
# wait of this script by that factor: the polls for a replica to become
# healthy, for the DNS stand-in, the balancer, the load's progress and a
# request in flight, and the load's own time limits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GRADD=${1:-${GRADD_BIN:-$ROOT/build/gradd}}
[ -x "$GRADD" ] || { echo "scaleout_test: no gradd binary at $GRADD" >&2; exit 2; }
GRADD=$(cd "$(dirname "$GRADD")" && pwd)/$(basename "$GRADD")
for tool in nginx curl python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "scaleout_test: '$tool' not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
done
export OPENBLAS_NUM_THREADS=1
PY=python3
CLIENTS=${SCALEOUT_CLIENTS:-16}
REQUESTS=${SCALEOUT_REQUESTS:-6000}
# scaled N: N stretched by GD_TEST_TIME_SCALE (never shrunk), rounded up.
scaled() {
    awk -v n="$1" -v s="${GD_TEST_TIME_SCALE:-1}" \
        'BEGIN { if (s + 0 < 1) s = 1; v = n * s; printf "%d", (v == int(v)) ? v : int(v) + 1 }'
}

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "scaleout_test: logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

die() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last 15 lines) ----" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}
note() { echo "scaleout_test: $*"; }
now_ms() { date +%s%3N; }

# A TCP port free on every loopback address we use (bound on 0.0.0.0).
free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}

# The replicas run with the compose settings, listening on their own address.
set -a
# shellcheck source=deploy/gradd.env
. "$ROOT/deploy/gradd.env"
set +a
PORT=$(free_port)
LB_PORT=$(free_port)
declare -A ADDR=([A]=127.0.0.2 [B]=127.0.0.3 [C]=127.0.0.4 [D]=127.0.0.5)
declare -A PID

# start_replica NAME: gradd on ADDR[NAME]:PORT, healthy per `gradd --healthcheck`.
start_replica() {
    local name=$1 addr=${ADDR[$1]}
    "$GRADD" --host "$addr" --port "$PORT" --workers 1 --blas-threads 1 2>"$TMP/gradd-$name.log" &
    PID[$name]=$!
    PIDS+=("$!")
    for _ in $(seq 1 "$(scaled 100)"); do
        if "$GRADD" --healthcheck --host "$addr" --port "$PORT" >/dev/null 2>&1; then return 0; fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    die "replica $name did not become healthy on $addr:$PORT"
}

# in_flight NAME: the replica's gradd_in_flight gauge (requests being computed).
in_flight() {
    curl -s --max-time 2 "http://${ADDR[$1]}:$PORT/metrics" | sed -n 's/^gradd_in_flight \([0-9]*\)$/\1/p'
}

# signal_in_flight NAME SIG: send SIG once the replica has a request in flight.
signal_in_flight() {
    local name=$1 sig=$2 n
    for _ in $(seq 1 "$(scaled 500)"); do
        n=$(in_flight "$name")
        if [ "${n:-0}" -gt 0 ]; then
            kill -"$sig" "${PID[$name]}"
            note "SIG$sig replica $name (${ADDR[$name]}) with $n request(s) in flight"
            return 0
        fi
        sleep 0.01
    done
    die "replica $name never had a request in flight"
}

# wait_progress FRACTION_PERCENT: until the load has answered that share.
wait_progress() {
    local want=$(( REQUESTS * $1 / 100 )) got=0
    for _ in $(seq 1 "$(scaled 3000)"); do
        [ -f "$TMP/progress" ] && read -r got _ <"$TMP/progress"
        [ "$got" -ge "$want" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || die "the load ended before $1 % (at $got requests)"
        sleep 0.02
    done
    die "the load did not reach $1 % in time"
}

# ---------------------------------------------------------------------------
# DNS, replicas, balancer
# ---------------------------------------------------------------------------
printf '%s\n' "${ADDR[A]}" "${ADDR[B]}" "${ADDR[C]}" >"$TMP/addrs"
$PY "$ROOT/tests/scaleout.py" dns --name gradd --addr-file "$TMP/addrs" \
    --port-file "$TMP/dns.port" --max-seconds "$(scaled 300)" 2>"$TMP/dns.log" &
PIDS+=("$!")
for _ in $(seq 1 "$(scaled 100)"); do [ -f "$TMP/dns.port" ] && break; sleep 0.05; done
[ -f "$TMP/dns.port" ] || die "the DNS stand-in did not start"
DNS_PORT=$(cat "$TMP/dns.port")

for r in A B C; do start_replica "$r"; done
note "replicas A B C on ${ADDR[A]} ${ADDR[B]} ${ADDR[C]} port $PORT (gradd.env: drain ${GRADD_DRAIN_MS} ms)"

# The template as the nginx image renders it, inside a minimal nginx.conf
# (the image's own nginx.conf plays this part in compose).  nginx's workers
# may run as "nobody": they need to reach the temp directories.
chmod 755 "$TMP"
$PY "$ROOT/tests/scaleout.py" render "$ROOT/deploy/nginx/gradd.conf.template" "$TMP/gradd.conf" \
    GRADD_UPSTREAM="gradd:$PORT" GRADD_DNS="127.0.0.1:$DNS_PORT" \
    BALANCER_LISTEN="127.0.0.1:$LB_PORT" BALANCER_ACCESS_LOG="$TMP/access.log" \
    BALANCER_TLS_CONF="$TMP/no-tls/*.conf"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/balancer-error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    include $TMP/gradd.conf;
}
EOF
nginx -t -q -e "$TMP/balancer-error.log" -p "$TMP" -c "$TMP/nginx.conf" || die "nginx -t failed"
nginx -e "$TMP/balancer-error.log" -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
LB_PID=$!
PIDS+=("$LB_PID")
LB="http://127.0.0.1:$LB_PORT"

# Ready when requests through the balancer reached each of A, B and C.
seen=""
for _ in $(seq 1 "$(scaled 200)"); do
    kill -0 "$LB_PID" 2>/dev/null || die "nginx exited"
    curl -s --max-time 2 -o /dev/null "$LB/readyz" || true
    seen=$(sed -n 's|.*"GET /readyz [^"]*" 200 .* upstream="\(127\.0\.0\.[0-9]*\):[0-9]*".*|\1|p' \
        "$TMP/access.log" 2>/dev/null | sort -u | tr '\n' ' ')
    [ "$(echo "$seen" | wc -w)" -ge 3 ] && break
    sleep 0.02
done
[ "$(echo "$seen" | wc -w)" -ge 3 ] || die "the balancer did not reach all three replicas (saw: $seen)"
note "balancer on $LB reaches replicas $seen"

# ---------------------------------------------------------------------------
# Load, with a SIGKILL, a SIGTERM and a scale-out in the middle
# ---------------------------------------------------------------------------
T0=$(now_ms)
$PY "$ROOT/tests/scaleout.py" load --url "$LB" --clients "$CLIENTS" --requests "$REQUESTS" \
    --progress "$TMP/progress" --max-seconds "$(scaled 240)" --timeout "$(scaled 60)" >"$TMP/load.out" 2>&1 &
LOAD_PID=$!

wait_progress 15
signal_in_flight A KILL
wait_progress 30
signal_in_flight B TERM
T_TERM=$(now_ms)
wait_progress 45
start_replica D
echo "${ADDR[D]}" >>"$TMP/addrs"
note "replica D started on ${ADDR[D]} and added to the DNS answer (scale-out)"

load_rc=0
wait "$LOAD_PID" || load_rc=$?
T1=$(now_ms)
cat "$TMP/load.out"
[ "$load_rc" -eq 0 ] || die "the load generator reported failures (exit $load_rc)"
grep -q "\"answered\": $REQUESTS," "$TMP/load.out" || die "not every request was answered"

# B drains, stops accepting, finishes and exits 0 by itself.
b_state="still draining"
kill -0 "${PID[B]}" 2>/dev/null || b_state="already stopped"
b_rc=0
wait "${PID[B]}" || b_rc=$?
[ "$b_rc" -eq 0 ] || die "replica B exited $b_rc after SIGTERM"
after_term=$(sed -n '/received Terminated/,$p' "$TMP/gradd-B.log" | grep '"route":"/v1/' | grep -c '"status":200' || true)
turned_away=$(sed -n '/received Terminated/,$p' "$TMP/gradd-B.log" | grep '"route":"/v1/' | grep -c '"status":503' || true)
[ "$after_term" -gt 0 ] || die "replica B finished no request after its SIGTERM"
note "replica B exited 0 (it was $b_state when the load ended, $(( T1 - T_TERM )) ms after its SIGTERM); after the signal it finished $after_term request(s) in flight and turned $turned_away new one(s) away for another replica"

kill -QUIT "$LB_PID" 2>/dev/null || true   # graceful stop; the log is written per request
wait "$LB_PID" 2>/dev/null || true

# ---------------------------------------------------------------------------
# The balancer's access log: one line per client request, the replicas tried
# in upstream="a, b" (a retry when there is more than one), their statuses.
# ---------------------------------------------------------------------------
grep '"POST /v1/' "$TMP/access.log" >"$TMP/access.txt" || true
$PY - "$TMP/access.txt" "$REQUESTS" "${ADDR[A]}" "${ADDR[B]}" "${ADDR[C]}" "${ADDR[D]}" <<'EOF' || die "access log check failed"
import re, sys
path, total, addrs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
line_re = re.compile(r'"POST /v1/\S+ HTTP/1\.1" (\d+) \d+ rt=\S+ id="(sc-\d+)" upstream="([^"]*)" ustatus="([^"]*)"')
per_addr, statuses, retried, ids = {}, {}, [], set()
for ln in open(path):
    m = line_re.search(ln)
    if not m:
        print("unparsed access log line: " + ln.strip())
        sys.exit(1)
    status, rid, ups, ustat = m.groups()
    tried = [u.strip().rsplit(":", 1)[0] for u in ups.split(",")]
    answered = tried[-1]
    per_addr[answered] = per_addr.get(answered, 0) + 1
    statuses[status] = statuses.get(status, 0) + 1
    ids.add(rid)
    if len(tried) > 1:
        retried.append((rid, ups, ustat, status))
names = dict(zip(addrs, "ABCD"))
print("access log: %d requests; answered by replica: %s; by status: %s; retried on another replica: %d"
      % (len(ids), ", ".join("%s=%d" % (names.get(a, a), n) for a, n in sorted(per_addr.items())),
         statuses, len(retried)))
for r in retried[:4]:
    print('  retried: id %s upstream="%s" ustatus="%s" -> %s' % r)
ok = True
if len(ids) != total:
    print("FAIL: %d distinct requests in the access log, want %d" % (len(ids), total)); ok = False
bad = {s: n for s, n in statuses.items() if s not in ("200", "400", "422")}
if bad:
    print("FAIL: statuses other than 200/400/422 reached clients: %s" % bad); ok = False
for a in addrs:
    if per_addr.get(a, 0) < 20:
        print("FAIL: replica %s (%s) answered %d requests: the load was not spread" % (names[a], a, per_addr.get(a, 0)))
        ok = False
if not retried:
    print("FAIL: no retry in the access log"); ok = False
# B drained: the balancer met its 503 (Gradd-Drain-Retry) and replayed the
# request on another replica, i.e. B left the rotation before it stopped
# accepting.
b = addrs[1]
drained = [r for r in retried
           if [u.strip().rsplit(":", 1)[0] for u in r[1].split(",")][0] == b and r[2].split(",")[0].strip() == "503"]
print("replica B (draining) turned away %d request(s), each replayed on another replica" % len(drained))
if not drained:
    print("FAIL: no request was turned away by the draining replica B: it stayed in the rotation"); ok = False
sys.exit(0 if ok else 1)
EOF

note "load ran $(( T1 - T0 )) ms"
echo "scaleout_test: 1 passed, 0 failed"
