#!/usr/bin/env bash
# server_smoke.sh - end-to-end smoke test of the gradd binary with curl.
#
# Usage: tests/server_smoke.sh [path/to/gradd]      (default: $GRADD or ./gradd)
#
# Starts gradd instances on free loopback ports (--port 0, the port is read
# from the "listening" log line) and checks every endpoint and every status
# the server itself produces: the contract's /v1/grad example, /v1/eval,
# /v1/ops, /healthz, /readyz, /metrics, 400, 401, 404, 405, 413 (by
# Content-Length and chunked), 422, 503 (queue full, by real saturation),
# 504 (a large matmul with a small deadline_ms, and a job expiring in the
# queue), binary framing both ways, X-Request-Id, CORS preflight, the JSON
# log, bad flags (exit 2), --healthcheck, and a SIGTERM drain with a
# request in flight (answered 200, exit 0). Finally every server log is
# searched for sanitizer reports, so the script also serves ASan/TSan builds.
# Needs curl and python3 (standard library only).
set -euo pipefail

GRADD=${1:-${GRADD:-./gradd}}
GRADD=$(cd "$(dirname "$GRADD")" && pwd)/$(basename "$GRADD")
[ -x "$GRADD" ] || { echo "server_smoke: no gradd binary at $GRADD" >&2; exit 2; }
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
PY=${PYTHON:-python3}

TMP=$(mktemp -d)
PIDS=()
checks=0
fails=0

cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi; }
# check_has NAME NEEDLE HAYSTACK
check_has() { case "$3" in *"$2"*) pass ;; *) fail "$1: [$2] not in [${3:0:400}]" ;; esac; }

# start NAME ARGS...: run gradd in the background, log to $TMP/NAME.log;
# sets PORT and PID once it listens.
start() {
    local name=$1
    shift
    "$GRADD" --port 0 "$@" 2>"$TMP/$name.log" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9]*\) .*|\1|p' "$TMP/$name.log" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server_smoke: gradd $name did not start:" >&2
    cat "$TMP/$name.log" >&2
    exit 1
}

# stop PID: SIGTERM and wait; the exit status goes to RC.
stop() {
    kill -TERM "$1"
    RC=0
    wait "$1" || RC=$?
}

# req URL [curl args...]: status code on stdout; body in $TMP/body, headers in $TMP/headers.
req() {
    local url=$1
    shift
    curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" "$url" || true
}
hdr() { grep -i "^$1:" "$TMP/headers" | tail -1 | cut -d' ' -f2- | tr -d '\r' || true; }
# jq-like: jget FILE PY_EXPR (d is the parsed JSON) -> compact JSON
jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2]), separators=(",", ":")))' "$1" "$2" 2>/dev/null || echo "<not json>"; }

# ---- request bodies ----------------------------------------------------------
cat >"$TMP/ex.json" <<'EOF'
{
  "graph": {"nodes": [
    {"name": "x",    "op": "variable", "shape": [3]},
    {"name": "b",    "op": "variable"},
    {"name": "t",    "op": "input"},
    {"name": "two",  "op": "constant", "value": 2.0},
    {"name": "d",    "op": "sub",  "inputs": ["x", "t"]},
    {"name": "p",    "op": "pow",  "inputs": ["d", "two"]},
    {"name": "sg",   "op": "stop_gradient", "inputs": ["b"]},
    {"name": "s",    "op": "add",  "inputs": ["p", "sg"]},
    {"name": "loss", "op": "sum",  "inputs": ["s"]}
  ]},
  "values": {"x": [1, 2, 3], "b": [0.5, 0.5, 0.5], "t": [0, 1, 0]},
  "target": "loss",
  "fetch": ["d"]
}
EOF
cat >"$TMP/ex_expected.json" <<'EOF'
{
  "target": {"loss": 12.5},
  "gradients": {"x": [2.0, 2.0, 6.0], "b": null},
  "values": {"d": [1.0, 1.0, 3.0]},
  "diagnostics": [
    {"code": "stop_gradient", "severity": "error", "wrt": "b",
     "message": "No gradient for 'b': its only path to 'loss' passes through stop_gradient node 'sg'.",
     "blocked_at": [{"node": "sg", "op": "stop_gradient", "reason": "stop_gradient", "input": 0}],
     "path": ["b", "sg", "s", "loss"],
     "hint": "Remove 'sg' (stop_gradient) if 'b' should receive a gradient."}
  ],
  "stats": {"nodes": 9, "forward_us": 12, "backward_us": 20, "queue_us": 3, "total_us": 61, "peak_bytes": 4096}
}
EOF
# matmul of [N,N] ones-ish matrices built from a scalar: big compute, tiny body.
matmul_body() { # N DEADLINE_MS
    printf '{"graph":{"nodes":[{"name":"a","op":"variable"},{"name":"A","op":"broadcast_to","inputs":["a"],"shape":[%d,%d]},{"name":"M","op":"matmul","inputs":["A","A"]},{"name":"M2","op":"matmul","inputs":["M","A"]},{"name":"l","op":"sum","inputs":["M2"]}]},"values":{"a":0.001},"target":"l","deadline_ms":%d}' "$1" "$1" "$2"
}
matmul_body 1500 100 >"$TMP/mm_fast_deadline.json"
matmul_body 1500 60000 >"$TMP/mm_slow.json"

