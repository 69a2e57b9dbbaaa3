"""Blocking HTTP client for dsrd (API v1), standard library only.

One ``Client`` per server.  It is safe to share between threads: requests
go over a pool of keep-alive connections (``http.client``), at most
``pool_size`` idle ones kept; a thread takes a connection for one request
and puts it back.

Retries: a request is re-sent only when the server answered 5xx or the
connection failed before any response (refused, reset, DNS) -- the cases the
API calls safe to retry.  4xx answers and timeouts are never retried: a timed
out rollout may still be running on the server, and re-sending it would queue
the same work twice.  A kept-alive connection the server has closed in the
meantime is reopened once without counting as an attempt.  ``update()``
always carries an ``idempotency_key`` so a retried optimizer step is applied
once.
"""

import http.client
import json
import socket
import threading
import time
import urllib.parse
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from . import images as _img
from .errors import DsrAPIError, DsrConnectionError, DsrError

DEFAULT_URL = "http://127.0.0.1:8080"

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          http.client.BadStatusLine)


class _Pool:
    """Idle keep-alive connections to one host, shared by threads."""

    def __init__(self, scheme: str, host: str, port: Optional[int], size: int):
        self.scheme, self.host, self.port, self.size = scheme, host, port, size
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was reused (may have gone stale)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout), False

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Client:
    """A dsrd endpoint.

    ``api_key`` is sent as ``Authorization: Bearer`` on every endpoint but
    /health and /metrics; ``admin_key`` (falling back to ``api_key``) on
    /update, /checkpoint and /reload.  ``timeout`` is seconds per attempt;
    ``retries`` is the number of extra attempts after the first, spaced by
    ``backoff * 2**attempt`` seconds (or the server's ``Retry-After``).
    ``pool_size`` is how many idle keep-alive connections are kept.
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: Optional[str] = None,
                 admin_key: Optional[str] = None, timeout: float = 300.0,
                 retries: int = 2, backoff: float = 0.5, max_backoff: float = 10.0,
                 pool_size: int = 8, user_agent: str = "dsr-client-python/0.2"):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("base_url must be http(s)://host[:port], got %r" % base_url)
        if retries < 0 or timeout <= 0 or backoff < 0 or pool_size < 1:
            raise ValueError("retries >= 0, timeout > 0, backoff >= 0 and pool_size >= 1 are required")
        self.base_url = base_url.rstrip("/")
        self._prefix = parsed.path.rstrip("/")
        self.api_key = api_key
        self.admin_key = admin_key
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.user_agent = user_agent
        self._pool = _Pool(parsed.scheme, parsed.hostname, parsed.port, int(pool_size))

    def __repr__(self) -> str:
        return "Client(%r)" % self.base_url

    def close(self) -> None:
        """Closes the idle keep-alive connections (the client stays usable)."""
        self._pool.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None  # connections and locks do not pickle
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        parsed = urllib.parse.urlsplit(self.base_url)
        self._pool = _Pool(parsed.scheme, parsed.hostname or "", parsed.port, 8)

    # ---- transport -------------------------------------------------------

    def _send(self, method: str, path: str, data: Optional[bytes], headers: Dict[str, str],
              limit: float) -> Tuple[int, Dict[str, str], bytes]:
        """One exchange on a pooled connection; a stale kept-alive one is
        replaced once.  Raises OSError / http.client errors as they come."""
        for fresh_try in (False, True):
            conn, reused = self._pool.get(limit)
            try:
                conn.request(method, self._prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except _STALE:
                conn.close()
                if reused and not fresh_try:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                conn.close()
            else:
                self._pool.put(conn)
            return resp.status, hdrs, payload
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None, *,
                admin: bool = False, auth: bool = True,
                request_id: Optional[str] = None,
                timeout: Optional[float] = None, raw: bool = False) -> Any:
        """Sends one API call and returns the decoded JSON body (or the raw
        text when ``raw``).  Raises DsrAPIError / DsrConnectionError."""
        url = self.base_url + path
        data = None
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        key = (self.admin_key or self.api_key) if admin else self.api_key
        if auth and key:
            headers["Authorization"] = "Bearer " + key
        if request_id:
            headers["X-Request-Id"] = request_id
        limit = self.timeout if timeout is None else float(timeout)

        attempt = 0
        while True:
            attempt += 1
            try:
                status, hdrs, payload = self._send(method, path, data, headers, limit)
            except (socket.timeout, TimeoutError) as e:
                raise DsrConnectionError("%s %s: timed out after %.1f s" % (method, url, limit),
                                         url=url, attempts=attempt) from e
            except (OSError, http.client.HTTPException) as e:
                if attempt <= self.retries:
                    self._sleep(attempt, None)
                    continue
                raise DsrConnectionError("%s %s: %s" % (method, url, e),
                                         url=url, attempts=attempt) from e
            if 200 <= status < 300:
                if raw:
                    return payload.decode("utf-8")
                return _decode_json(payload, url)
            err = DsrAPIError.from_response(status, payload, request_id=hdrs.get("x-request-id"),
                                            attempts=attempt)
            if status >= 500 and attempt <= self.retries:
                self._sleep(attempt, hdrs.get("retry-after"))
                continue
            raise err

    def _sleep(self, attempt: int, retry_after: Optional[str]) -> None:
        delay = self.backoff * (2 ** (attempt - 1))
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                pass
        time.sleep(min(max(delay, 0.0), self.max_backoff))

    # ---- service ----------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """GET /health: ``{"status": "ok", "model": ..., "policy_version": v}``."""
        return self.request("GET", "/health", auth=False)

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.2) -> Dict[str, Any]:
        """Polls /health until it answers 200 (the model is loaded)."""
        deadline = time.monotonic() + timeout
        probe = Client(self.base_url, timeout=min(self.timeout, 5.0), retries=0)
        while True:
            try:
                return probe.health()
            except (DsrAPIError, DsrConnectionError) as e:
                if isinstance(e, DsrAPIError) and e.code < 500:
                    raise
                if time.monotonic() >= deadline:
                    raise DsrConnectionError("%s not ready after %.1f s: %s"
                                             % (self.base_url, timeout, e),
                                             url=self.base_url + "/health") from e
                time.sleep(interval)

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text exposition."""
        return self.request("GET", "/metrics", auth=False, raw=True)

    def model(self) -> Dict[str, Any]:
        """GET /model: config summary, special token ids, templates."""
        return self.request("GET", "/model")

    def tokenize(self, text: str, add_special: bool = False) -> List[int]:
        return self.request("POST", "/tokenize",
                            {"text": text, "add_special": bool(add_special)})["tokens"]

    def detokenize(self, tokens: Iterable[int]) -> str:
        return self.request("POST", "/detokenize",
                            {"tokens": [int(t) for t in tokens]})["text"]

    # ---- model calls --------------------------------------------------------

    def logprobs(self, items: Sequence[Dict[str, Any]], **extra: Any) -> Dict[str, Any]:
        """POST /logprobs with prepared items (``context``/``image``/``target``)."""
        return self.request("POST", "/logprobs", dict(extra, items=list(items)))

    def score(self, items: Sequence[Dict[str, Any]], token_logprobs: bool = False,
              **extra: Any) -> Dict[str, Any]:
        """POST /score with prepared items; see ``understanding_item`` and
        ``generation_item`` to build them."""
        return self.request("POST", "/score",
                            dict(extra, items=list(items), token_logprobs=bool(token_logprobs)))

    def rewards_understanding(self, images: Sequence[Any], responses: Sequence[str]) -> List[float]:
        """R_U of each (image, response) pair, in order."""
        if len(images) != len(responses):
            raise ValueError("%d images for %d responses" % (len(images), len(responses)))
        items = [understanding_item(i, r) for i, r in zip(images, responses)]
        return [float(it["reward"]) for it in self.score(items)["items"]]

    def rewards_generation(self, prompts: Sequence[str], images: Sequence[Any]) -> List[float]:
        """R_G of each (prompt, generated image) pair, in order."""
        if len(images) != len(prompts):
            raise ValueError("%d images for %d prompts" % (len(images), len(prompts)))
        items = [generation_item(p, i) for p, i in zip(prompts, images)]
        return [float(it["reward"]) for it in self.score(items)["items"]]

    def rollout(self, request: Optional[Dict[str, Any]] = None, **fields: Any) -> Dict[str, Any]:
        """POST /rollout.  Fields may be given as a dict, keywords, or both
        (keywords win); keywords whose value is None are left out.  ``image``
        and ``prompt`` accept what ``images.image`` / a plain str accept."""
        body = dict(request or {})
        for k, v in fields.items():
            if v is not None:
                body[k] = v
        if "image" in body and not _is_wire_image(body["image"]):
            body["image"] = _img.image(body["image"])
        if isinstance(body.get("prompt"), str):
            body["prompt"] = _img.text(body["prompt"])
        return self.request("POST", "/rollout", body)

    # ---- admin ---------------------------------------------------------------

    def update(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """POST /update (admin).  Adds a fresh ``idempotency_key`` when the
        request has none, so the client's own retries never step twice."""
        body = dict(request)
        body.setdefault("idempotency_key", str(uuid.uuid4()))
        return self.request("POST", "/update", body, admin=True)

    def checkpoint(self, name: str) -> Dict[str, Any]:
        """POST /checkpoint (admin): ``{"path": ..., "policy_version": v}``."""
        return self.request("POST", "/checkpoint", {"name": name}, admin=True)

    def reload(self, path: str) -> Dict[str, Any]:
        """POST /reload (admin): load a checkpoint under --checkpoint-dir."""
        return self.request("POST", "/reload", {"path": path}, admin=True)

    # ---- OpenRLHF ----------------------------------------------------------

    def openrlhf_reward(self, query: Sequence[str], prompts: Sequence[str],
                        labels: Sequence[Any]) -> Dict[str, Any]:
        """POST /openrlhf/reward: OpenRLHF's remote reward-model protocol.
        ``labels[i]`` is a base64 PNG/JPEG (see ``png_label``), a ``data:``
        URI, a server path, or a one-element list of those; a null reward
        in the answer has its reason in ``errors``."""
        return self.request("POST", "/openrlhf/reward",
                            {"query": list(query), "prompts": list(prompts),
                             "labels": list(labels)})


def understanding_item(image: Any, response: str) -> Dict[str, Any]:
    """A /score item whose reward is R_U of ``response`` for ``image``."""
    return {"task": "understanding", "image": _img.image(image),
            "response": _img.text(response)}


def generation_item(prompt: str, image: Any) -> Dict[str, Any]:
    """A /score item whose reward is R_G of ``prompt`` for a generated ``image``."""
    return {"task": "generation", "prompt": _img.text(prompt),
            "image": _img.image(image)}


def png_label(image: Any) -> str:
    """The OpenRLHF ``labels[i]`` string for an image: its base64 PNG."""
    return _img.image(image)["png"]


def _is_wire_image(v: Any) -> bool:
    return isinstance(v, dict) and "bytes" not in v and \
        any(k in v for k in _img.WIRE_KEYS)


def _decode_json(payload: bytes, url: str) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError as e:
        raise DsrError("%s: response is not JSON: %s" % (url, e)) from e
