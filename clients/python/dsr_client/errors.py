"""Exceptions raised by the dsr client.

Every failure the client reports is a ``DsrError``.  A response from the
server with a non-2xx status becomes ``DsrAPIError``, which carries the fields
of the server's error envelope::

    {"error": {"code": 400, "type": "invalid_request",
               "message": "...", "param": "items[1].image.png"}}

A server that could not be reached (refused connection, reset, DNS failure,
timeout) becomes ``DsrConnectionError``.
"""

from typing import Any, Dict, Optional


class DsrError(Exception):
    """Base class of every error raised by ``dsr_client``."""


class DsrConnectionError(DsrError):
    """The request did not produce an HTTP response (after any retries)."""

    def __init__(self, message: str, *, url: str = "", attempts: int = 1):
        super().__init__(message)
        self.message = message
        self.url = url
        self.attempts = attempts


class DsrAPIError(DsrError):
    """The server answered with a non-2xx status.

    ``code`` is the HTTP status, ``type`` the envelope's error type
    (``invalid_request``, ``unauthorized``, ``not_found``,
    ``payload_too_large``, ``unavailable``, ``internal``), ``param`` the
    request field the server blames (or None), ``request_id`` the value of
    the response's ``X-Request-Id`` header, ``body`` the raw decoded body.
    """

    def __init__(self, code: int, type: str, message: str,
                 param: Optional[str] = None, request_id: Optional[str] = None,
                 body: Any = None, attempts: int = 1):
        text = "%d %s: %s" % (code, type, message)
        if param:
            text += " (param %s)" % param
        super().__init__(text)
        self.code = code
        self.type = type
        self.message = message
        self.param = param
        self.request_id = request_id
        self.body = body
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        """Whether the API contract says retrying is safe (5xx only)."""
        return self.code >= 500

    @classmethod
    def from_response(cls, status: int, raw: bytes,
                      request_id: Optional[str] = None,
                      attempts: int = 1) -> "DsrAPIError":
        """Builds the error from a response body, tolerating a body that is
        not the envelope (e.g. a proxy's HTML error page)."""
        body: Any = None
        try:
            body = _json_loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        env: Dict[str, Any] = {}
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            env = body["error"]
        message = env.get("message")
        if not isinstance(message, str):
            message = body if isinstance(body, str) and body else "HTTP %d" % status
        etype = env.get("type")
        if not isinstance(etype, str):
            etype = _default_type(status)
        code = env.get("code")
        if not isinstance(code, int):
            code = status
        param = env.get("param")
        if not isinstance(param, str):
            param = None
        return cls(code, etype, message, param=param, request_id=request_id,
                   body=body, attempts=attempts)


def _default_type(status: int) -> str:
    return {400: "invalid_request", 401: "unauthorized", 404: "not_found",
            413: "payload_too_large", 503: "unavailable"}.get(
                status, "internal" if status >= 500 else "invalid_request")


def _json_loads(raw: bytes) -> Any:
    import json
    return json.loads(raw.decode("utf-8"))
