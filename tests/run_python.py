#!/usr/bin/env python3
"""Runs the project's Python test suites with unittest and prints the
closing line tests/run.sh counts: "python: N passed, N failed".

Suites: clients/python/tests (the Python client, TRL, verl and OpenRLHF
adapters against a live dsrd), deploy/tests (compose / Kubernetes / systemd
/ Dockerfile checks) and tests/readme (README's quick start in a clean
clone).  tests/clients/test_python.c runs this script from the
repository root with DSR_TEST_DSRD naming the dsrd binary under test.

A watchdog stops every dsrd the tests started and fails the run when it
takes longer than DSR_TEST_PY_TIMEOUT seconds (default 2400).
"""

import os
import sys
import threading
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = ["clients/python/tests", "deploy/tests", "tests/readme"]


def _need_yaml() -> None:
    """deploy/tests parse YAML with PyYAML (Debian: python3-yaml, installed by
    `make deps`).  A python3 earlier on PATH (pyenv, venv) may lack it; then
    rerun under the system interpreter, which has it."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        system = "/usr/bin/python3"
        if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system):
            os.execv(system, [system] + sys.argv)


def main() -> int:
    _need_yaml()
    # No __pycache__ litter in the source tree (here and in the examples run
    # as subprocesses).
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    os.chdir(REPO)
    sys.path.insert(0, os.path.join(REPO, "clients", "python", "tests"))
    import dsrd  # the live-server helper; its processes are stopped at exit

    # the quick-start test builds a clean clone: minutes on two cores
    limit = float(os.environ.get("DSR_TEST_PY_TIMEOUT", "2400"))

    def expire() -> None:
        print("python: watchdog: tests ran over %.0f s" % limit, flush=True)
        dsrd.stop_all()
        print("python: 0 passed, 1 failed", flush=True)
        os._exit(1)

    watchdog = threading.Timer(limit, expire)
    watchdog.daemon = True
    watchdog.start()

    passed = failed = skipped_total = 0
    for rel in SUITES:
        start = os.path.join(REPO, rel)
        suite = unittest.defaultTestLoader.discover(start, pattern="test_*.py", top_level_dir=start)
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped) + len(result.expectedFailures)
        failed += bad
        skipped_total += skipped
        passed += result.testsRun - bad - skipped
        sys.stdout.flush()
    watchdog.cancel()
    dsrd.stop_all()
    if skipped_total:
        print("python: %d skipped (see 'skipped' above)" % skipped_total)
    print("python: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
