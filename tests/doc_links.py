#!/usr/bin/env python3
"""doc_links.py - every relative link of README.md and docs/*.md resolves.

A link [text](target) that is not a URL must name a file or directory that
exists (relative to the document), and its #anchor, if any, must be a heading
of the target Markdown file (GitHub's anchors: lowercase, punctuation other
than - and _ dropped, spaces as -, repeats numbered -1, -2...). Links inside
fenced code blocks are ignored.

Usage: doc_links.py [DOC.md...]   (make check runs it without arguments)
Standard library only.
"""
import glob
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^\s*```")


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    inside = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                inside = not inside
                continue
            if not inside:
                yield n, line


def anchors(path):
    seen = {}
    out = set()
    for _, line in prose_lines(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        k = seen.get(slug, 0)
        seen[slug] = k + 1
        out.add(slug if k == 0 else f"{slug}-{k}")
    return out


def check(doc):
    problems = []
    for n, line in prose_lines(doc):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            where = f"{os.path.relpath(doc, ROOT)}:{n}: ({target})"
            if not os.path.exists(dest):
                problems.append(f"{where} {os.path.relpath(dest, ROOT)} does not exist")
            elif anchor and (not dest.endswith(".md") or anchor not in anchors(dest)):
                problems.append(f"{where} no heading #{anchor} in {os.path.relpath(dest, ROOT)}")
    return problems


def main(argv):
    docs = argv or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    problems = []
    links = 0
    for doc in docs:
        links += sum(len(LINK.findall(l)) for _, l in prose_lines(doc))
        problems += check(doc)
    for p in problems:
        print("FAIL " + p)
    print(f"doc_links: {links - len(problems)}/{links} links resolve in {len(docs)} documents")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
