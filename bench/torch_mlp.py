#!/usr/bin/python3
"""torch_mlp.py - the PyTorch reference for bench/bench_mlp.c: the same
3-layer MLP step in float64 on the same data, timed the same way.

    x [256, 784], labels int64 [256]
    h1 = relu(x @ W1 + b1), h2 = relu(h1 @ W2 + b2), logits = h2 @ W3 + b3
    loss = F.cross_entropy(logits, labels)  (mean reduction)

forward only runs under torch.no_grad() (gradd's grad=0 keeps nothing for a
backward either); the step is the forward with autograd recording plus
torch.autograd.grad(loss, [W1, b1, W2, b2, W3, b3]) (fresh gradient tensors
each step, as a gradd request returns new ones; x has no requires_grad).

The data is bench_mlp.c's splitmix64 streams, element for element, so the
CHECK lines of both programs must agree to rounding.

Run with Debian's interpreter (/usr/bin/python3, python3-torch), e.g.
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_mlp.py --threads 1
"""
import argparse
import ctypes
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

B, D_IN, D_H, D_OUT = 256, 784, 1024, 10
T_X, T_LABELS, T_W1, T_B1, T_W2, T_B2, T_W3, T_B3 = range(8)
NAMES = ["x", "labels", "W1", "b1", "W2", "b2", "W3", "b3"]



def set_hidden(h):
    """The hidden width (--hidden; bench_mlp.c's is 1024) and the flop counts that follow from it."""
    global D_H, FWD_FLOPS, BWD_FLOPS_EXEC
    D_H = h
    FWD_FLOPS = 2.0 * B * (D_IN * D_H + D_H * D_H + D_H * D_OUT)
    BWD_FLOPS_EXEC = 2.0 * B * (D_IN * D_H + 2 * D_H * D_H + 2 * D_H * D_OUT)


set_hidden(D_H)

U64 = np.uint64


def mix_at(seed, t, n):
    """bench_mlp.c's mix_at(seed, t, i) for i in [0, n), as uint64."""
    with np.errstate(over="ignore"):
        key = U64(((seed << 8) | t) * 0xD1B54A32D192ED03 % (1 << 64))
        i = np.arange(1, n + 1, dtype=U64)
        z = key + i * U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        return z ^ (z >> U64(31))


