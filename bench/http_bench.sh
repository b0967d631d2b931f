#!/bin/sh
# http_bench.sh - gradd over HTTP against what a user would otherwise run, in
# one invocation, then one side-by-side table with the targets:
#
#   1. a 5-node graph (x, t -> sub -> square -> sum) under wrk on loopback:
#      requests/s at 64 connections, latency percentiles at 8 connections,
#      for gradd (its defaults) and for bench/peer_fastapi.py (FastAPI +
#      PyTorch under uvicorn, one worker per core, no access log);
#   2. the 3-layer MLP step (bench_mlp.c's, batch 256, 784-1024-1024-10,
#      float64) as one POST /v1/grad, end to end through bench/http_mlp
#      (libcurl; binary framing, then b64), against PyTorch's in-process step
#      (bench/torch_mlp.py --threads 2), gradd run with --workers 1
#      --blas-threads 2.
#   Targets (2-core machine): tiny graph >= 25,000 requests/s and >= 15x the
#   peer; p99 <= 2 ms at 8 connections; MLP binary end to end <= 1.5x
#   PyTorch in-process (b64 reported).
#
# Every figure is the median over BENCH_ROUNDS rounds; within a round the
# programs alternate (gradd first in odd rounds). Before measuring, gradd's
# and the peer's answers to the tiny graph are compared (same target and
# gradients), wrk runs with any error or non-2xx answer are rejected, and
# http_mlp's loss and gradient norms must agree with torch_mlp.py's.
#
# The peer runs on uvicorn's uvloop + httptools stack (what
# `pip install uvicorn[standard]` gives; Debian: python3-uvloop,
# python3-httptools). Debian's bare uvicorn 0.17 (asyncio + h11) with
# --workers binds the listening socket with proto 0, so asyncio never sets
# TCP_NODELAY on accepted connections and each keep-alive request waits
# ~40 ms for a delayed ACK (uvicorn issue #3149); that configuration is
# measured too, as an extra column (PEER_BARE=0 skips it), but the targets
# are judged against the faster uvloop + httptools peer.
#
# Environment:
#   GRADD_BIN      gradd binary (required; `make bench-http` sets it)
#   HTTP_MLP       MLP client (default: bench/http_mlp beside GRADD_BIN's dir)
#   GD_SRCDIR      source tree (default: this script's parent dir)
#   TORCH_PYTHON   interpreter with torch, fastapi, uvicorn (default /usr/bin/python3)
#   BENCH_ROUNDS   rounds (default 3)
#   WRK_DURATION   duration of each wrk run (default 5s)
#   WRK_THREADS    wrk threads (default 2)
#   PEER_WORKERS   uvicorn workers (default: nproc)
#   PEER_BARE      0: skip the peer on bare asyncio + h11 (default 1)
#   MLP_MIN_TIME   seconds per http_mlp measurement (default 2; b64 runs at least 5 requests)
#   TORCH_OMP_WAIT_POLICY  for torch_mlp.py (default PASSIVE, as bench/run_mlp.sh)
#   BENCH_STRICT   1: exit 1 when a target is missed (default: report only)
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${GD_SRCDIR:-$(dirname "$here")}
gradd=${GRADD_BIN:-}
py=${TORCH_PYTHON:-/usr/bin/python3}
rounds=${BENCH_ROUNDS:-3}
dur=${WRK_DURATION:-5s}
wthreads=${WRK_THREADS:-2}
ncpu=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
peer_workers=${PEER_WORKERS:-$ncpu}
peer_bare=${PEER_BARE:-1}
mlp_min_time=${MLP_MIN_TIME:-2}
wait_policy=${TORCH_OMP_WAIT_POLICY:-PASSIVE}
strict=${BENCH_STRICT:-0}

# The peer and the helpers run from the source tree, which may be read-only.
export PYTHONDONTWRITEBYTECODE=1

