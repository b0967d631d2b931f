#!/bin/sh
# run_mlp.sh - gradd's MLP training step against PyTorch's, at 1 and 2 BLAS
# threads, then a side-by-side table with the targets:
#   gradd step <= 1.1 x torch step at equal threads
#   gradd (forward+backward)/forward <= 2.8
#
# Noise: the box is small and may be shared, so each thread count runs
# BENCH_ROUNDS rounds that alternate the two programs (gradd first in odd
# rounds, torch first in even ones); each program reports the median of its
# timed runs per round, and the table shows the median over rounds, with the
# spread of the round medians beside it. (f+b)/f is the median of the rounds'
# own ratios (forward and step measured back to back in one process).
#
# Environment:
#   BENCH_MLP       bench binary          (default ./bench/bench_mlp)
#   GD_SRCDIR       gradd's source tree   (default: this script's parent dir)
#   TORCH_PYTHON    interpreter with torch (default /usr/bin/python3, Debian's python3-torch)
#   BENCH_THREADS   thread counts         (default "1 2")
#   BENCH_ROUNDS    rounds per thread count (default 5)
#   BENCH_MIN_TIME  seconds per measurement and round (default 0.5; at least 10 runs)
#   TORCH_OMP_WAIT_POLICY  OMP_WAIT_POLICY for torch (default PASSIVE; see below)
#   BENCH_STRICT    1: exit 1 when a target is missed (default: report only)
# Both programs get OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = the thread
# count and set it themselves too (openblas_set_num_threads;
# torch.set_num_threads plus openblas_set_num_threads in every OpenBLAS
# torch has mapped). torch runs its own elementwise kernels on OpenMP
# threads while OpenBLAS runs gemms on its pthreads; with libgomp's default
# (active) wait policy the idle OpenMP threads spin and take the two cores
# from OpenBLAS, which made torch's 2-thread step about twice slower here,
# so torch is measured with OMP_WAIT_POLICY=PASSIVE, its faster setting.
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as they are and printed.
# `make bench` sets BENCH_MLP and GD_SRCDIR.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${GD_SRCDIR:-$(dirname "$here")}
bench=${BENCH_MLP:-./bench/bench_mlp}
py=${TORCH_PYTHON:-/usr/bin/python3}
threads=${BENCH_THREADS:-"1 2"}
rounds=${BENCH_ROUNDS:-5}
min_time=${BENCH_MIN_TIME:-0.5}
wait_policy=${TORCH_OMP_WAIT_POLICY:-PASSIVE}
strict=${BENCH_STRICT:-0}

if [ ! -x "$bench" ]; then
    echo "run_mlp.sh: no bench binary at '$bench' (set BENCH_MLP, or run 'make bench')" >&2
    exit 2
fi
case $rounds in '' | *[!0-9]* | 0) echo "run_mlp.sh: BENCH_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_mlp.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

have_torch=0
if "$py" -c 'import torch' >/dev/null 2>&1; then have_torch=1; fi

echo "== gradd MLP benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "host: $(uname -srm); cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
     "x $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')"
echo "load average before: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)} (left as found)"
echo "bench: $bench; source: $srcdir; torch: $py" \
     "$([ $have_torch = 1 ] && echo '' || echo '(torch NOT importable: gradd only)')"
echo "threads: $threads; $rounds round(s) each, programs alternating; each measurement >= ${min_time}s per round;" \
     "torch with OMP_WAIT_POLICY=$wait_policy"
echo

# run_one PROGRAM THREADS ROUND: one program's measurement into $tmp/PROGRAM.THREADS.ROUND.
run_one() {
    out="$tmp/$1.$2.$3"
    if [ "$1" = gradd ]; then
        OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 "$bench" --threads "$2" --min-time "$min_time" >"$out" 2>&1 ||
            { echo "run_mlp.sh: bench_mlp --threads $2 failed (round $3)" >&2; cat "$out" >&2; return 1; }
    else
        OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 OMP_WAIT_POLICY=$wait_policy \
            "$py" "$srcdir/bench/torch_mlp.py" --threads "$2" --min-time "$min_time" >"$out" 2>&1 ||
            { echo "run_mlp.sh: torch_mlp.py --threads $2 failed (round $3)" >&2; cat "$out" >&2; return 1; }
    fi
    # The first round in full (BLAS, checks, phases); later ones by their result line.
    if [ "$3" = 1 ]; then
        echo "---- $1, $2 thread(s), round 1"
        cat "$out"
    else
        grep '^RESULT ' "$out" | sed "s/^/round $3: /"
    fi
    return 0
}

