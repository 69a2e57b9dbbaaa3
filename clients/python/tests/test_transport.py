"""Retry, timeout and error-decoding rules, against a scripted local server."""

import http.server
import json
import threading
import time
import unittest

import dsrd  # noqa: F401  (puts dsr_client on sys.path)
from dsr_client import Client, DsrAPIError, DsrConnectionError


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, body, headers, delay) of
    the server's script and records what it received."""

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv.seen.append((self.command, self.path, dict(self.headers), body))
        status, payload, headers, delay = srv.script.pop(0) if srv.script else (200, {}, {}, 0)
        if delay:
            time.sleep(delay)
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, *args):
        pass


def envelope(code, etype, message, param=None):
    return {"error": {"code": code, "type": etype, "message": message, "param": param}}


class Transport(unittest.TestCase):

    def setUp(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        self.httpd.script = []
        self.httpd.seen = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def tearDown(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def client(self, **kw):
        kw.setdefault("backoff", 0.01)
        return Client(self.url, **kw)

    def test_5xx_retried_then_succeeds(self):
        self.httpd.script = [(503, envelope(503, "unavailable", "queue full"), {}, 0),
                             (500, envelope(500, "internal", "oops"), {}, 0),
                             (200, {"status": "ok", "model": "m", "policy_version": 3}, {}, 0)]
        self.assertEqual(self.client(retries=2).health()["policy_version"], 3)
        self.assertEqual(len(self.httpd.seen), 3)

    def test_5xx_gives_up_after_retries(self):
        self.httpd.script = [(503, envelope(503, "unavailable", "loading"), {}, 0)] * 3
        with self.assertRaises(DsrAPIError) as cm:
            self.client(retries=1).model()
        e = cm.exception
        self.assertEqual((e.code, e.type, e.message, e.attempts), (503, "unavailable", "loading", 2))
        self.assertTrue(e.retryable)
        self.assertEqual(len(self.httpd.seen), 2)

    def test_4xx_not_retried_and_envelope_decoded(self):
        self.httpd.script = [(413, envelope(413, "payload_too_large", "body over 64 MiB",
                                            "items[0].image.png"), {"X-Request-Id": "r-9"}, 0)]
        with self.assertRaises(DsrAPIError) as cm:
            self.client(retries=3).score([])
        e = cm.exception
        self.assertEqual((e.code, e.type, e.param, e.request_id), (413, "payload_too_large",
                                                                   "items[0].image.png", "r-9"))
        self.assertFalse(e.retryable)
        self.assertEqual(len(self.httpd.seen), 1)

    def test_non_envelope_error_body(self):
        self.httpd.script = [(502, b"<html>bad gateway</html>", {}, 0)]
        with self.assertRaises(DsrAPIError) as cm:
            self.client(retries=0).model()
        self.assertEqual((cm.exception.code, cm.exception.type), (502, "internal"))

    def test_connection_refused_retried_then_raised(self):
        url = self.url
        self.tearDown()  # nothing listens on the port any more
        c = Client(url, retries=2, backoff=0.01)
        with self.assertRaises(DsrConnectionError) as cm:
            c.health()
        self.assertEqual(cm.exception.attempts, 3)
        self.setUp()

    def test_timeout_not_retried(self):
        self.httpd.script = [(200, {}, {}, 1.0), (200, {}, {}, 0)]
        with self.assertRaises(DsrConnectionError) as cm:
            self.client(retries=3, timeout=0.2).model()
        self.assertIn("timed out", str(cm.exception))
        self.assertEqual(cm.exception.attempts, 1)

    def test_keys_and_headers(self):
        c = self.client(api_key="user", admin_key="admin")
        c.model()
        c.health()
        c.checkpoint("x")
        c.request("GET", "/model", request_id="abc")
        (_, p1, h1, _), (_, p2, h2, _), (_, p3, h3, b3), (_, _, h4, _) = self.httpd.seen
        self.assertEqual(h1.get("Authorization"), "Bearer user")
        self.assertNotIn("Authorization", h2)   # /health is open
        self.assertEqual(h3.get("Authorization"), "Bearer admin")
        self.assertEqual(json.loads(b3), {"name": "x"})
        self.assertEqual(h4.get("X-Request-Id"), "abc")
        # Without an admin key, admin calls use the API key.
        self.client(api_key="user").reload("p")
        self.assertEqual(self.httpd.seen[-1][2].get("Authorization"), "Bearer user")

    def test_update_retry_reuses_idempotency_key(self):
        self.httpd.script = [(503, envelope(503, "unavailable", "queue full"), {}, 0),
                             (200, {"policy_version": 1}, {}, 0)]
        self.client(retries=1, admin_key="a").update({"algorithm": "grpo", "samples": []})
        keys = [json.loads(b)["idempotency_key"] for (_, _, _, b) in self.httpd.seen]
        self.assertEqual(len(keys), 2)
        self.assertEqual(keys[0], keys[1])
        self.assertEqual(len(keys[0]), 36)
        # A caller's own key is kept.
        self.client().update({"algorithm": "grpo", "samples": [], "idempotency_key": "k-1"})
        self.assertEqual(json.loads(self.httpd.seen[-1][3])["idempotency_key"], "k-1")

    def test_rejects_bad_config(self):
        for bad in ("localhost:8080", "ftp://x", "http://"):
            with self.assertRaises(ValueError):
                Client(bad)
        with self.assertRaises(ValueError):
            Client(self.url, retries=-1)


if __name__ == "__main__":
    unittest.main()
