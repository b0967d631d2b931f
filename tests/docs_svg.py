#!/usr/bin/env python3
"""docs_svg.py - the pictures of the documentation's examples (docs/img/*.svg), drawn by
POST /v1/explain (contract amendment A4), kept in step with gradd.

In README.md and docs/*.md, an image line `![...](img/NAME.svg)` (or `docs/img/NAME.svg`) after a
curl example of /v1/grad or /v1/explain is that example's picture: the request body the example
sends, posted to /v1/explain. This script starts gradd on a free loopback port and

  check   (make check; the default): every such picture exists and draws what gradd draws now.
          The comparison is of the drawing's content, not its geometry, so that another Graphviz
          version's layout is not a difference: per node and edge, its id, classes, title, texts
          and colours; per graph, the set of them. Positions, sizes and comments are ignored.
  --write (make docs-svg): draw every picture again and write it.

Exit 77 (skip) when gradd was built without Graphviz (it then answers DOT text only), except under
CI=true, where that is a failure. GRADD_BIN names the gradd binary (make check sets it).
Standard library only.
"""
import glob
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
KEEP = {"id", "class", "fill", "stroke", "stroke-width", "stroke-dasharray", "text-anchor", "font-family",
        XLINK + "title"}
IMAGE = re.compile(r"^!\[[^\]]*\]\(((?:docs/)?img/[A-Za-z0-9_.-]+\.svg)\)\s*$")


def examples(doc):
    """[(svg path, request body, line)] for the image lines of a document."""
    lines = open(doc, encoding="utf-8").read().split("\n")
    out, body = [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```sh") and i + 1 < len(lines) and lines[i + 1].startswith("curl"):
            j = lines.index("```", i + 1)
            cmd = "\n".join(lines[i + 1:j])
            body = cmd if re.search(r"/v1/(grad|explain)\b", cmd) else None
            i = j
        m = IMAGE.match(line)
        if m:
            if body is None:
                raise SystemExit(f"docs_svg: {doc}:{i + 1}: a picture with no /v1/grad curl example before it")
            out.append((os.path.normpath(os.path.join(os.path.dirname(doc), m.group(1))), request_body(body), i + 1))
            body = None
        i += 1
    return out


def request_body(cmd):
    m = re.search(r"-d @- <<'EOF'\n(.*?)\nEOF", cmd, re.S) or re.search(r"-d '(.*)'\s*$", cmd, re.S)
    if not m:
        raise SystemExit(f"docs_svg: cannot find the body of:\n{cmd}")
    json.loads(m.group(1))  # a body the picture cannot draw is a documentation bug
    return m.group(1).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def explain(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("POST", "/v1/explain", body=body)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        c.close()


def content(svg):
    """What a picture shows, without where: a sorted list, one entry per node, edge and graph."""
    root = ET.fromstring(svg)
    items = []

    def walk(el, acc):
        for k, v in sorted(el.attrib.items()):
            if k in KEEP:
                acc.append(f"{el.tag.replace(SVG, '')}.{k.replace(XLINK, 'xlink:')}={v}")
        if el.tag in (SVG + "text", SVG + "title") and el.text:
            acc.append(f"{el.tag.replace(SVG, '')}:{el.text}")
        for child in el:
            if child.tag == SVG + "g" and (child.get("class") or "").split()[:1] in (["node"], ["edge"]):
                sub = []
                walk(child, sub)
                items.append("\n".join(sub))
            else:
                walk(child, acc)

    top = []
    walk(root, top)
    return sorted(items) + ["\n".join(top)]


def main(argv):
    write = "--write" in argv
    gradd = os.environ.get("GRADD_BIN", os.path.join(SRC, "build", "gradd"))
    docs = [os.path.join(SRC, "README.md")] + sorted(glob.glob(os.path.join(SRC, "docs", "*.md")))
    todo = [e for d in docs for e in examples(d)]
    port = free_port()
    p = subprocess.Popen([gradd, "--port", str(port), "--workers", "2"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    fails = 0
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for path, body, line in todo:
            rel = os.path.relpath(path, SRC)
            st, ct, svg = explain(port, body)
            if ct != "image/svg+xml":
                if os.environ.get("CI") == "true":
                    print(f"docs_svg: FAIL: gradd answered {st} {ct}: built without Graphviz?")
                    return 1
                print(f"docs_svg: SKIP: gradd answered {st} {ct} (built without Graphviz)")
                return 77
            if write:
                with open(path, "wb") as f:
                    f.write(svg)
                print(f"wrote {rel}")
            elif not os.path.exists(path):
                print(f"FAIL  {rel} is missing: run `make docs-svg`")
                fails += 1
            else:
                old, new = content(open(path, "rb").read()), content(svg)
                same = old == new
                print(("ok    " if same else "FAIL  ") + f"{rel} draws what gradd draws now")
                if not same:
                    gone, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
                    print("  only in the file:\n    " + "\n    ".join(x.replace("\n", " | ") for x in gone[:4]))
                    print("  only in gradd's:\n    " + "\n    ".join(x.replace("\n", " | ") for x in added[:4]))
                    print("  (run `make docs-svg` after a deliberate change)")
                    fails += 1
        names = {os.path.normpath(path) for path, _, _ in todo}
        for stray in sorted(set(glob.glob(os.path.join(SRC, "docs", "img", "*.svg"))) - names):
            print(f"FAIL  {os.path.relpath(stray, SRC)} is shown by no document")
            fails += 1
    finally:
        p.terminate()
        p.wait()
    print(f"docs_svg: {len(todo)} pictures, {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