status=0
progs="gradd"
[ $have_torch = 1 ] && progs="gradd torch"
for t in $threads; do
    r=1
    while [ "$r" -le "$rounds" ]; do
        if [ $((r % 2)) = 1 ]; then order=$progs; else order=$(echo "$progs" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }'); fi
        for p in $order; do run_one "$p" "$t" "$r" || status=1; done
        r=$((r + 1))
    done
    echo
done
echo "load average after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo

# Both programs compute on the same data: the loss and the gradient norms must
# agree to rounding (sums are not compared: those of W3 and b3 are ~0 by
# construction, pure rounding noise).
t1=$(echo $threads | cut -d ' ' -f 1)
if [ $have_torch = 1 ]; then
    grep -h '^CHECK ' "$tmp/gradd.$t1.1" "$tmp/torch.$t1.1" 2>/dev/null | awk '
        { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] !~ /^sum_/) v[$2, kv[1]] = kv[2] + 0; k[kv[1]] = 1 } }
        END {
            worst = 0; n = 0
            for (name in k) {
                if (name ~ /^sum_/) continue
                if (!(("gradd", name) in v) || !(("torch", name) in v)) continue
                a = v["gradd", name]; b = v["torch", name]; n++
                d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b
                r = s > 0 ? d / s : d; if (r > worst) { worst = r; wn = name }
            }
            if (n == 0) { print "agreement: no CHECK lines to compare"; exit 1 }
            printf "agreement gradd vs torch (loss and 6 gradient norms): worst relative difference %.2e (%s): %s\n",
                   worst, wn, worst < 1e-9 ? "ok" : "MISMATCH"
            exit worst < 1e-9 ? 0 : 1
        }' || status=1
fi

# Which gemm each side calls, from the first round's output.
blas_g=$(sed -n 's/^BLAS: cblas_dgemm from //p' "$tmp/gradd.$t1.1" 2>/dev/null | head -n 1)
blas_gc=$(sed -n 's/^BLAS: openblas_get_config() = //p' "$tmp/gradd.$t1.1" 2>/dev/null | head -n 1)
blas_t=$(sed -n 's/^BLAS: dgemm_ (as libtorch_cpu resolves it) from //p' "$tmp/torch.$t1.1" 2>/dev/null | head -n 1)
torch_v=$(sed -n 's/^torch_mlp: the same MLP step in PyTorch \([^ ]*\).*/\1/p' "$tmp/torch.$t1.1" 2>/dev/null | head -n 1)

# The table, from the RESULT lines of every round.
for f in "$tmp"/gradd.* "$tmp"/torch.*; do
    [ -f "$f" ] && grep '^RESULT ' "$f"