# ---- server A: the plain endpoints ---------------------------------------------
start A --max-body 65536 --workers 1 --queue 2 --drain-ms 1000 --grace-ms 10000
A_PID=$PID A=http://127.0.0.1:$PORT

check "grad status" 200 "$(req "$A/v1/grad" --data-binary @"$TMP/ex.json" -H 'Content-Type: application/json')"
check "grad content type" "application/json" "$(hdr Content-Type)"
check "contract example body (stats values aside)" True "$($PY - "$TMP/body" "$TMP/ex_expected.json" <<'EOF'
import json, sys
got, exp = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
gs, es = got.pop("stats"), exp.pop("stats")
print(got == exp and list(gs) == list(es) and all(isinstance(v, int) for v in gs.values()))
EOF
)"
check "X-Request-Id generated" 16 "$(hdr X-Request-Id | tr -d '\n' | wc -c)"
req "$A/v1/grad" --data-binary @"$TMP/ex.json" -H 'X-Request-Id: smoke-req-42' >/dev/null
check "X-Request-Id echoed" "smoke-req-42" "$(hdr X-Request-Id)"
req "$A/v1/grad" --data-binary @"$TMP/ex.json" -H "X-Request-Id: has space" >/dev/null
check "X-Request-Id with a space replaced" 16 "$(hdr X-Request-Id | tr -d '\n' | wc -c)"

check "eval status" 200 "$(req "$A/v1/eval" --data-binary @"$TMP/ex.json")"
check "eval values" '{"d":[1.0,1.0,3.0]}' "$(jget "$TMP/body" 'd["values"]')"

check "healthz" 200 "$(req "$A/healthz")"
check "healthz body" '{"status":"ok"}' "$(cat "$TMP/body")"
check "HEAD healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$A/healthz")"
check "readyz" 200 "$(req "$A/readyz")"
check "readyz body" '{"status":"ready"}' "$(cat "$TMP/body")"
check "ops" 200 "$(req "$A/v1/ops")"
check "ops has matmul" true "$(jget "$TMP/body" '"matmul" in [o["name"] for o in d["ops"]]')"

check "400 invalid_json" 400 "$(req "$A/v1/grad" --data-binary '{"graph": ')"
check "400 code" '"invalid_json"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check "400 unknown_op" 400 "$(req "$A/v1/grad" --data-binary '{"graph":{"nodes":[{"name":"x","op":"variable"},{"name":"y","op":"sqaure","inputs":["x"]}]},"values":{"x":1},"target":"y"}')"
check "unknown_op body" '["unknown_op","$.graph.nodes[1].op","square"]' \
    "$(jget "$TMP/body" '[d["error"]["code"], d["error"]["at"], d["error"]["suggestion"]]')"
