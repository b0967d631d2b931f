#!/usr/bin/env python3
"""make_corpus.py - the fuzzer's seed corpus and dictionary, from the project.

Seeds (tests/fuzz/corpus/, one file per distinct input, named SOURCE-HASH),
every /v1/grad and /v1/eval body the project already holds:
  README.md, docs/*.md        every JSON object with a "graph" key in the text
                              (the curl examples' bodies); /v1/eval when the
                              nearest endpoint named before it is /v1/eval
  tests/data/golden/*.json    every case posted to /v1/grad or /v1/eval:
                              "json" and "text" bodies plain, "binary" framed
  tests/data/fixture_*.json   the PyTorch fixtures' requests
  tests/difftest/cases/*.json the differential test's regression cases
                              ("binary_values" moved to a binary section)
Each seed is written in the harness's input layout (fuzz_request.c): an
options byte (endpoint, framing; default limits and deadline), with framing a
little-endian uint32 JSON length, then the body. Bodies over 16 KiB are left
out (mutating them is slow; the fuzzer grows inputs itself).

Dictionary (tests/fuzz/gradd.dict): every op name, input name and attribute
name of GET /v1/ops, every string of the decoder's key and choice tables
(proto/*.c: `static const char *const NAME[] = {...}`) and the keys it reads
one at a time (json_object_get(j, "inputs") ...), and the JSON and
framing tokens of the contract (NaN, Infinity, big and exact integers).

Usage:
  make_corpus.py --gradd BIN [--write]    regenerate corpus and dictionary
  make_corpus.py --gradd BIN --check-dict exit 1 with a diff when the
                                          committed dictionary is stale
Without --write, prints what it would write. Standard library only.
"""
import argparse
import base64
import difflib
import glob
import hashlib
import json
import os
import re
import struct
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import gen_ops_md  # noqa: E402
import golden  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
DICT = os.path.join(HERE, "gradd.dict")
MAX_SEED = 16 * 1024
OPT_EVAL, OPT_FRAMED, OPT_BY_ID = 1, 2, 128


def seed(endpoint, body, bin_section=None, by_id=False):
    """The harness's input for one request body (bytes); by_id: the harness
    registers the body's graph first and sends the request by graph_id."""
    opt = (OPT_EVAL if endpoint == "/v1/eval" else 0) | (OPT_BY_ID if by_id else 0)
    if bin_section is None:
        return bytes([opt]) + body
    return bytes([opt | OPT_FRAMED]) + struct.pack("<I", len(body)) + body + bin_section


# ---- sources ------------------------------------------------------------------------------

GRAPH_OBJ = re.compile(r'\{\s*"graph"\s*:')
ENDPOINT = re.compile(r"/v1/(grad|eval)\b")


def from_docs():
    """(name, bytes) of every request body shown in README.md and docs/*.md."""
    dec = json.JSONDecoder()
    for path in [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        text = open(path, encoding="utf-8").read()
        for m in GRAPH_OBJ.finditer(text):
            try:
                _, end = dec.raw_decode(text, m.start())
            except ValueError:
                continue
            eps = ENDPOINT.findall(text, 0, m.start())
            ep = "/v1/" + (eps[-1] if eps else "grad")
            yield "doc", seed(ep, text[m.start():end].encode())


def from_golden():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "golden", "*.json"))):
        for case in golden.load(path)["cases"]:
            ep = case.get("path", "")
            if ep not in ("/v1/grad", "/v1/eval"):
                continue
            if "json" in case:
                yield "golden", seed(ep, golden.dumps(case["json"]).encode())
                if isinstance(case["json"], dict) and "graph" in case["json"]:
                    yield "golden_id", seed(ep, golden.dumps(case["json"]).encode(), by_id=True)
            elif "text" in case:
                yield "golden", seed(ep, case["text"].encode())
            elif "binary" in case:
                part = golden.dumps(case["binary"]["json"]).encode()
                yield "golden", seed(ep, part, base64.b64decode(case["binary"]["b64"]))


def from_fixtures():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "fixture_*.json"))):
        req = json.load(open(path, encoding="utf-8"))["request"]
        yield "fixture", seed("/v1/grad", json.dumps(req, allow_nan=False).encode())