done | awk -v strict="$strict" -v threads="$threads" -v rounds="$rounds" \
           -v blas_g="${blas_g:-?}" -v blas_gc="${blas_gc:-?}" -v blas_t="${blas_t:-?}" -v torch_v="${torch_v:-?}" '
    function val(line, key,   n, i, f, kv) {
        n = split(line, f, " ")
        for (i = 3; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == key) return kv[2] }
        return ""
    }
    # Median of the n values a[1..n] (sorted in place).
    function med(a, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        p = $2; t = val($0, "threads"); k = ++cnt[p, t]
        step[p, t, k] = val($0, "step_ms"); fwd[p, t, k] = val($0, "fwd_ms"); rat[p, t, k] = val($0, "ratio")
        runs[p, t] += val($0, "runs"); fruns[p, t] += val($0, "fwd_runs")
    }
    # Medians over the rounds of program p at t threads (step, forward, the
    # per-round (f+b)/f) and the spread of the step medians, into S F Q LO HI.
    function agg(p, t,   n, i, a, b, c) {
        n = cnt[p, t]; if (n == 0) return 0
        LO = HI = step[p, t, 1]
        for (i = 1; i <= n; i++) {
            a[i] = step[p, t, i] + 0; b[i] = fwd[p, t, i] + 0; c[i] = rat[p, t, i] + 0
            if (a[i] < LO) LO = a[i]; if (a[i] > HI) HI = a[i]
        }
        S = med(a, n); F = med(b, n); Q = med(c, n)
        return n
    }
    END {
        FL = 3 * 2 * 256 * (784 * 1024 + 1024 * 1024 + 1024 * 10)
        print "| BLAS threads | gradd step ms | torch step ms | gradd / torch | gradd GFLOP/s | torch GFLOP/s | gradd fwd ms | torch fwd ms | gradd (f+b)/f | torch (f+b)/f | timed runs gradd | timed runs torch |"
        print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        n = split(threads, ts, " "); miss = 0
        for (i = 1; i <= n; i++) {
            t = ts[i]
            ng = agg("gradd", t); gs = S; gf = F; gq = Q; glo = LO; ghi = HI
            nt = agg("torch", t); ps = S; pf = F; pq = Q; plo = LO; phi = HI
            gcell = ng ? sprintf("%.1f (%.1f-%.1f)", gs, glo, ghi) : "-"
            pcell = nt ? sprintf("%.1f (%.1f-%.1f)", ps, plo, phi) : "-"
            rel = (ng && nt && ps > 0) ? sprintf("%.2fx", gs / ps) : "-"
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, gcell, pcell, rel,
                   ng ? sprintf("%.1f", FL / gs * 1e-6) : "-", nt ? sprintf("%.1f", FL / ps * 1e-6) : "-",
                   ng ? sprintf("%.1f", gf) : "-", nt ? sprintf("%.1f", pf) : "-",
                   ng ? sprintf("%.2f", gq) : "-", nt ? sprintf("%.2f", pq) : "-",
                   ng ? sprintf("%d fwd + %d step", fruns["gradd", t], runs["gradd", t]) : "-",
                   nt ? sprintf("%d fwd + %d step", fruns["torch", t], runs["torch", t]) : "-"
            tg[i] = t; G[i] = ng ? gs : ""; P[i] = nt ? ps : ""; R[i] = ng ? gq : ""
        }
        print ""
        printf "Step = forward + backward of one request (gradd: arena, graph build and check, gd_run, arena free; torch: forward with autograd + torch.autograd.grad). Times are medians over %d round(s) of the per-round medians, (min-max) of those round medians in brackets. (f+b)/f = median over rounds of step / forward-only. GFLOP/s = 3 x forward gemm flops (2.860 GFLOP) / step.\n", rounds
        printf "BLAS: gradd cblas_dgemm from %s (%s); torch %s dgemm_ from %s.\n", blas_g, blas_gc, torch_v, blas_t
        print ""
        print "Targets:"
        for (i = 1; i <= n; i++) {
            if (G[i] == "" || P[i] == "") { printf "  threads=%s: gradd step <= 1.1 x torch step: not measured\n", tg[i]; miss = 1 }
            else {
                ok = G[i] <= 1.1 * P[i]; miss = miss || !ok
                printf "  threads=%s: gradd step <= 1.1 x torch step: %.1f ms vs %.1f ms (limit %.1f): %s\n",
                       tg[i], G[i], P[i], 1.1 * P[i], ok ? "met" : "MISSED"
            }
            if (R[i] == "") { miss = 1; continue }
            ok = R[i] <= 2.8; miss = miss || !ok
            printf "  threads=%s: gradd (forward+backward)/forward <= 2.8: %.2f: %s\n", tg[i], R[i], ok ? "met" : "MISSED"
        }
        exit (strict == 1 && miss) ? 1 : 0
    }' || status=1
exit $status
