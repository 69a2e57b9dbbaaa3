"""TRL reward-function adapters: dsr's dual self-rewards R_U and R_G.

TRL's ``GRPOTrainer`` (checked against TRL 1.10.0.dev0, commit f2cd577,
``GRPOTrainer._calculate_rewards``) calls each reward function as
``f(prompts=..., completions=..., completion_ids=..., **columns,
trainer_state=..., log_extra=..., log_metric=...)`` where ``columns`` are the
dataset's other columns, one value per completion; it logs the result under
``f.__name__`` and turns a ``None`` reward into NaN (skipped for that item).

* ``UnderstandingReward`` scores each completion (the caption or answer the
  policy wrote) against the image in the dataset column ``image_column``
  and returns R_U, the mean log-prob of the image's VQ codes given it.
* ``GenerationReward`` scores each generated image (the completion, or the
  column ``image_column``) against its prompt and returns R_G, the mean
  log-prob of the prompt given the image: for image-generation trainers.

::

    from dsr_client import Client
    from dsr_client.trl import UnderstandingReward
    reward = UnderstandingReward(Client("http://dsr:8080"), image_column="image")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=ds, ...)

With ``on_error="none"`` (the default) an item that cannot be scored -- a
corrupt image, a server that stays unreachable after the client's retries --
gets ``None`` and the reason is logged (``logging`` and, when TRL passes it,
the ``log_extra`` column ``<name>_error``); the training step goes on.
``on_error="raise"`` raises instead.  When TRL passes ``log_metric``, each
call logs ``<name>/mean``, ``<name>/failed`` and ``dsr/policy_version``.

Completions may be plain strings or TRL's conversational form
``[{"role": "assistant", "content": "..."}]`` (content may also be a list of
``{"type": "text", "text": ...}`` parts).  Image cells may be PNG or JPEG
bytes, a local file path, a ``data:`` URI, a ``datasets`` Image cell, a PIL
image (Pillow is optional), a wire image dict, or a one-element list of any
of these (TRL's ``images`` column).  Requests go out in batches of
``batch_size`` items, up to ``max_workers`` at a time.

``async_understanding_reward()`` returns R_U as an ``async def`` function
for pipelines that await their reward functions.
"""

import asyncio
import concurrent.futures
import logging
import math
import re
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import images as _img
from .client import Client
from .errors import DsrAPIError, DsrError

DEFAULT_NAME = "dsr_r_u"
DEFAULT_GEN_NAME = "dsr_r_g"
ON_ERROR = ("none", "raise")
# What TRL passes besides the dataset's columns; never read as columns.
TRL_EXTRA_KWARGS = ("completion_ids", "trainer_state", "log_extra", "log_metric", "environments")

logger = logging.getLogger("dsr_client.trl")
_ITEM_PARAM = re.compile(r"^items\[(\d+)\]")


def completion_text(completion: Any) -> str:
    """The text of one TRL completion (standard or conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        if len(msgs) != len(completion):
            raise TypeError("conversational completion must be a list of message dicts")
        # A completion is the assistant's turn; other roles (tool results)
        # are not what the policy wrote.
        said = [m for m in msgs if m.get("role", "assistant") == "assistant"]
        return "".join(_content_text(m.get("content", "")) for m in said)
    raise TypeError("completion must be str or a list of messages, got %s"
                    % type(completion).__name__)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type", "text") == "text":
                parts.append(str(p.get("text", "")))
        return "".join(parts)
    raise TypeError("message content must be str or a list of parts")


def _one_image(cell: Any) -> Any:
    if isinstance(cell, (list, tuple)):
        if len(cell) != 1:
            raise ValueError("R_U scores one image per completion; the cell holds %d"
                             % len(cell))
        return cell[0]
    return cell


def prompt_text(prompt: Any) -> str:
    """The text of one TRL prompt: a string, or the last user turn of a
    conversational prompt."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return _content_text(users[-1].get("content", ""))
    raise TypeError("prompt must be str or a list of messages, got %s" % type(prompt).__name__)


class _Failed(Exception):
    """An item that cannot be sent (its image or text did not convert)."""


