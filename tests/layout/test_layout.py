#!/usr/bin/env python3
"""The tree's layering, as ARCHITECTURE.md states it, checked on the sources:

* core/ is folders; a file in core/<a> includes core headers by folder
  ("nn/ops.h") and only from folders below <a> in LAYERS (or its own);
* core/ includes nothing from proto/, server/ or clients/; proto/ nothing
  from server/ or clients/;
* a private header (*_internal.h) is included only from its own folder;
* tests/core/<folder> exists only for a core folder (tests mirror the tree);
* no source file is over MAX_LINES lines.

Prints "ok NAME" / "FAIL NAME" and "test_layout: N passed, N failed".
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Each folder may include the folders of earlier levels (and its own).
LAYERS = [["base"], ["tokenizer", "image", "io", "nn", "world"], ["model"], ["janus"], ["train"]]
LEVEL = {f: i for i, level in enumerate(LAYERS) for f in level}
MAX_LINES = 700
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def files(*suffixes):
    out = subprocess.check_output(["git", "ls-files"], cwd=ROOT, text=True).split("\n")
    return [f for f in out if f.endswith(suffixes) and os.path.isfile(os.path.join(ROOT, f))]


def includes(path):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        return INCLUDE.findall(f.read())


def check_core_layers():
    bad = []
    folders = sorted(d for d in os.listdir(os.path.join(ROOT, "core")) if os.path.isdir(os.path.join(ROOT, "core", d)))
    assert folders == sorted(LEVEL), "core folders %s, LAYERS names %s" % (folders, sorted(LEVEL))
    loose = [f for f in os.listdir(os.path.join(ROOT, "core")) if os.path.isfile(os.path.join(ROOT, "core", f))]
    assert not loose, "files directly in core/: %s" % loose
    for f in files(".c", ".h"):
        if not f.startswith("core/"):
            continue
        own = f.split("/")[1]
        for inc in includes(f):
            if "/" not in inc:  # a header of the same folder, included relatively
                if not os.path.exists(os.path.join(ROOT, "core", own, inc)):
                    bad.append("%s: \"%s\" is not a header of core/%s" % (f, inc, own))
                continue
            top = inc.split("/")[0]
            if top not in LEVEL:
                bad.append("%s includes \"%s\", outside core/" % (f, inc))
            elif top != own and LEVEL[top] >= LEVEL[own]:
                bad.append("%s (core/%s, level %d) includes \"%s\" (level %d)" % (f, own, LEVEL[own], inc, LEVEL[top]))
    assert not bad, "\n    ".join(bad)


def check_proto_layer():
    server = set(os.listdir(os.path.join(ROOT, "server")))
    clients = {n for d in os.listdir(os.path.join(ROOT, "clients")) if os.path.isdir(os.path.join(ROOT, "clients", d))
               for n in os.listdir(os.path.join(ROOT, "clients", d))}
    bad = ["%s includes \"%s\"" % (f, inc) for f in files(".c", ".h") if f.startswith("proto/")
           for inc in includes(f) if inc in server or inc in clients]
    assert not bad, "\n    ".join(bad)


def check_private_headers():
    bad = []
    for f in files(".c", ".h"):
        for inc in includes(f):
            name = os.path.basename(inc)
            if not name.endswith("_internal.h"):
                continue
            home = [h for h in files(".h") if os.path.basename(h) == name]
            if not home or os.path.dirname(home[0]) != os.path.dirname(f):
                bad.append("%s includes the private header %s" % (f, inc))
    assert not bad, "\n    ".join(bad)


def check_tests_mirror():
    tdir = os.path.join(ROOT, "tests", "core")
    extra = [d for d in os.listdir(tdir) if d not in LEVEL]
    assert not extra, "tests/core/ folders with no core/ folder: %s" % extra


def check_file_sizes():
    big = []
    for f in files(".c", ".h", ".py", ".js"):
        if f.startswith(("tests/fixtures/", "clients/python/_build/")):
            continue
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            n = sum(1 for _ in fh)
        if n > MAX_LINES:
            big.append("%s: %d lines" % (f, n))
    assert not big, "over %d lines:\n    %s" % (MAX_LINES, "\n    ".join(big))


def main():
    passed = failed = 0
    for name, fn in [("core_layers", check_core_layers), ("proto_layer", check_proto_layer),
                     ("private_headers", check_private_headers), ("tests_mirror", check_tests_mirror),
                     ("file_sizes", check_file_sizes)]:
        try:
            fn()
            print("ok   %s" % name)
            passed += 1
        except AssertionError as e:
            print("FAIL %s\n    %s" % (name, e))
            failed += 1
    print("test_layout: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