check "422 no_gradients" 422 "$(req "$A/v1/grad" --data-binary '{"graph":{"nodes":[{"name":"x","op":"variable"},{"name":"y","op":"stop_gradient","inputs":["x"]}]},"values":{"x":1},"target":"y"}')"
check "422 body" '["no_gradients","stop_gradient"]' "$(jget "$TMP/body" '[d["error"]["code"], d["error"]["diagnostics"][0]["code"]]')"

check "404" 404 "$(req "$A/v2/nothing")"
check "404 code" '"not_found"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check "404 is JSON" "application/json" "$(hdr Content-Type)"
check "405 GET /v1/grad" 405 "$(req "$A/v1/grad")"
check "405 code" '"method_not_allowed"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check "405 Allow" "POST, OPTIONS" "$(hdr Allow)"
check "405 POST /healthz" 405 "$(req "$A/healthz" --data-binary 'x')"
check "405 Allow GET" "GET, HEAD, OPTIONS" "$(hdr Allow)"
check "OPTIONS without CORS" 204 "$(req "$A/v1/grad" -X OPTIONS)"

head -c 70000 /dev/zero | tr '\0' ' ' >"$TMP/big.txt"
check "413 by Content-Length" 413 "$(req "$A/v1/grad" --data-binary @"$TMP/big.txt")"
check "413 code" '"too_large"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check "413 chunked" 413 "$(req "$A/v1/grad" --data-binary @"$TMP/big.txt" -H 'Transfer-Encoding: chunked')"
check "413 chunked code" '"too_large"' "$(jget "$TMP/body" 'd["error"]["code"]')"