class _DsrReward:
    """Shared machinery: batching, per-item failures, TRL logging."""

    direction = ""

    def __init__(self, client: Optional[Client], base_url: Optional[str], api_key: Optional[str],
                 image_column: Optional[str], batch_size: int, max_workers: int, name: str,
                 on_error: str):
        if client is None:
            client = Client(base_url or "http://127.0.0.1:8080", api_key=api_key)
        if batch_size < 1 or max_workers < 1:
            raise ValueError("batch_size and max_workers must be >= 1")
        if on_error not in ON_ERROR:
            raise ValueError("on_error must be one of %s" % (ON_ERROR,))
        self.client = client
        self.image_column = image_column
        self.batch_size = int(batch_size)
        self.max_workers = int(max_workers)
        self.on_error = on_error
        self.__name__ = name
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return "%s(%r, image_column=%r)" % (type(self).__name__, self.client, self.image_column)

    # The executor is created on first use so that a reward object can be
    # built (and pickled by a launcher) without starting threads.
    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="dsr-reward")
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_pool_lock"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pool_lock = threading.Lock()

    def _column(self, kwargs: Dict[str, Any], n: int) -> Sequence[Any]:
        col = self.image_column
        if col is None or col not in kwargs:
            raise KeyError("reward needs the dataset column %r; the call has %s"
                           % (col, sorted(k for k in kwargs if k not in TRL_EXTRA_KWARGS)
                              or "no extra columns"))
        cells = kwargs[col]
        if len(cells) != n:
            raise ValueError("column %r has %d values for %d completions" % (col, len(cells), n))
        return cells

    def _item(self, i: int, prompts: Optional[Sequence[Any]], completions: Sequence[Any],
              cells: Optional[Sequence[Any]]) -> Dict[str, Any]:
        raise NotImplementedError

    def items(self, completions: Sequence[Any], kwargs: Dict[str, Any],
              prompts: Optional[Sequence[Any]] = None) -> List[Any]:
        """The /score item of each completion, or a ``_Failed`` with why.
        A missing or mis-sized column fails the call (it is configuration,
        not data); a bad cell fails its item."""
        cells = self._column(kwargs, len(completions)) if self.image_column else None
        out: List[Any] = []
        for i in range(len(completions)):
            try:
                out.append(self._item(i, prompts, completions, cells))
            except (TypeError, ValueError, OSError) as e:
                out.append(_Failed("item %d: %s" % (i, e)))
        return out

    def _score_batch(self, batch: List[Tuple[int, Dict[str, Any]]]
                     ) -> Tuple[Dict[int, float], Dict[int, str], Optional[int]]:
        """Scores (index, item) pairs; an item the server rejects (400
        naming items[k]) is dropped with its reason and the rest resent."""
        rewards: Dict[int, float] = {}
        errors: Dict[int, str] = {}
        version: Optional[int] = None
        todo = list(batch)
        while todo:
            try:
                out = self.client.score([it for _, it in todo])
            except DsrAPIError as e:
                m = _ITEM_PARAM.match(e.param or "")
                if self.on_error == "none" and e.code < 500 and m and int(m.group(1)) < len(todo):
                    idx = todo.pop(int(m.group(1)))[0]
                    errors[idx] = "%s: %s" % (e.param, e.message)
                    continue
                if self.on_error == "raise":
                    raise
                errors.update((i, str(e)) for i, _ in todo)
                break
            except DsrError as e:
                if self.on_error == "raise":
                    raise
                errors.update((i, str(e)) for i, _ in todo)
                break
            got = out.get("items", [])
            if len(got) != len(todo):
                raise DsrError("/score returned %d items for %d" % (len(got), len(todo)))
            version = out.get("policy_version")
            for (i, _), it in zip(todo, got):
                r = it.get("reward")
                if isinstance(r, (int, float)) and math.isfinite(r):
                    rewards[i] = float(r)
                else:
                    errors[i] = "the server returned no finite reward"
            break
        return rewards, errors, version

    def _rewards(self, prepared: List[Any], kwargs: Dict[str, Any]) -> List[Optional[float]]:
        n = len(prepared)
        errors: Dict[int, str] = {}
        ready: List[Tuple[int, Dict[str, Any]]] = []
        for i, p in enumerate(prepared):
            if isinstance(p, _Failed):
                if self.on_error == "raise":
                    raise ValueError(str(p))
                errors[i] = str(p)
            else:
                ready.append((i, p))
        batches = [ready[k:k + self.batch_size] for k in range(0, len(ready), self.batch_size)]
        results = (list(self._executor().map(self._score_batch, batches)) if len(batches) > 1
                   else [self._score_batch(b) for b in batches])
        rewards: Dict[int, float] = {}
        version = None
        for r, e, v in results:
            rewards.update(r)
            errors.update(e)
            version = v if v is not None else version
        out: List[Optional[float]] = [rewards.get(i) for i in range(n)]
        self._log(out, errors, version, n, kwargs)
        return out

    def _log(self, out: List[Optional[float]], errors: Dict[int, str], version: Optional[int],
             n: int, kwargs: Dict[str, Any]) -> None:
        if errors:
            first = sorted(errors.items())[:3]
            logger.warning("%s: %d of %d items have no reward (None): %s", self.__name__,
                           len(errors), n, "; ".join("#%d %s" % ie for ie in first))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            ok = [r for r in out if r is not None]
            if ok:
                log_metric("%s/mean" % self.__name__, sum(ok) / len(ok))
            log_metric("%s/failed" % self.__name__, float(len(errors)))
            if version is not None:
                log_metric("dsr/policy_version", float(version))
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("%s_error" % self.__name__, [errors.get(i, "") for i in range(n)])

    def __call__(self, prompts: Optional[Sequence[Any]] = None,
                 completions: Optional[Sequence[Any]] = None, **kwargs: Any) -> List[Optional[float]]:
        if completions is None:
            raise TypeError("reward function needs completions")
        return self._rewards(self.items(completions, kwargs, prompts), kwargs)

    async def acall(self, prompts: Optional[Sequence[Any]] = None,
                    completions: Optional[Sequence[Any]] = None,
                    **kwargs: Any) -> List[Optional[float]]:
        """The same rewards without blocking the event loop."""
        if completions is None:
            raise TypeError("reward function needs completions")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self(prompts, completions, **kwargs))


