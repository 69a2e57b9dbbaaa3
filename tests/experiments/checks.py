"""The experiment tests' checks: each prints "ok   WHAT" or "FAIL WHAT: got ...",
and finish() prints the closing line tests/run.sh reads, "SUITE: N passed, N failed"."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "experiments", "dsr-shapes"))  # the scripts under test

results = []


def check(ok, what, got=None):
    results.append(bool(ok))
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": got {got!r}"))


def finish(suite):
    """Prints the closing line; returns the exit status."""
    passed = sum(results)
    print(f"{suite}: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1
