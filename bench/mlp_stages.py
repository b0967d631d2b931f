#!/usr/bin/env python3
"""mlp_stages.py - where one MLP step's time goes (bench/http_mlp, binary
framing) for one or more gradd binaries, alternating them every round, a
fresh gradd (--workers 1 --blas-threads 2) each round:

  client      http_mlp's own encode + decode (the RESULT line's client_ms);
  receive     gradd, request headers in -> last body byte in: the log line's
              total_us - queue_us - compute_us - the client's download;
  compute     gradd's log, last body byte -> response queued (queue_us +
              compute_us: decode, forward, backward, encode);
  download    the client, status line -> last response byte (download_ms);
  rest        e2e - the above (loopback latency, curl, the response's
              headers and the first send);
  cpu         gradd's own CPU time per request (utime + stime, /proc).

Medians over the timed requests of each round. No assertion: a measurement
aid for docs/benchmarks.md ("xfer10").

    mlp_stages.py [--hidden 1024] [--rounds 3] [--runs 8] GRADD [GRADD...]
BENCH_BINDIR: where http_mlp is (default: bench/ beside the first GRADD).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port  # noqa: E402


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def one_round(gradd, http_mlp, hidden, runs):
    port = free_port()
    with tempfile.TemporaryFile() as log:
        p = subprocess.Popen([gradd, "--port", str(port), "--workers", "1", "--blas-threads", "2"],
                             stdout=subprocess.DEVNULL, stderr=log)
        try:
            url = "http://127.0.0.1:%d/v1/grad" % port
            for _ in range(100):
                try:
                    subprocess.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:%d/healthz" % port],
                                   check=True)
                    break
                except subprocess.CalledProcessError:
                    time.sleep(0.05)
            base = [http_mlp, "--url", url, "--format", "binary", "--hidden", str(hidden), "--min-time", "0"]
            subprocess.run(base + ["--min-runs", "1", "--warmup", "1"], check=True, stdout=subprocess.DEVNULL)
            log.seek(0, 2)
            before = log.tell()
            c0 = cpu_ticks(p.pid)
            out = subprocess.run(base + ["--min-runs", str(runs), "--warmup", "1"], check=True,
                                 capture_output=True, text=True).stdout
            c1 = cpu_ticks(p.pid)
            time.sleep(0.2)  # the last log line
            log.seek(before)
            lines = log.read().decode()
        finally:
            p.terminate()
            p.wait()
    res = next(ln for ln in out.splitlines() if ln.startswith("RESULT http"))
    r = {k: float(v) for k, v in (f.split("=", 1) for f in res.split()[2:]) if k != "format"}
    logs = [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in
            re.finditer(r"status=200 bytes_in=\d+ bytes_out=\d+ queue_us=(\d+) compute_us=(\d+) total_us=(\d+)", lines)]
    logs = logs[1:]  # the warm-up request of the timed run
    compute = statistics.median((q + c) / 1e3 for q, c, _ in logs)
    total = statistics.median(t / 1e3 for _, _, t in logs)
    receive = total - compute - r["download_ms"]
    rest = r["e2e_ms"] - r["client_ms"] - receive - compute - r["download_ms"]
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (c1 - c0) * 1000.0 / tck / (len(logs) + 1)
    return {"e2e": r["e2e_ms"], "client": r["client_ms"], "receive": receive, "compute": compute,
            "download": r["download_ms"], "rest": rest, "cpu": cpu, "sent_to_last": r["sent_to_last_ms"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("gradd", nargs="+")
    a = ap.parse_args()
    bindir = os.environ.get("BENCH_BINDIR") or os.path.join(os.path.dirname(os.path.abspath(a.gradd[0])), "bench")
    http_mlp = os.path.join(bindir, "http_mlp")
    print("mlp_stages: H=%d, %d round(s) x %d requests, %s; load average %s" %
          (a.hidden, a.rounds, a.runs, time.strftime("%H:%M:%S", time.gmtime()), os.getloadavg()))
    for rnd in range(1, a.rounds + 1):
        order = a.gradd if rnd % 2 else list(reversed(a.gradd))
        for g in order:
            s = one_round(g, http_mlp, a.hidden, a.runs)
            print("round %d %s: e2e %.1f ms = client %.1f + receive %.1f + compute %.1f + download %.1f + rest %.1f; "
                  "sent_to_last %.1f ms; gradd CPU %.1f ms/request" %
                  (rnd, g, s["e2e"], s["client"], s["receive"], s["compute"], s["download"], s["rest"],
                   s["sent_to_last"], s["cpu"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
