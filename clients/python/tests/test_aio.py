"""Keep-alive pooling, the asyncio client, typing marker and the offline
install into a virtual environment."""

import asyncio
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

import dsrd
from dsr_client import AsyncClient, Client, DsrAPIError, understanding_item

PKG = os.path.join(dsrd.REPO, "clients", "python")


class KeepAlive(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.server.ports.append(self.client_address[1])
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.server.close_after:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Pooling(unittest.TestCase):

    def serve(self, close_after=False):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
        srv.ports, srv.close_after = [], close_after
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.shutdown)
        self.addCleanup(srv.server_close)
        return srv

    def test_connection_reused(self):
        srv = self.serve()
        with Client("http://127.0.0.1:%d" % srv.server_address[1], retries=0) as c:
            for _ in range(5):
                self.assertEqual(c.request("POST", "/x", {}), {"ok": True})
        self.assertEqual(len(srv.ports), 5)
        self.assertEqual(len(set(srv.ports)), 1)  # one TCP connection for all five

    def test_server_closing_is_not_an_error(self):
        srv = self.serve(close_after=True)
        c = Client("http://127.0.0.1:%d" % srv.server_address[1], retries=0)
        for _ in range(3):
            self.assertEqual(c.request("POST", "/x", {}), {"ok": True})
        self.assertEqual(len(set(srv.ports)), 3)


class Async(unittest.TestCase):

    def test_concurrent_calls_match_blocking(self):
        server = dsrd.shared()
        items = [understanding_item(dsrd.image_bytes(n), c)
                 for n, c in (("wide.png", "a"), ("tall.png", "b"), ("small.png", "c"))]
        want = [it["reward"] for it in server.client().score(items)["items"]]

        async def run():
            async with AsyncClient(server.url, max_concurrency=3, timeout=60) as c:
                got = await asyncio.gather(*(c.score([it]) for it in items))
                h = await c.health()
                with self.assertRaises(DsrAPIError):
                    await c.request("POST", "/score", {"items": 3})
                return got, h
        got, h = asyncio.run(run())
        self.assertEqual(h["status"], "ok")
        for g, w in zip(got, want):
            self.assertAlmostEqual(g["items"][0]["reward"], w, places=6)


class Packaging(unittest.TestCase):

    def test_typed_marker(self):
        self.assertTrue(os.path.exists(os.path.join(PKG, "dsr_client", "py.typed")))

    def test_offline_install_into_venv(self):
        """README: `pip install --no-build-isolation ./clients/python` in a
        venv works with no package index (PEP 668 forbids the system pip)."""
        with tempfile.TemporaryDirectory() as d:
            venv = os.path.join(d, "venv")
            r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
            if r.returncode != 0:
                self.skipTest("python3 -m venv unavailable: " + r.stderr[-200:])
            py = os.path.join(venv, "bin", "python")
            r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
                                PKG], capture_output=True, text=True, cwd=d, timeout=300,
                               env=dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1"))
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            r = subprocess.run([py, "-c", "import dsr_client, os; print(dsr_client.__version__, "
                                "os.path.exists(os.path.join(os.path.dirname(dsr_client.__file__), 'py.typed')))"],
                               capture_output=True, text=True, cwd=d)
            self.assertEqual(r.stdout.split(), ["0.2.0", "True"], r.stderr)


if __name__ == "__main__":
    unittest.main()
