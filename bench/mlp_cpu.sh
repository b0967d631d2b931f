#!/bin/bash
# mlp_cpu.sh - gradd's own CPU time (utime + stime from /proc/PID/stat) per
# MLP step (bench/http_mlp, binary framing, gradd --workers 1 --blas-threads 2)
# for two gradd binaries, alternating which goes first every round; each round
# starts a fresh gradd, warms it with one request, then counts the CPU of
# 1 + N requests. CPU time is what a loaded shared machine disturbs least
# (wall times there move 3-10x between rounds). The CHECK line's md5 (loss
# and gradient norms to 15 digits) must be the same for both binaries.
#
#   bench/mlp_cpu.sh BASE_GRADD NEW_GRADD [HIDDEN=2048] [ROUNDS=3] [N=5]
# BENCH_BINDIR: where http_mlp is (default: bench/ beside NEW_GRADD).
set -eu
BASE=$1 NEW=$2 H=${3:-2048} ROUNDS=${4:-3} N=${5:-5}
BINDIR=${BENCH_BINDIR:-$(dirname "$NEW")/bench}
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then sides="base new"; else sides="new base"; fi
  for side in $sides; do
    if [ "$side" = base ]; then bin=$BASE; else bin=$NEW; fi
    port=$((20000 + RANDOM % 20000))
    "$bin" --port "$port" --workers 1 --blas-threads 2 >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    mlp() { "$BINDIR/http_mlp" --url "http://127.0.0.1:$port/v1/grad" --format binary --hidden "$H" --min-time 0 "$@"; }
    mlp --min-runs 1 --warmup 1 >/dev/null
    c0=$(cpu $pid)
    out=$(mlp --min-runs "$N" --warmup 1)
    c1=$(cpu $pid)
    runs=$(( $(echo "$out" | grep '^RESULT' | grep -o ' runs=[0-9]*' | cut -d= -f2) + 1 ))
    fig=$(echo "$out" | grep '^RESULT' | grep -o 'e2e_ms=[0-9.]*\|sent_to_last_ms=[0-9.]*\|fwd_ms=[0-9.]*\|bwd_ms=[0-9.]*' | tr '\n' ' ')
    check=$(echo "$out" | grep '^CHECK' | md5sum | cut -c1-8)
    ms=$(( (c1 - c0) * 1000 / TCK ))
    echo "round $r $side H=$H: gradd CPU $ms ms over $runs requests (incl. 1 warm-up) ($((ms / runs)) ms each); $fig; CHECK md5 $check"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
