"""TRL reward-function adapter: dsr's understanding reward R_U.

TRL's ``GRPOTrainer`` calls each reward function as
``f(prompts=..., completions=..., **columns)`` where ``columns`` are the
dataset's other columns, one value per completion, and logs it under
``f.__name__``.  ``UnderstandingReward`` scores every completion (the caption
or answer the policy wrote) against the image in the dataset column
``image_column`` with dsr's ``/score`` and returns R_U, the mean log-prob of
the image's VQ codes given the completion::

    from dsr_client import Client
    from dsr_client.trl import UnderstandingReward
    reward = UnderstandingReward(Client("http://dsr:8080"), image_column="image")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=ds, ...)

Completions may be plain strings or TRL's conversational form
``[{"role": "assistant", "content": "..."}]`` (content may also be a list of
``{"type": "text", "text": ...}`` parts).  Image cells may be PNG bytes, a
local file path, a ``datasets`` Image cell, a PIL image (Pillow is optional),
a wire image dict, or a one-element list of any of these (TRL's ``images``
column).  Requests go out in batches of ``batch_size`` items, up to
``max_workers`` at a time.

``async_understanding_reward()`` returns the same reward as an ``async def``
function for pipelines that await their reward functions.
"""

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import images as _img
from .client import Client

DEFAULT_NAME = "dsr_r_u"


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


class UnderstandingReward:
    """Callable TRL reward function returning R_U for each completion."""

    def __init__(self, client: Optional[Client] = None, *, base_url: Optional[str] = None,
                 api_key: Optional[str] = None, image_column: str = "image",
                 batch_size: int = 16, max_workers: int = 4, name: str = DEFAULT_NAME):
        if client is None:
            client = Client(base_url or "http://127.0.0.1:8080", api_key=api_key)
        if batch_size < 1 or max_workers < 1:
            raise ValueError("batch_size and max_workers must be >= 1")
        self.client = client
        self.image_column = image_column
        self.batch_size = int(batch_size)
        self.max_workers = int(max_workers)
        self.__name__ = name
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return "UnderstandingReward(%r, image_column=%r)" % (self.client, self.image_column)

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

    def items(self, completions: Sequence[Any], kwargs: Dict[str, Any]) -> List[Dict[str, Any]]:
        """The /score items for a TRL call (one per completion)."""
        if self.image_column not in kwargs:
            raise KeyError("reward needs the dataset column %r; the call has %s"
                           % (self.image_column, sorted(kwargs) or "no extra columns"))
        cells = kwargs[self.image_column]
        if len(cells) != len(completions):
            raise ValueError("column %r has %d values for %d completions"
                             % (self.image_column, len(cells), len(completions)))
        return [{"task": "understanding", "image": _img.image(_one_image(cell)),
                 "response": _img.text(completion_text(c))}
                for cell, c in zip(cells, completions)]

    def _batches(self, items: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
        return [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]

    def _score_batch(self, batch: List[Dict[str, Any]]) -> List[float]:
        out = self.client.score(batch)["items"]
        if len(out) != len(batch):
            raise ValueError("/score returned %d items for %d" % (len(out), len(batch)))
        return [float(it["reward"]) for it in out]

    def __call__(self, prompts: Optional[Sequence[Any]] = None,
                 completions: Optional[Sequence[Any]] = None, **kwargs: Any) -> List[float]:
        if completions is None:
            raise TypeError("reward function needs completions")
        batches = self._batches(self.items(completions, kwargs))
        if len(batches) <= 1:
            return [r for b in batches for r in self._score_batch(b)]
        results = self._executor().map(self._score_batch, batches)
        return [r for rs in results for r in rs]

    async def acall(self, prompts: Optional[Sequence[Any]] = None,
                    completions: Optional[Sequence[Any]] = None, **kwargs: Any) -> List[float]:
        """The same rewards without blocking the event loop: the batches run
        concurrently on the thread pool."""
        if completions is None:
            raise TypeError("reward function needs completions")
        loop = asyncio.get_running_loop()
        items = await loop.run_in_executor(self._executor(), self.items, completions, kwargs)
        futures = [loop.run_in_executor(self._executor(), self._score_batch, b)
                   for b in self._batches(items)]
        results = await asyncio.gather(*futures)
        return [r for rs in results for r in rs]


def understanding_reward(client: Optional[Client] = None, **options: Any) -> UnderstandingReward:
    """Shorthand for ``UnderstandingReward(client, **options)``."""
    return UnderstandingReward(client, **options)


def async_understanding_reward(client: Optional[Client] = None,
                               **options: Any) -> Callable[..., Any]:
    """R_U as an ``async def`` function (``asyncio.iscoroutinefunction`` is
    true, so pipelines that await async reward functions recognise it).
    The underlying ``UnderstandingReward`` is reachable as ``.reward``."""
    reward = UnderstandingReward(client, **options)

    async def reward_fn(prompts: Optional[Sequence[Any]] = None,
                        completions: Optional[Sequence[Any]] = None,
                        **kwargs: Any) -> List[float]:
        return await reward.acall(prompts, completions, **kwargs)

    reward_fn.__name__ = reward.__name__
    reward_fn.__qualname__ = reward.__name__
    reward_fn.reward = reward  # type: ignore[attr-defined]
    return reward_fn