# Binary framing both ways: x travels as raw float64, the answer comes back framed.
$PY - "$TMP/bin_req" <<'EOF'
import json, struct, sys
doc = json.load(open(sys.argv[1].replace("bin_req", "ex.json")))
doc["values"]["x"] = {"shape": [3], "dtype": "float64", "offset": 0, "nbytes": 24}
doc["tensor_format"] = "binary"
j = json.dumps(doc).encode()
open(sys.argv[1], "wb").write(j + struct.pack("<3d", 1, 2, 3))
open(sys.argv[1] + ".len", "w").write(str(len(j)))
EOF
check "binary framing" 200 "$(req "$A/v1/grad" --data-binary @"$TMP/bin_req" -H 'Content-Type: application/vnd.gradd.v1+binary' -H "Gradd-Json-Length: $(cat "$TMP/bin_req.len")")"
check "binary response type" "application/vnd.gradd.v1+binary" "$(hdr Content-Type)"
check "binary response tensors" "[2.0, 2.0, 6.0] [1.0, 1.0, 3.0]" "$($PY - "$TMP/body" "$(hdr Gradd-Json-Length)" <<'EOF'
import json, struct, sys
body, n = open(sys.argv[1], "rb").read(), int(sys.argv[2])
doc, binsec = json.loads(body[:n]), body[n:]
def get(t):
    return list(struct.unpack_from("<%dd" % (t["nbytes"] // 8), binsec, t["offset"]))
print(get(doc["gradients"]["x"]), get(doc["values"]["d"]))
EOF
)"
check "bad Gradd-Json-Length" 400 "$(req "$A/v1/grad" --data-binary @"$TMP/bin_req" -H 'Content-Type: application/vnd.gradd.v1+binary' -H 'Gradd-Json-Length: 12abc')"
check "bad Gradd-Json-Length body" '["invalid_request","header Gradd-Json-Length"]' "$(jget "$TMP/body" '[d["error"]["code"], d["error"]["at"]]')"
check "missing Gradd-Json-Length" 400 "$(req "$A/v1/grad" --data-binary @"$TMP/bin_req" -H 'Content-Type: application/vnd.gradd.v1+binary')"

check "504 small deadline_ms" 504 "$(req "$A/v1/grad" --data-binary @"$TMP/mm_fast_deadline.json")"
check "504 code" '"deadline_exceeded"' "$(jget "$TMP/body" 'd["error"]["code"]')"

# 503 by saturation: 1 worker, queue 2, five slow requests at once.
for i in 1 2 3 4 5; do
    curl -s -o "$TMP/sat$i.body" -D "$TMP/sat$i.hdr" -w '%{http_code}' --data-binary @"$TMP/mm_slow.json" "$A/v1/grad" >"$TMP/sat$i.code" &
done
wait_curls() { for j in $(jobs -p); do case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" || true ;; esac; done; }
wait_curls
codes=$(cat "$TMP"/sat*.code | tr '\n' ' ')
n503=$(grep -l '^503$' "$TMP"/sat*.code | wc -l)
n200=$(grep -l '^200$' "$TMP"/sat*.code | wc -l)
check "saturation: 3 answered, 2 rejected ($codes)" "3 2" "$n200 $n503"
f503=$(grep -l '^503$' "$TMP"/sat*.code | head -1)
check "503 Retry-After" "1" "$(grep -i '^Retry-After:' "${f503%.code}.hdr" | cut -d' ' -f2 | tr -d '\r')"
check "503 code" '"overloaded"' "$(jget "${f503%.code}.body" 'd["error"]["code"]')"

check "metrics" 200 "$(req "$A/metrics")"
check_has "metrics content type" "text/plain; version=0.0.4" "$(hdr Content-Type)"
metrics=$(cat "$TMP/body")
check_has "metrics requests_total" 'gradd_requests_total{route="/v1/grad",status="200"}' "$metrics"
check_has "metrics 504" 'gradd_requests_total{route="/v1/grad",status="504"} 1' "$metrics"
check_has "metrics histogram" 'gradd_request_duration_seconds_bucket{route="/v1/grad",le="+Inf"}' "$metrics"
check_has "metrics in_flight" 'gradd_in_flight 0' "$metrics"
check_has "metrics queue depth" 'gradd_queue_depth 0' "$metrics"
check_has "metrics rejected queue_full" 'gradd_rejected_total{reason="queue_full"} 2' "$metrics"
check_has "metrics rejected too large" 'gradd_rejected_total{reason="body_too_large"} 2' "$metrics"
check_has "metrics build info" 'gradd_build_info{version="' "$metrics"

check "--healthcheck healthy" 0 "$("$GRADD" --healthcheck --port "${A##*:}" >/dev/null 2>&1; echo $?)"

# SIGTERM with a request in flight: readyz turns 503, the request is answered, exit 0.
curl -s -o "$TMP/inflight.body" -w '%{http_code}' --data-binary @"$TMP/mm_slow.json" "$A/v1/grad" >"$TMP/inflight.code" &
CURL=$!
sleep 0.3
kill -TERM "$A_PID"
sleep 0.3
check "readyz while draining" 503 "$(req "$A/readyz")"
check "readyz draining code" '"overloaded"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check "healthz while draining" 200 "$(req "$A/healthz")"
check "served while draining" 200 "$(req "$A/v1/grad" --data-binary @"$TMP/ex.json")"
check "Connection: close while draining" "close" "$(hdr Connection)"
wait "$CURL" || true
check "in-flight request answered" 200 "$(cat "$TMP/inflight.code")"
rc=0
wait "$A_PID" || rc=$?
check "exit status after SIGTERM" 0 "$rc"
check "--healthcheck after stop" 1 "$("$GRADD" --healthcheck --port "${A##*:}" >/dev/null 2>&1; echo $?)"
check_has "log: stopped" "INFO stopped" "$(cat "$TMP/A.log")"
check_has "log: request line" "id=smoke-req-42 method=POST route=/v1/grad status=200" "$(cat "$TMP/A.log")"

# ---- server B: a job whose deadline passes while it waits in the queue -------------
# The one worker is busy decoding a large body (decoding is not interruptible)
# for longer than the 150 ms deadline of the small request queued behind it.
$PY -c 'import json,sys; json.dump({"graph":{"nodes":[{"name":"x","op":"variable"},{"name":"l","op":"sum","inputs":["x"]}]},"values":{"x":[0.123456789]*2000000},"target":"l"}, open(sys.argv[1],"w"))' "$TMP/bigjson.json"
start B --workers 1 --queue 4 --deadline-ms 150 --drain-ms 0
B=http://127.0.0.1:$PORT
curl -s -o /dev/null --data-binary @"$TMP/bigjson.json" "$B/v1/grad" &
for _ in $(seq 1 100); do # until the large body is with the worker
    curl -s "$B/metrics" | grep -q '^gradd_in_flight 1' && break
    sleep 0.02
done
check "504 from the queue" 504 "$(req "$B/v1/grad" --data-binary @"$TMP/ex.json")"
check_has "504 queue message" "waited" "$(jget "$TMP/body" 'd["error"]["message"]')"
wait_curls
stop "$PID"
check "B exit" 0 "$RC"

# ---- server C: auth, CORS, JSON log -----------------------------------------------
printf 's3cret-token\n' >"$TMP/token"
start C --token-file "$TMP/token" --cors-origin https://app.example --log-format json --drain-ms 0
C=http://127.0.0.1:$PORT
check "401 without token" 401 "$(req "$C/v1/grad" --data-binary @"$TMP/ex.json")"
check "401 code" '"unauthorized"' "$(jget "$TMP/body" 'd["error"]["code"]')"
check_has "401 WWW-Authenticate" "Bearer" "$(hdr WWW-Authenticate)"
check "401 wrong token" 401 "$(req "$C/v1/grad" --data-binary @"$TMP/ex.json" -H 'Authorization: Bearer s3cret-tokem')"
check "401 token prefix" 401 "$(req "$C/v1/grad" --data-binary @"$TMP/ex.json" -H 'Authorization: Bearer s3cret')"
check "200 with token" 200 "$(req "$C/v1/grad" --data-binary @"$TMP/ex.json" -H 'Authorization: Bearer s3cret-token')"
check "CORS origin on answers" "https://app.example" "$(hdr Access-Control-Allow-Origin)"
check "401 /v1/ops without token" 401 "$(req "$C/v1/ops")"
check "healthz open" 200 "$(req "$C/healthz")"
check "metrics open" 200 "$(req "$C/metrics")"
check "preflight" 204 "$(req "$C/v1/grad" -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST')"
check "preflight origin" "https://app.example" "$(hdr Access-Control-Allow-Origin)"
check "preflight methods" "POST, OPTIONS" "$(hdr Access-Control-Allow-Methods)"
check_has "preflight headers" "Authorization, Content-Type, Gradd-Json-Length, X-Request-Id" "$(hdr Access-Control-Allow-Headers)"
check_has "preflight max-age" "86400" "$(hdr Access-Control-Max-Age)"
stop "$PID"
check "C exit" 0 "$RC"
check "JSON log lines parse" ok "$($PY - "$TMP/C.log" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
reqs = [l for l in lines if l["msg"] == "request"]
ok = len(reqs) == 8 and all(len(l["id"]) == 16 and l["status"] for l in reqs)
print("ok" if ok else "bad: %r" % lines[:3])
EOF
)"

# ---- configuration errors -----------------------------------------------------------
: >"$TMP/empty_token"
for args in "--port abc" "--log-format xml" "--workers 0" "--max-body 12Q" "--frobnicate 1" \
            "--token-file $TMP/empty_token" "--token-file $TMP/none" "--max-buffered 10 --max-body 20"; do
    rc=0
    # shellcheck disable=SC2086
    "$GRADD" $args >/dev/null 2>"$TMP/cfg.err" || rc=$?
    check "exit 2 for '$args'" 2 "$rc"
    check_has "message for '$args'" "gradd: " "$(cat "$TMP/cfg.err")"
done
rc=0
GRADD_PORT=notaport "$GRADD" 2>"$TMP/cfg.err" || rc=$?
check "exit 2 for GRADD_PORT" 2 "$rc"
check_has "env named" "GRADD_PORT" "$(cat "$TMP/cfg.err")"

# ---- sanitizer reports in any log ------------------------------------------------------
if grep -lE 'Sanitizer|runtime error|ThreadSanitizer' "$TMP"/*.log >/dev/null 2>&1; then
    fail "sanitizer report in $(grep -lE 'Sanitizer|runtime error' "$TMP"/*.log | tr '\n' ' ')"
    grep -hE -A30 'Sanitizer|runtime error' "$TMP"/*.log | head -80 >&2
else
    pass
fi

echo "server_smoke: $((checks - fails))/$checks checks passed"
[ "$fails" -eq 0 ]