def from_difftest():
    """difftest.py's wire(): binary_values move to an 8-aligned binary section."""
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "difftest", "cases", "*.json"))):
        case = json.load(open(path, encoding="utf-8"))
        req, moved = case["request"], case.get("binary_values", [])
        if not moved:
            yield "difftest", seed("/v1/grad", json.dumps(req, allow_nan=False).encode())
            continue
        sec = bytearray()
        for name in moved:
            v = req["values"][name]
            raw = base64.b64decode(v.pop("b64"))
            while len(sec) % 8:
                sec.append(0)
            v["offset"], v["nbytes"] = len(sec), len(raw)
            sec += raw
        yield "difftest", seed("/v1/grad", json.dumps(req, allow_nan=False).encode(), bytes(sec))


def corpus():
    """{file name: bytes}, deduplicated by content."""
    out, seen, skipped = {}, set(), 0
    for gen in (from_docs, from_golden, from_fixtures, from_difftest):
        for source, data in gen():
            h = hashlib.sha1(data).hexdigest()
            if h in seen:
                continue
            seen.add(h)
            if len(data) > MAX_SEED:
                skipped += 1
                continue
            out[f"{source}-{h[:16]}"] = data
    return out, skipped


# ---- dictionary ---------------------------------------------------------------------------

TABLE = re.compile(r"static const char \*const \w+\[\]\s*=\s*\{([^}]*)\}", re.S)
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
# A key read one at a time: json_object_get(j, "inputs"), opt(root, "fetch"), k[m++] = "op".
KEY_READ = re.compile(r'(?:json_object_get\(\w+,|opt\(\w+,|gd_jp_key\(&?\w+,|\] =)\s*"([a-z_][a-z0-9_]*)"')
TOKENS = [
    '"NaN"', '"Infinity"', '"-Infinity"', "-0.0", "1e308", "-1e308", "5e-324", "1e-300",
    "9007199254740992", "9007199254740993", "-9007199254740993", "2147483648", "4294967296",
    "1e999", "0.1", "[]", "[[]]", "{}", "null", "true", "false", '""',
    "\\x00\\x00\\x00\\x00", "\\xff\\xff\\xff\\xff", "\\x00\\x00\\x00\\x00\\x00\\x00\\xf8\\x7f",
    "\\x00\\x00\\x00\\x00\\x00\\x00\\xf0\\x7f", "\\x00\\x00\\xc0\\x7f",
]


def decoder_strings():
    names = set()
    for path in sorted(glob.glob(os.path.join(ROOT, "proto", "*.c"))):
        text = open(path, encoding="utf-8").read()
        for m in TABLE.finditer(text):
            names.update(STRING.findall(m.group(1)))
        names.update(KEY_READ.findall(text))
    return names


def dictionary(ops):
    words = set(decoder_strings())
    for op in ops["ops"]:
        words.add(op["name"])
        words.update(op["inputs"]["names"])
        words.update(op["attributes"])
    lines = ["# tests/fuzz/gradd.dict - libFuzzer dictionary, generated by tests/fuzz/make_corpus.py",
             "# from GET /v1/ops and proto/*.c's key tables; do not edit by hand."]
    for w in sorted(words):
        lines.append('"\\"%s\\""' % w.replace("\\", "\\\\").replace('"', '\\"'))
    for t in TOKENS:
        lines.append('"%s"' % t.replace('"', '\\"') if not t.startswith("\\x") else '"%s"' % t)
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradd", help="gradd binary (for GET /v1/ops)", default=os.environ.get("GRADD_BIN"))
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--check-dict", action="store_true")
    args = ap.parse_args(argv)
    if not args.gradd:
        ap.error("--gradd BIN (or GRADD_BIN) is needed for GET /v1/ops")
    ops = gen_ops_md.with_gradd(args.gradd, gen_ops_md.fetch_ops)
    want = dictionary(ops)
    if args.check_dict:
        have = open(DICT, encoding="utf-8").read() if os.path.exists(DICT) else ""
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), DICT, "generated"))
            print("tests/fuzz/gradd.dict is stale: python3 tests/fuzz/make_corpus.py --gradd build/gradd --write")
            return 1
        print(f"make_corpus: {DICT} is up to date ({want.count(chr(10)) - 2} entries)")
        return 0
    files, skipped = corpus()
    total = sum(len(d) for d in files.values())
    print(f"make_corpus: {len(files)} seeds, {total} bytes ({skipped} over {MAX_SEED} bytes left out)")
    if not args.write:
        return 0
    os.makedirs(CORPUS, exist_ok=True)
    for old in os.listdir(CORPUS):
        if old not in files:
            os.remove(os.path.join(CORPUS, old))
    for name, data in files.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    with open(DICT, "w", encoding="utf-8") as f:
        f.write(want)
    print(f"make_corpus: wrote {CORPUS}/ and {DICT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