die() { echo "http_bench.sh: $*" >&2; exit 2; }
[ -n "$gradd" ] || die "set GRADD_BIN to the gradd binary (or run 'make bench-http')"
[ -x "$gradd" ] || die "GRADD_BIN '$gradd' is not executable"
mlp=${HTTP_MLP:-$(dirname "$gradd")/bench/http_mlp}
[ -x "$mlp" ] || die "no MLP client at '$mlp' (set HTTP_MLP, or run 'make bench-http')"
command -v wrk >/dev/null 2>&1 || die "wrk not found (scripts/install-deps.sh installs it)"
"$py" -c 'import torch, fastapi, uvicorn, uvloop, httptools' 2>/dev/null ||
    die "$py cannot import torch, fastapi, uvicorn, uvloop, httptools (scripts/install-deps.sh installs them)"
case $rounds in '' | *[!0-9]* | 0) die "BENCH_ROUNDS must be a positive integer" ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/http_bench.XXXXXX") || exit 2
pids=""
# stop PID: SIGTERM, up to 10 s for a clean exit (uvicorn stops its workers), then SIGKILL.
stop() {
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}
cleanup() { for p in $pids; do stop "$p"; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { "$py" "$srcdir/bench/http_check.py" "$@"; }

# start_gradd NAME ARGS...: gradd on a free port, log in $tmp/NAME.log; sets $url.
start_gradd() {
    name=$1; shift
    port=$(check free-port) || die "no free port"
    "$gradd" --host 127.0.0.1 --port "$port" --drain-ms 0 "$@" 2>"$tmp/$name.log" &
    pid=$!; pids="$pids $pid"
    url=http://127.0.0.1:$port
    check wait "$url/healthz" 20 || { cat "$tmp/$name.log" >&2; die "gradd did not start"; }
    eval "${name}_pid=$pid"
}

# start_peer NAME LOOP HTTP: the FastAPI peer on a free port; sets $url.
start_peer() {
    port=$(check free-port) || die "no free port"
    "$py" -m uvicorn peer_fastapi:app --app-dir "$srcdir/bench" --host 127.0.0.1 --port "$port" \
        --workers "$peer_workers" --no-access-log --loop "$2" --http "$3" >"$tmp/$1.log" 2>&1 &
    pid=$!; pids="$pids $pid"
    url=http://127.0.0.1:$port
    check wait "$url/" 60 || { cat "$tmp/$1.log" >&2; die "the peer did not start"; }
    eval "${1}_pid=$pid"
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "== gradd HTTP benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: nproc $ncpu; CPU $cpu_model; $(uname -srm)"
# busy_pct: how much of the CPUs other processes used over one second.
busy_pct() {
    a=$(head -n 1 /proc/stat); sleep 1; b=$(head -n 1 /proc/stat)
    echo "$a $b" | awk '{ n = (NF - 2) / 2; for (i = 2; i <= n + 1; i++) { d = $(i + n + 1) - $i; t += d; if (i == 5 || i == 6) idle += d }
                         printf "%.0f\n", (t > 0) ? 100 * (t - idle) / t : 0 }'
}
busy=$(busy_pct)
echo "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg); CPUs busy with other work in the last second: $busy%"
if [ "$busy" -gt 10 ]; then
    echo "WARNING: other processes are using the CPUs: the figures below are disturbed by them"
fi
echo "gradd: $gradd ($("$gradd" --version 2>&1 | head -n 1)); client: $mlp"
echo "peer: $("$py" -c 'import fastapi, uvicorn, torch, sys; print("FastAPI %s, uvicorn %s, PyTorch %s, Python %s" % (fastapi.__version__, uvicorn.__version__, torch.__version__, sys.version.split()[0]))')"
echo "wrk: $(wrk -v 2>&1 | head -n 1)"
echo

# The tiny graph: 5 nodes, as small as a useful request gets.
body=$tmp/tiny.json
cat >"$body" <<'EOF'
{"graph": {"nodes": [
  {"name": "x", "op": "variable", "shape": [4]},
  {"name": "t", "op": "input", "shape": [4]},
  {"name": "d", "op": "sub", "inputs": ["x", "t"]},
  {"name": "p", "op": "square", "inputs": ["d"]},
  {"name": "loss", "op": "sum", "inputs": ["p"]}]},
 "values": {"x": [1.0, 2.0, 3.0, 4.0], "t": [0.5, 1.5, 2.0, 5.0]},
 "target": "loss"}
EOF

status=0
res=$tmp/results
: >"$res"

# ---- 1. the tiny graph under wrk ------------------------------------------
start_gradd gradd
gradd_url=$url
sed -n 's/.*INFO \(gradd .*listening on.*\)/gradd started: \1/p' "$tmp/gradd.log" | head -n 1
start_peer peer uvloop httptools
peer_url=$url
servers="gradd peer"
if [ "$peer_bare" = 1 ]; then
    start_peer bare asyncio h11
    bare_url=$url
    servers="gradd peer bare"
fi
echo "peer started: uvicorn --workers $peer_workers --no-access-log --loop uvloop --http httptools" \
     "$([ "$peer_bare" = 1 ] && echo "(bare: --loop asyncio --http h11)")"
for s in $servers; do
    [ "$s" = gradd ] && continue
    eval "u=\$${s}_url"
    printf '%s: ' "$s"
    check compare "$body" "$gradd_url/v1/grad" "$u/v1/grad" || { echo "http_bench.sh: $s and gradd disagree" >&2; exit 1; }
done

# tree PID: PID and its descendants (uvicorn's workers).
tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '{ par[$1] = $2 }
        END { for (p in par) { q = p; while ((q in par) && q != root) q = par[q]; if (q == root) printf "%s ", p } }'
}
# cpu_ticks PID...: user + system clock ticks those processes used so far.
cpu_ticks() {
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%d\n", t }'
}
# child_secs: user + system seconds of this shell's finished children (wrk),
# into $csecs (`times` must run in this shell, not in a subshell).
child_secs() {
    times >"$tmp/times"
    csecs=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$tmp/times")
}
hz=$(getconf CLK_TCK)

