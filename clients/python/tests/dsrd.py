"""Starts a real dsrd for the tests, on a free local port.

The binary is $DSR_TEST_DSRD (set by tests/clients/test_python.c to the dsrd of the
build being tested) or build/dsrd.  The model arguments are
$DSR_TEST_MODEL_ARGS, by default the tiny Janus fixture.  Processes run from
the repository root and are stopped at interpreter exit.
"""

import atexit
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from dsr_client import Client  # noqa: E402

FIXTURE_IMAGES = os.path.join(REPO, "tests", "fixtures", "image-processing")
DEFAULT_MODEL_ARGS = "--model tests/fixtures/janus-tiny --boi-id 259 --eoi-id 260"


def image_path(name: str) -> str:
    return os.path.join(FIXTURE_IMAGES, name)


def image_bytes(name: str) -> bytes:
    with open(image_path(name), "rb") as f:
        return f.read()


def dsrd_binary() -> str:
    return os.environ.get("DSR_TEST_DSRD") or os.path.join(REPO, "build", "dsrd")


_routes = None


def has_route(route: str) -> bool:
    """Whether the dsrd under test serves ``route`` ("POST /update"), from
    its ``--routes`` table.  Lets the admin-endpoint tests wait for a daemon
    that implements them instead of failing on a 404."""
    global _routes
    if _routes is None:
        out = subprocess.run([dsrd_binary(), "--routes"], capture_output=True, text=True,
                             timeout=30, env={k: v for k, v in os.environ.items()
                                              if not k.startswith("DSR_")})
        _routes = {" ".join(l.split()) for l in out.stdout.splitlines() if l.strip()}
        if not _routes:
            raise RuntimeError("dsrd --routes printed nothing: " + out.stderr)
    return route in _routes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dsrd:
    """One dsrd process.  ``args`` are extra command-line flags."""

    def __init__(self, *args: str, ready_timeout: float = 60.0):
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.proc = None
        self.port = 0
        self.workdir = tempfile.mkdtemp(prefix="dsr-pytest-")
        self.checkpoint_dir = os.path.join(self.workdir, "checkpoints")
        os.mkdir(self.checkpoint_dir)
        self.log_path = os.path.join(self.workdir, "dsrd.log")

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def client(self, **kw) -> Client:
        kw.setdefault("timeout", 120.0)
        return Client(self.url, **kw)

    def start(self) -> "Dsrd":
        binary = dsrd_binary()
        if not os.access(binary, os.X_OK):
            raise RuntimeError("dsrd not built: %s" % binary)
        model_args = shlex.split(os.environ.get("DSR_TEST_MODEL_ARGS", DEFAULT_MODEL_ARGS))
        # A port found free can be taken before dsrd binds it; try a few.
        for _ in range(5):
            self.port = free_port()
            cmd = [binary, "--host", "127.0.0.1", "--port", str(self.port),
                   "--checkpoint-dir", self.checkpoint_dir,
                   "--image-root", FIXTURE_IMAGES] + model_args + self.args
            env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            log.close()
            if self._wait_ready():
                atexit.register(self.stop)
                _started.append(self)
                return self
        raise RuntimeError("dsrd did not start; log:\n" + self.log_tail())

    def _wait_ready(self) -> bool:
        probe = Client(self.url, timeout=2.0, retries=0)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                probe.health()
                return True
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dsrd not ready after %.0f s; log:\n%s"
                           % (self.ready_timeout, self.log_tail()))

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_shared = None
_started = []


def stop_all() -> None:
    """Stops every dsrd this process started (the runner's watchdog uses it)."""
    for d in list(_started):
        d.stop()


def shared() -> Dsrd:
    """A dsrd shared by the tests that do not change its weights."""
    global _shared
    if _shared is None:
        _shared = Dsrd().start()
    return _shared