def uniform(seed, t, shape, lo, hi):
    n = int(np.prod(shape))
    u = (mix_at(seed, t, n) >> U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return torch.from_numpy((lo + (hi - lo) * u).reshape(shape))


def make_data(seed):
    x = uniform(seed, T_X, (B, D_IN), 0.0, 1.0)
    labels = torch.from_numpy((mix_at(seed, T_LABELS, B) % U64(D_OUT)).astype(np.int64))
    params = []
    for t, shape, fan_in in [(T_W1, (D_IN, D_H), D_IN), (T_B1, (D_H,), D_IN), (T_W2, (D_H, D_H), D_H),
                             (T_B2, (D_H,), D_H), (T_W3, (D_H, D_OUT), D_H), (T_B3, (D_OUT,), D_H)]:
        bound = 1.0 / math.sqrt(fan_in)
        params.append(uniform(seed, t, shape, -bound, bound).requires_grad_(True))
    return x, labels, params


def forward(x, labels, p):
    W1, b1, W2, b2, W3, b3 = p
    h1 = torch.relu(x @ W1 + b1)
    h2 = torch.relu(h1 @ W2 + b2)
    return F.cross_entropy(h2 @ W3 + b3, labels)


def fwd_only(x, labels, p):
    with torch.no_grad():
        return forward(x, labels, p)


def step(x, labels, p):
    loss = forward(x, labels, p)
    grads = torch.autograd.grad(loss, p)
    return loss, grads


def measure(fn, warmup, min_runs, min_time):
    """Warm-up, then N = max(min_runs, min_time / warm-up median) timed runs;
    returns (median, min, max, N) in seconds."""
    w = []
    for _ in range(max(warmup, 1)):
        t0 = time.perf_counter()
        fn()
        w.append(time.perf_counter() - t0)
    est = statistics.median(w)
    n = max(min_runs, math.ceil(min_time / est) if est > 0 else min_runs)
    v = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        v.append(time.perf_counter() - t0)
    return statistics.median(v), min(v), max(v), n


def blas_libs():
    """Mapped shared objects whose path names a BLAS/LAPACK/MKL library."""
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6:
                path = parts[5].strip()
                low = os.path.basename(path).lower()
                if any(k in low for k in ("blas", "lapack", "mkl", "gomp", "iomp")) and path not in seen:
                    seen.append(path)
    return seen


class DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def gemm_providers():
    """(symbol, library path) for the BLAS gemm entry points as libtorch_cpu
    resolves them: dlsym on libtorch_cpu's handle searches it and its
    dependencies in load order, dladdr names the object the address is in."""
    torch_lib = None
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and "libtorch_cpu" in os.path.basename(parts[5]):
                torch_lib = parts[5].strip()
                break
    if torch_lib is None:
        return []
    libc = ctypes.CDLL(None)
    lib = ctypes.CDLL(torch_lib)
    out = []
    for sym in ("dgemm_", "cblas_dgemm"):
        try:
            addr = ctypes.cast(getattr(lib, sym), ctypes.c_void_p)
        except AttributeError:
            continue
        info = DlInfo()
        if libc.dladdr(addr, ctypes.byref(info)) and info.dli_fname:
            out.append((sym, os.path.realpath(info.dli_fname.decode())))
    return out


def openblas_handles(paths):
    """ctypes handles of mapped libraries that export openblas_set_num_threads."""
    out = []
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_set_num_threads  # AttributeError when absent
            out.append((p, lib))
        except (OSError, AttributeError):
            pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=1024, help="hidden width (default 1024, as bench_mlp.c)")
    a = ap.parse_args()
    set_hidden(a.hidden)

    torch.set_num_threads(a.threads)
    x, labels, params = make_data(a.seed)
    # Touch every path once so that the BLAS is loaded before it is reported.
    loss, grads = step(x, labels, params)

    print("torch_mlp: the same MLP step in PyTorch %s, float64 (%s)" % (torch.__version__, sys.executable))
    print("env: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s OPENBLAS_NUM_THREADS=%s OMP_NUM_THREADS=%s OMP_WAIT_POLICY=%s"
          % tuple(os.environ.get(k, "(unset)") for k in
                  ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                   "OMP_WAIT_POLICY")))
    for line in torch.__config__.show().splitlines():
        low = line.lower()
        if "blas" in low or "lapack" in low or "mkl" in low:
            for item in line.split(", "):
                if any(k in item.lower() for k in ("blas", "lapack", "mkl")):
                    print("BLAS: torch config: %s" % item.strip(" -"))
    for sym, path in gemm_providers():
        print("BLAS: %s (as libtorch_cpu resolves it) from %s" % (sym, path))
    libs = blas_libs()
    for p in libs:
        print("BLAS: mapped %s" % p)
    handles = openblas_handles(libs)
    for p, lib in handles:
        # torch.set_num_threads sets OpenMP/intra-op threads; an OpenBLAS
        # build with pthreads takes its own count: set it the same.
        lib.openblas_set_num_threads(a.threads)
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        print("BLAS: %s: openblas_get_config() = %s, corename %s, openblas_get_num_threads() = %d"
              % (os.path.basename(p), lib.openblas_get_config().decode(), lib.openblas_get_corename().decode(),
                 lib.openblas_get_num_threads()))
    print("threads: torch.get_num_threads() = %d (requested %d)" % (torch.get_num_threads(), a.threads))
    print("flops: forward F = 2*B*(784*H + H*H + H*10), H = %d: %.4f GFLOP; step (nominal, used for GFLOP/s) "
          "= 3F = %.4f GFLOP; gemms really needed (no dx for layer 1) = %.4f GFLOP"
          % (D_H, FWD_FLOPS * 1e-9, 3 * FWD_FLOPS * 1e-9, (FWD_FLOPS + BWD_FLOPS_EXEC) * 1e-9))

    ok = all(torch.isfinite(g).all().item() for g in grads) and abs(loss.item() - math.log(10)) < 0.25
    print("check: loss = %.6f (log 10 = %.6f), gradients finite %s: %s"
          % (loss.item(), math.log(10), "yes" if ok else "NO", "ok" if ok else "FAILED"))
    fields = ["loss=%.15e" % loss.item()]
    for t, g in zip(range(T_W1, T_B3 + 1), grads):
        fields.append("norm_%s=%.15e sum_%s=%.15e" % (NAMES[t], g.norm().item(), NAMES[t], g.sum().item()))
    print("CHECK torch " + " ".join(fields))
    if not ok:
        return 1

    fw = measure(lambda: fwd_only(x, labels, params), a.warmup, a.min_runs, a.min_time)
    sp = measure(lambda: step(x, labels, params), a.warmup, a.min_runs, a.min_time)
    for what, (med, lo, hi, n), fl in (("forward only:", fw, FWD_FLOPS), ("forward+backward:", sp, 3 * FWD_FLOPS)):
        print("%-17s runs=%d median %.2f ms (min %.2f, max %.2f) = %.1f GFLOP/s"
              % (what, n, 1e3 * med, 1e3 * lo, 1e3 * hi, fl / med * 1e-9))
    ratio = sp[0] / fw[0]
    print("ratio (forward+backward)/forward = %.3f" % ratio)
    print("RESULT torch hidden=%d threads=%d fwd_ms=%.3f step_ms=%.3f ratio=%.3f gflops=%.2f fwd_gflops=%.2f runs=%d fwd_runs=%d"
          % (D_H, a.threads, 1e3 * fw[0], 1e3 * sp[0], ratio, 3 * FWD_FLOPS / sp[0] * 1e-9, FWD_FLOPS / fw[0] * 1e-9,
             sp[3], fw[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