# wrk_run SERVER CONNS ROUND: one wrk run; its WRK line, with the CPU time
# per request of the server (all its processes) and of wrk, goes to $res.
wrk_run() {
    eval "u=\$${1}_url; spid=\$${1}_pid"
    out=$tmp/wrk.$1.$2.$3
    spids=$(tree "$spid")
    s0=$(cpu_ticks $spids); child_secs; w0=$csecs
    wrk -t"$wthreads" -c"$2" -d"$dur" --latency -s "$srcdir/bench/http_post.lua" "$u/v1/grad" -- "$body" >"$out" 2>&1
    s1=$(cpu_ticks $spids); child_secs; w1=$csecs
    line=$(grep '^WRK ' "$out")
    [ -n "$line" ] && line="$line $(echo "$line" | awk -v s0="$s0" -v s1="$s1" -v w0="$w0" -v w1="$w1" -v hz="$hz" '
        { for (i = 1; i <= NF; i++) if ($i ~ /^requests=/) { split($i, kv, "="); n = kv[2] } }
        END { printf "server_cpu_us=%.1f wrk_cpu_us=%.1f", n ? (s1 - s0) / hz * 1e6 / n : 0, n ? (w1 - w0) * 1e6 / n : 0 }')"
    if [ -z "$line" ]; then
        echo "http_bench.sh: wrk against $1 failed:" >&2; cat "$out" >&2; status=1; return 1
    fi
    case $line in
        *" err_connect=0 err_read=0 err_write=0 err_status=0 err_timeout=0 "*) ;;
        *) echo "http_bench.sh: round $3, $1, $2 connections: errors in the run (not used): $line" >&2
           status=1; return 1 ;;
    esac
    echo "W $1 $2 $3 $line" >>"$res"
    echo "round $3: $1, $2 connections: ${line#WRK }"
}

# Warm-up: connections, first-request paths, the peer's imports.
for s in $servers; do
    eval "u=\$${s}_url"
    wrk -t"$wthreads" -c64 -d1s -s "$srcdir/bench/http_post.lua" "$u/v1/grad" -- "$body" >/dev/null 2>&1
done
echo
echo "-- tiny graph, wrk -t$wthreads -d$dur, loopback, $rounds round(s)"
r=1
while [ $r -le "$rounds" ]; do
    order=$servers
    [ $((r % 2)) = 0 ] && order=$(echo "$servers" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }')
    for c in 64 8; do
        for s in $order; do wrk_run "$s" "$c" "$r"; done
    done
    r=$((r + 1))
done
for s in $servers; do eval "stop \$${s}_pid"; done
# gradd logs status=0 for a request whose client left before the answer
# (wrk closes its connections at the end of each run); anything else but 200
# is a failure.
echo "gradd log: $(grep -c ' status=200 ' "$tmp/gradd.log") requests answered 200," \
     "$(grep -c ' status=0 ' "$tmp/gradd.log") abandoned by wrk at the end of a run"
