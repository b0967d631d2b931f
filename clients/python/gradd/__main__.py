"""python -m gradd REQUEST.json [--url URL] [--token T] [--eval]

Sends a /v1/grad (or, with --eval, /v1/eval) request written as JSON to gradd
and prints its diagnostics, one block each (code, message, path, hint), or
the error. Exit status: 0 when no diagnostic is an error, 1 when some
gradient is missing (or the answer is 422 no_gradients), 2 for any other
error. GRADD_URL and GRADD_TOKEN set the defaults.
"""
import argparse
import json
import os
import sys

from .client import Client
from .errors import GraddError, NoGradientError, diagnostic_from_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gradd", description="Print the diagnostics of a gradd request.")
    ap.add_argument("request", help="a JSON file holding a /v1/grad body ('-': standard input)")
    ap.add_argument("--url", default=os.environ.get("GRADD_URL", "http://localhost:8080"))
    ap.add_argument("--token", default=os.environ.get("GRADD_TOKEN"))
    ap.add_argument("--eval", action="store_true", help="send it to /v1/eval")
    args = ap.parse_args(argv)
    try:
        text = sys.stdin.read() if args.request == "-" else open(args.request, encoding="utf-8").read()
        body = json.loads(text)
    except (OSError, ValueError) as e:
        print(f"gradd: cannot read {args.request}: {e}", file=sys.stderr)
        return 2
    try:
        answer = Client(args.url, token=args.token).request_json("/v1/eval" if args.eval else "/v1/grad", body)
    except NoGradientError as e:
        print(e)
        return 1
    except GraddError as e:
        print(e, file=sys.stderr)
        return 2
    diags = [diagnostic_from_json(d) for d in answer.get("diagnostics", [])]
    if not diags:
        print("no diagnostics: every gradient is there and finite")
    for d in diags:
        print(d)
    return 1 if any(d.is_error for d in diags) else 0


if __name__ == "__main__":
    sys.exit(main())
