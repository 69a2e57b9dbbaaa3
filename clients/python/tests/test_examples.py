"""The OpenRLHF example script gets the same R_U as /score."""

import json
import os
import subprocess
import sys
import unittest

import dsrd
from dsr_client import understanding_item

EXAMPLE = os.path.join(dsrd.REPO, "clients", "python", "examples", "openrlhf_request.py")


class OpenRLHFExample(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.shared()

    def run_example(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSR_")}
        return subprocess.run([sys.executable, EXAMPLE, "--url", self.server.url] + list(args),
                              capture_output=True, text=True, timeout=120, env=env)

    def test_inline_and_server_path(self):
        want = self.server.client().score(
            [understanding_item(dsrd.image_bytes("wide.png"), " a red circle"),
             understanding_item(dsrd.image_bytes("tall.png"), " a tower")])["items"]
        inline = self.run_example("--image", dsrd.image_path("wide.png"), "--response", "a red circle",
                                  "--image", dsrd.image_path("tall.png"), "--response", "a tower")
        self.assertEqual(inline.returncode, 0, inline.stderr)
        by_path = self.run_example("--server-path", "--image", "wide.png", "--response", "a red circle",
                                   "--image", "tall.png", "--response", "a tower")
        self.assertEqual(by_path.returncode, 0, by_path.stderr)
        for out in (json.loads(inline.stdout), json.loads(by_path.stdout)):
            self.assertEqual(len(out["rewards"]), 2)
            for got, w in zip(out["rewards"], want):
                self.assertAlmostEqual(got, w["reward"], places=6)

    def test_api_error_exit_status(self):
        bad = self.run_example("--server-path", "--image", "../../etc/passwd", "--response", "x")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("error:", bad.stderr)


if __name__ == "__main__":
    unittest.main()