if grep ' route=/v1/grad status=' "$tmp/gradd.log" | grep -v -e ' status=200 ' -e ' status=0 ' | grep -q .; then
    echo "http_bench.sh: gradd answered other statuses:" >&2
    grep ' route=/v1/grad status=' "$tmp/gradd.log" | grep -v -e ' status=200 ' -e ' status=0 ' | head -n 3 >&2
    status=1
fi

# ---- 2. the MLP end to end ------------------------------------------------
echo
echo "-- MLP step: gradd --workers 1 --blas-threads 2 over HTTP (http_mlp) vs PyTorch in-process" \
     "(torch_mlp.py --threads 2, OMP_WAIT_POLICY=$wait_policy), $rounds round(s)"
start_gradd mlp --workers 1 --blas-threads 2
mlp_url=$url
sed -n 's/.*INFO \(gradd .*listening on.*\)/gradd started: \1/p' "$tmp/mlp.log" | head -n 1

# mlp_run WHAT ROUND: torch | binary | b64.
mlp_run() {
    out=$tmp/mlp.$1.$2
    if [ "$1" = torch ]; then
        OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=$wait_policy \
            "$py" "$srcdir/bench/torch_mlp.py" --threads 2 --min-time 1 >"$out" 2>&1
    elif [ "$1" = binary ]; then
        "$mlp" --url "$mlp_url/v1/grad" --format binary --min-time "$mlp_min_time" >"$out" 2>&1
    else
        "$mlp" --url "$mlp_url/v1/grad" --format b64 --min-time "$mlp_min_time" --min-runs 5 --warmup 1 >"$out" 2>&1
    fi || { echo "http_bench.sh: MLP $1 failed (round $2):" >&2; cat "$out" >&2; status=1; return 1; }
    line=$(grep '^RESULT ' "$out")
    echo "M $1 $2 $line" >>"$res"
    echo "round $2: $1: ${line#RESULT }"
}
r=1
while [ $r -le "$rounds" ]; do
    order="binary torch b64"
    [ $((r % 2)) = 0 ] && order="torch binary b64"
    for w in $order; do mlp_run "$w" "$r"; done
    r=$((r + 1))
done
stop "$mlp_pid"
echo "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg); CPUs busy with other work in the last second: $(busy_pct)%"
# gradd's own split of each MLP request, from its log: body receipt (headers
# to last body byte), compute (decode + forward + backward + encode).
for w in binary b64; do
    n=$(sed -n 's/.*req_bytes=\([0-9]*\).*/\1/p' "$tmp/mlp.$w.1" 2>/dev/null)
    [ -n "$n" ] || continue
    grep " route=/v1/grad status=200 bytes_in=$n " "$tmp/mlp.log" |
        sed 's/.*queue_us=\([0-9]*\) compute_us=\([0-9]*\) total_us=\([0-9]*\).*/\1 \2 \3/' |
        awk -v w="$w" '{ printf "G %s recv_ms=%.3f compute_ms=%.3f\n", w, ($3 - $2 - $1) / 1000, $2 / 1000 }' >>"$res"
done

# The same data on both sides: loss and gradient norms must agree.
grep -h '^CHECK ' "$tmp/mlp.torch.1" "$tmp/mlp.binary.1" "$tmp/mlp.b64.1" 2>/dev/null | awk '
    { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] !~ /^sum_/) v[$2, kv[1]] = kv[2] + 0; k[kv[1]] = 1 }
      who[$2] = 1 }
    END {
        worst = 0; n = 0
        for (w in who) {
            if (w == "torch") continue
            for (name in k) {
                if (name ~ /^sum_/ || !(("torch", name) in v) || !((w, name) in v)) continue
                a = v[w, name]; b = v["torch", name]; n++
                d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b
                r = s > 0 ? d / s : d; if (r > worst) { worst = r; wn = w " " name }
            }
        }
        if (n == 0) { print "agreement: no CHECK lines to compare"; exit 1 }
        printf "agreement with PyTorch (loss and 6 gradient norms, binary and b64): worst relative difference %.1e (%s): %s\n",
               worst, wn, worst < 1e-9 ? "ok" : "MISMATCH"
        exit worst < 1e-9 ? 0 : 1
    }' || status=1

