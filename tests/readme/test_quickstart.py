"""README's quick start, run line by line in a clean clone.

The committed tree is cloned into a temporary directory; the server block's
command (`make run`) runs there in the background and every line of the
client block runs against it, from the clone's root.  Only the port (a free
one instead of 8080, through DSR_PORT / DSR_SERVER) and the output folder
(/tmp/group) are changed.  The checks are on form, not on the model's words,
so they hold for whichever default model dsrd embeds.

Runs once per `make test` (skipped for the sanitizer build, whose binaries
the quick start does not use): it builds dsrd, dsr and dsr-train from
scratch, a few minutes on two cores.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_block(text, marker):
    m = re.search(r"<!-- quickstart:%s -->\s*```sh\n(.*?)```" % marker, text, re.S)
    if not m:
        raise AssertionError("README has no quickstart:%s block" % marker)
    return [l for l in m.group(1).splitlines() if l.strip() and not l.lstrip().startswith("#")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipIf("/asan/" in os.environ.get("DSR_TEST_DSRD", ""), "run once, by the non-sanitizer suite")
class QuickStart(unittest.TestCase):

    def setUp(self):
        if subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True).returncode:
            self.skipTest("not a git checkout")
        self.tmp = tempfile.mkdtemp(prefix="dsr-quickstart-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.clone = os.path.join(self.tmp, "dsr")
        sha = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        subprocess.run(["git", "clone", "-q", "--no-checkout", REPO, self.clone], check=True)
        subprocess.run(["git", "-C", self.clone, "checkout", "-q", sha], check=True)
        with open(os.path.join(self.clone, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        self.server_lines = readme_block(readme, "server")
        self.client_lines = readme_block(readme, "client")
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
        self.env.update(DSR_PORT=str(self.port), DSR_SERVER="http://127.0.0.1:%d" % self.port,
                        MAKEFLAGS="-j2", OMP_WAIT_POLICY="passive")

    def start_server(self):
        self.assertEqual(self.server_lines, ["make run"])
        self.log = open(os.path.join(self.tmp, "make-run.log"), "wb")
        self.addCleanup(self.log.close)
        self.server = subprocess.Popen(["bash", "-c", self.server_lines[0]], cwd=self.clone, env=self.env,
                                       stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self.stop_server)
        deadline = time.monotonic() + 1200  # a from-scratch build, then the model load
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.fail("make run exited %d:\n%s" % (self.server.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.port, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        self.fail("dsrd not ready after make run:\n" + self.log_tail())

    def stop_server(self):
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()

    def log_tail(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def run_line(self, line):
        line = line.replace("localhost:8080", "localhost:%d" % self.port)
        line = line.replace("/tmp/group", os.path.join(self.tmp, "group"))
        line = line.replace("/tmp/scenes", os.path.join(self.tmp, "scenes"))
        r = subprocess.run(["bash", "-c", line], cwd=self.clone, env=self.env, capture_output=True,
                           text=True, timeout=600)
        # `dsr world grade` exits 3 for an image the grader rejects: a verdict, not a failure
        ok = (0, 3) if line.startswith("build/dsr world grade") else (0,)
        self.assertIn(r.returncode, ok, "%s\nstdout: %s\nstderr: %s" % (line, r.stdout, r.stderr))
        return r.stdout

    def test_quick_start(self):
        self.start_server()
        seen = set()
        for line in self.client_lines:
            out = self.run_line(line)
            if line.startswith("curl -s localhost:8080/health"):
                self.assertEqual(json.loads(out)["status"], "ok")
                seen.add("health")
            elif line.startswith("curl -s localhost:8080/score"):
                item = json.loads(out)["items"][0]
                self.assertIsInstance(item["reward"], float)
                self.assertLessEqual(item["reward"], 0.0)
                seen.add("curl score")
            elif line.startswith("build/dsr world grade"):
                self.assertRegex(out, r"^(pass|fail): \"a red circle to the left of a blue square\"")
                seen.add("grade")
            elif line.startswith("build/dsr world render"):
                scene = json.loads(open(os.path.join(self.tmp, "scenes", "captions.jsonl")).readline())
                self.assertTrue(os.path.getsize(os.path.join(self.tmp, "scenes", scene["file"])) > 0)
                seen.add("render")
            elif line.startswith("build/dsr rollout --image"):
                rows = [l for l in out.splitlines() if l.startswith("[")]
                self.assertEqual(len(rows), 1, out)
                seen.add("caption")
            elif line.startswith("build/dsr rollout"):
                rows = [l for l in out.splitlines() if l.startswith("[")]
                self.assertEqual(len(rows), 4, out)
                for l in rows:
                    self.assertRegex(l, r"^\[\d\] R_G=-?\d+\.\d+  \S+rollout-0\d\.png$")
                group = os.path.join(self.tmp, "group")
                self.assertTrue(os.path.getsize(os.path.join(group, "contact-sheet.png")) > 0)
                self.assertTrue(os.path.getsize(os.path.join(group, "rollout-00.png")) > 0)
                seen.add("rollout")
            elif line.startswith("build/dsr score"):
                self.assertRegex(out, r"^R_U -?\d+\.\d+")
                seen.add("dsr score")
            elif line.startswith("build/dsr --version"):
                self.assertRegex(out, r"^dsr \S+ \(commit \S+\)")
                seen.add("version")
            else:
                self.fail("a README quick-start line this test does not check: " + line)
        self.assertEqual(seen, {"health", "curl score", "rollout", "grade", "render", "caption", "dsr score",
                                "version"})


if __name__ == "__main__":
    unittest.main()
