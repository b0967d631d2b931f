"""http_check.py - small helpers for bench/http_bench.sh (standard library only).

    http_check.py free-port                 print a free TCP port on 127.0.0.1
    http_check.py wait URL SECONDS          wait until URL answers any HTTP status
    http_check.py compare BODY URL_A URL_B  POST the JSON file BODY to both URLs and
                                            check both answer 200 with the same
                                            target and gradients (rel. 1e-12)
"""
import json
import sys
import time
import urllib.error
import urllib.request
from benchlib import free_port


def wait(url, seconds):
    end = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return 0
        except urllib.error.HTTPError:
            return 0  # any status: the server is up
        except OSError:
            if time.monotonic() > end:
                print("http_check: %s did not answer within %s s" % (url, seconds), file=sys.stderr)
                return 1
            time.sleep(0.1)


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]


def same(a, b, path):
    """Structural equality, floats to a relative 1e-12; returns a mismatch's path or None."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return None if abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1e-300) else path
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            bad = same(x, y, "%s[%d]" % (path, i))
            if bad:
                return bad
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return path
        for k in a:
            bad = same(a[k], b[k], "%s.%s" % (path, k))
            if bad:
                return bad
        return None
    return None if a == b else path


def compare(body_file, url_a, url_b):
    with open(body_file, "rb") as f:
        body = f.read()
    answers = []
    for url in (url_a, url_b):
        status, doc = post(url, body)
        if status != 200:
            print("http_check: %s answered %s: %r" % (url, status, doc), file=sys.stderr)
            return 1
        answers.append(doc)
    for key in ("target", "gradients"):
        bad = same(answers[0].get(key), answers[1].get(key), "$." + key)
        if bad:
            print("http_check: the answers differ at %s:\n  %s: %s\n  %s: %s"
                  % (bad, url_a, json.dumps(answers[0].get(key)), url_b, json.dumps(answers[1].get(key))),
                  file=sys.stderr)
            return 1
    print("same answer from both: target %s, gradients %s"
          % (json.dumps(answers[0]["target"]), json.dumps(answers[0]["gradients"])))
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "free-port":
        print(free_port())
        return 0
    if len(argv) == 4 and argv[1] == "wait":
        return wait(argv[2], float(argv[3]))
    if len(argv) == 5 and argv[1] == "compare":
        return compare(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