# ---- the table -------------------------------------------------------------
echo
awk -v strict="$strict" -v ncpu="$ncpu" -v bsize="$(wc -c <"$body" | tr -d ' ')" -v cpu="$cpu_model" -v dur="$dur" -v wthreads="$wthreads" \
    -v rounds="$rounds" -v pw="$peer_workers" -v bare="$peer_bare" -v wp="$wait_policy" '
    function val(line, key,   n, i, f, kv) {
        n = split(line, f, " ")
        for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == key) return kv[2] }
        return ""
    }
    function med(list,   a, n, i, j, x) {
        n = split(list, a, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++) { x = a[i] + 0; for (j = i - 1; j > 0 && a[j] + 0 > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(key, v) { L[key] = L[key] " " v }
    function comma(x,   s, r) {
        s = sprintf("%.0f", x); r = ""
        while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
        return s r
    }
    function ms(us) { return us == "" ? "-" : sprintf("%.2f ms", us / 1000) }
    $1 == "W" {
        k = $2 "." $3
        add(k ".rps", val($0, "rps")); add(k ".p50", val($0, "p50_us"))
        add(k ".p90", val($0, "p90_us")); add(k ".p99", val($0, "p99_us"))
        add(k ".scpu", val($0, "server_cpu_us")); add(k ".wcpu", val($0, "wrk_cpu_us"))
    }
    $1 == "M" && $2 == "torch" { add("torch.step", val($0, "step_ms")) }
    $1 == "G" { add($2 ".recv", val($0, "recv_ms")); add($2 ".comp", val($0, "compute_ms")) }
    $1 == "M" && $2 != "torch" {
        add($2 ".e2e", val($0, "e2e_ms")); add($2 ".cli", val($0, "client_ms"))
        add($2 ".cpu", val($0, "client_cpu_ms")); add($2 ".srv", val($0, "server_ms"))
        add($2 ".fb", val($0, "fwd_ms") + val($0, "bwd_ms")); add($2 ".wire", val($0, "wire_ms"))
        add($2 ".runs", val($0, "runs")); add($2 ".dl", val($0, "download_ms"))
    }
    function row(what, g, p, b, ratio, target, st) {
        if (bare) printf "| %s | %s | %s | %s | %s | %s | %s |\n", what, g, p, b, ratio, target, st
        else printf "| %s | %s | %s | %s | %s | %s |\n", what, g, p, ratio, target, st
    }
    function verdict(ok) { if (!ok) miss = 1; return ok ? "met" : "**MISSED**" }
    END {
        grps = med(L["gradd.64.rps"]); prps = med(L["peer.64.rps"]); brps = med(L["bare.64.rps"])
        g99 = med(L["gradd.8.p99"])
        ts = med(L["torch.step"]); be = med(L["binary.e2e"]); b6 = med(L["b64.e2e"])
        print "| measurement | gradd | peer: FastAPI + PyTorch" (bare ? " | peer, bare uvicorn (asyncio + h11)" : "") \
              " | gradd vs peer | target | status |"
        print "|---|---:|---:|" (bare ? "---:|" : "") "---:|---|---|"
        row("5-node graph: requests/s, 64 connections", comma(grps), comma(prps), bare ? comma(brps) : "",
            "", ">= 25,000 req/s", grps == "" ? "-" : verdict(grps >= 25000))
        row("5-node graph: throughput vs the peer", "", "", bare ? sprintf("%.0fx", grps / brps) : "",
            prps > 0 ? sprintf("%.1fx", grps / prps) : "-", ">= 15x", prps > 0 ? verdict(grps >= 15 * prps) : "-")
        row("5-node graph: server / wrk CPU per request, 64 connections",
            sprintf("%.1f / %.1f us", med(L["gradd.64.scpu"]), med(L["gradd.64.wcpu"])),
            sprintf("%.1f / %.1f us", med(L["peer.64.scpu"]), med(L["peer.64.wcpu"])),
            bare ? sprintf("%.1f / %.1f us", med(L["bare.64.scpu"]), med(L["bare.64.wcpu"])) : "",
            med(L["gradd.64.scpu"]) > 0 ? sprintf("%.1fx less CPU", med(L["peer.64.scpu"]) / med(L["gradd.64.scpu"])) : "-", "", "")
        row("5-node graph: requests/s, 8 connections", comma(med(L["gradd.8.rps"])), comma(med(L["peer.8.rps"])),
            bare ? comma(med(L["bare.8.rps"])) : "", med(L["peer.8.rps"]) > 0 ? sprintf("%.1fx", med(L["gradd.8.rps"]) / med(L["peer.8.rps"])) : "-", "", "")
        row("5-node graph: p50 latency, 8 connections", ms(med(L["gradd.8.p50"])), ms(med(L["peer.8.p50"])),
            bare ? ms(med(L["bare.8.p50"])) : "", "", "", "")
        row("5-node graph: p90 latency, 8 connections", ms(med(L["gradd.8.p90"])), ms(med(L["peer.8.p90"])),
            bare ? ms(med(L["bare.8.p90"])) : "", "", "", "")
        row("5-node graph: p99 latency, 8 connections", ms(g99), ms(med(L["peer.8.p99"])),
            bare ? ms(med(L["bare.8.p99"])) : "", "", "<= 2 ms", g99 == "" ? "-" : verdict(g99 <= 2000))
        row("MLP step end to end, binary framing", sprintf("%.1f ms", be), sprintf("%.1f ms (in-process)", ts),
            bare ? "-" : "", ts > 0 ? sprintf("%.2fx", be / ts) : "-", "<= 1.5x PyTorch", ts > 0 && be != "" ? verdict(be <= 1.5 * ts) : "-")
        row("MLP step end to end, b64", sprintf("%.1f ms", b6), sprintf("%.1f ms (in-process)", ts),
            bare ? "-" : "", ts > 0 ? sprintf("%.2fx", b6 / ts) : "-", "reported", "")
        for (i = 1; i <= 2; i++) {
            w = i == 1 ? "binary" : "b64"
            # gradd log: compute = decode + run + encode; stats total = decode + run.
            row(sprintf("MLP %s, where the time goes: gradd body receipt / decode / forward + backward / encode / response download", w),
                sprintf("%.1f / %.1f / %.1f / %.1f / %.1f ms", med(L[w ".recv"]), med(L[w ".srv"]) - med(L[w ".fb"]),
                        med(L[w ".fb"]), med(L[w ".comp"]) - med(L[w ".srv"]), med(L[w ".dl"])),
                "", bare ? "" : "", "", "", "")
        }
        row("MLP: client encode + decode / client CPU per request, binary",
            sprintf("%.1f / %.1f ms", med(L["binary.cli"]), med(L["binary.cpu"])), "", bare ? "" : "", "", "", "")
        row("MLP: client encode + decode / client CPU per request, b64",
            sprintf("%.1f / %.1f ms", med(L["b64.cli"]), med(L["b64.cpu"])), "", bare ? "" : "", "", "", "")
        print ""
        printf "Machine: nproc %d, %s. Medians over %d round(s), programs alternating.\n", ncpu, cpu, rounds
        printf "5-node graph: POST /v1/grad {x, t -> sub -> square -> sum} (%d bytes of JSON), wrk -t%d -d%s on loopback (--latency; p50/p90/p99 from wrk at 8 connections; CPU per request from /proc and times). gradd with its defaults (workers x BLAS threads = the CPUs, text log to a file); peer: uvicorn --workers %d --no-access-log --loop uvloop --http httptools, torch.set_num_threads(1) per worker.\n", bsize, wthreads, dur, pw
        printf "MLP: batch 256, 784-1024-1024-10, relu, softmax_cross_entropy (int64 labels), float64, gradients of the 3 weights and 3 biases. gradd --workers 1 --blas-threads 2; end to end = bench/http_mlp (libcurl, one keep-alive connection) encoding the request, the HTTP exchange and decoding the six gradients, request and response in the same framing; PyTorch = torch_mlp.py step (forward with autograd + torch.autograd.grad), torch.set_num_threads(2), OMP_WAIT_POLICY=%s.\n", wp
        exit (strict == 1 && miss) ? 1 : 0
    }' "$res" || status=1
exit $status
