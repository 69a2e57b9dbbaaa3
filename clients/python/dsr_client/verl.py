"""verl reward functions: dsr's understanding reward R_U as ``compute_score``.

verl (checked against 0.8.0.dev, commit b178a3c) calls a custom reward
function named by ``custom_reward_function.path`` / ``.name``, merging
``custom_reward_function.reward_kwargs`` into its keyword arguments:

* the naive / reward-loop managers, once per sample:
  ``compute_score(data_source=..., solution_str=..., ground_truth=...,
  extra_info=...)``;
* the ``batch`` reward manager, once per batch:
  ``compute_score(data_sources=..., solution_strs=..., ground_truths=...,
  extra_infos=..., **reward_kwargs)`` (use ``compute_score_batch``).

The image of a sample is taken from ``extra_info[image_key]`` (default
``"image"``; a list holding one image, as ``images`` columns do, also works),
else from ``ground_truth`` when that is an image (base64 PNG/JPEG, a
``data:`` URI, bytes, a local path, a ``{"bytes", "path"}`` cell).  The
response is ``solution_str``.  The batched form sends one ``/score`` call
per batch.

Each result is a dict ``{"score": R_U, "r_u": R_U, "dsr_failed": 0,
"policy_version": v}`` with the same keys for every sample (verl collects
each key into its reward_extra_info).  verl cannot skip a sample, so a
sample that cannot be scored raises ``DsrError`` unless ``error_score`` is
a number: then it gets that score and ``dsr_failed: 1``.

reward_kwargs: ``dsr_url`` (default ``$DSR_URL`` or http://127.0.0.1:8080),
``api_key`` (default ``$DSR_API_KEY``), ``image_key``, ``error_score``,
``timeout``.  Clients are cached per (url, key), so keep-alive connections
are reused across calls.
"""

import base64
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import images as _img
from .client import Client
from .errors import DsrAPIError, DsrError

_clients: Dict[Tuple[str, Optional[str], float], Client] = {}
_clients_lock = threading.Lock()


def _client(dsr_url: Optional[str], api_key: Optional[str], timeout: float) -> Client:
    url = dsr_url or os.environ.get("DSR_URL") or "http://127.0.0.1:8080"
    key = api_key if api_key is not None else os.environ.get("DSR_API_KEY")
    with _clients_lock:
        c = _clients.get((url, key, timeout))
        if c is None:
            c = _clients[(url, key, timeout)] = Client(url, api_key=key, timeout=timeout)
        return c


def _looks_like_image(v: Any) -> bool:
    if isinstance(v, (bytes, bytearray, dict)) or (isinstance(v, (list, tuple)) and len(v) == 1):
        return True
    if not isinstance(v, str):
        return callable(getattr(v, "save", None))
    if v.startswith("data:image/"):
        return True
    if len(v) > 64 and v[:4] in ("iVBO", "/9j/"):  # base64 of the PNG / JPEG signatures
        return True
    return os.path.isfile(v)


def _image_of(ground_truth: Any, extra_info: Any, image_key: str) -> Dict[str, Any]:
    cell = extra_info.get(image_key) if isinstance(extra_info, dict) else None
    if cell is None and _looks_like_image(ground_truth):
        cell = ground_truth
    if cell is None:
        raise ValueError("no image: extra_info[%r] is absent and ground_truth is not an image" % image_key)
    if isinstance(cell, (list, tuple)):
        if len(cell) != 1:
            raise ValueError("R_U scores one image per response; got %d" % len(cell))
        cell = cell[0]
    if isinstance(cell, str) and not cell.startswith("data:") and not os.path.exists(cell):
        cell = base64.b64decode(cell, validate=True)  # bare base64 of a PNG/JPEG file
    return _img.image(cell)


def _result(score: float, failed: bool, version: Optional[int]) -> Dict[str, Any]:
    return {"score": score, "r_u": score, "dsr_failed": int(failed),
            "policy_version": -1 if version is None else int(version)}


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str],
                        ground_truths: Sequence[Any], extra_infos: Optional[Sequence[Any]] = None, *,
                        dsr_url: Optional[str] = None, api_key: Optional[str] = None,
                        image_key: str = "image", error_score: Optional[float] = None,
                        timeout: float = 300.0, **_: Any) -> List[Dict[str, Any]]:
    """R_U of every response for its image, one /score call for the batch."""
    n = len(solution_strs)
    if extra_infos is None:
        extra_infos = [None] * n
    if not (len(data_sources) == len(ground_truths) == len(extra_infos) == n):
        raise ValueError("data_sources, solution_strs, ground_truths and extra_infos differ in length")
    errors: Dict[int, str] = {}
    todo: List[Tuple[int, Dict[str, Any]]] = []
    for i in range(n):
        try:
            todo.append((i, {"task": "understanding", "response": _img.text(solution_strs[i]),
                             "image": _image_of(ground_truths[i], extra_infos[i], image_key)}))
        except (TypeError, ValueError, OSError) as e:
            errors[i] = str(e)
    client = _client(dsr_url, api_key, timeout)
    rewards: Dict[int, float] = {}
    version = None
    while todo:
        try:
            out = client.score([it for _, it in todo])
        except DsrAPIError as e:
            # a sample the server refuses (items[k]...) is set aside, the rest resent
            param = e.param or ""
            if e.code < 500 and param.startswith("items[") and error_score is not None:
                k = int(param[6:param.index("]")])
                errors[todo.pop(k)[0]] = "%s: %s" % (param, e.message)
                continue
            raise
        version = out.get("policy_version")
        for (i, _), it in zip(todo, out["items"]):
            rewards[i] = float(it["reward"])
        break
    if errors and error_score is None:
        i, why = sorted(errors.items())[0]
        raise DsrError("sample %d cannot be scored: %s (set reward_kwargs.error_score to go on)" % (i, why))
    return [_result(rewards[i], False, version) if i in rewards else _result(float(error_score), True, version)
            for i in range(n)]


def compute_score(data_source: Any = None, solution_str: str = "", ground_truth: Any = None,
                  extra_info: Any = None, **kwargs: Any) -> Dict[str, Any]:
    """R_U of one response for its image (verl's per-sample signature)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