class UnderstandingReward(_DsrReward):
    """TRL reward function returning R_U of each completion for the image in
    the dataset column ``image_column`` (None for items that fail)."""

    direction = "understanding"

    def __init__(self, client: Optional[Client] = None, *, base_url: Optional[str] = None,
                 api_key: Optional[str] = None, image_column: str = "image",
                 batch_size: int = 16, max_workers: int = 4, name: str = DEFAULT_NAME,
                 on_error: str = "none"):
        super().__init__(client, base_url, api_key, image_column, batch_size, max_workers, name,
                         on_error)

    def _item(self, i: int, prompts: Optional[Sequence[Any]], completions: Sequence[Any],
              cells: Optional[Sequence[Any]]) -> Dict[str, Any]:
        assert cells is not None
        return {"task": "understanding", "image": _img.image(_one_image(cells[i])),
                "response": _img.text(completion_text(completions[i]))}


class GenerationReward(_DsrReward):
    """TRL reward function returning R_G of each generated image for its
    prompt, for image-generation trainers.  The image is the completion
    itself (PIL image, PNG/JPEG bytes, a path, a wire dict with VQ
    ``codes``...) unless ``image_column`` names a column holding it."""

    direction = "generation"

    def __init__(self, client: Optional[Client] = None, *, base_url: Optional[str] = None,
                 api_key: Optional[str] = None, image_column: Optional[str] = None,
                 batch_size: int = 16, max_workers: int = 4, name: str = DEFAULT_GEN_NAME,
                 on_error: str = "none"):
        super().__init__(client, base_url, api_key, image_column, batch_size, max_workers, name,
                         on_error)

    def _item(self, i: int, prompts: Optional[Sequence[Any]], completions: Sequence[Any],
              cells: Optional[Sequence[Any]]) -> Dict[str, Any]:
        if prompts is None or len(prompts) != len(completions):
            raise TypeError("R_G needs one prompt per completion")
        image = cells[i] if cells is not None else completions[i]
        return {"task": "generation", "prompt": _img.text(prompt_text(prompts[i])),
                "image": _img.image(_one_image(image))}


def understanding_reward(client: Optional[Client] = None, **options: Any) -> UnderstandingReward:
    """Shorthand for ``UnderstandingReward(client, **options)``."""
    return UnderstandingReward(client, **options)


def generation_reward(client: Optional[Client] = None, **options: Any) -> GenerationReward:
    """Shorthand for ``GenerationReward(client, **options)``."""
    return GenerationReward(client, **options)


def async_understanding_reward(client: Optional[Client] = None,
                               **options: Any) -> Callable[..., Any]:
    """R_U as an ``async def`` function (``asyncio.iscoroutinefunction`` is
    true, so pipelines that await async reward functions recognise it).
    The underlying ``UnderstandingReward`` is reachable as ``.reward``."""
    reward = UnderstandingReward(client, **options)

    async def reward_fn(prompts: Optional[Sequence[Any]] = None,
                        completions: Optional[Sequence[Any]] = None,
                        **kwargs: Any) -> List[Optional[float]]:
        return await reward.acall(prompts, completions, **kwargs)

    reward_fn.__name__ = reward.__name__
    reward_fn.__qualname__ = reward.__name__
    reward_fn.reward = reward  # type: ignore[attr-defined]
    return reward_fn
