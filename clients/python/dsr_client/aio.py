"""asyncio client for dsrd: ``AsyncClient`` has the methods of ``Client`` as
coroutines.

Each call runs the blocking ``Client`` (its pool of keep-alive connections,
its timeouts and its retry rules: 5xx and failed connections only, with
backoff) on a private thread pool of ``max_concurrency`` threads, so up to
that many requests are in flight at once and the event loop never blocks.
Standard library only::

    async with AsyncClient("http://127.0.0.1:8080", max_concurrency=8) as c:
        outs = await asyncio.gather(*(c.score(batch) for batch in batches))
"""

import asyncio
import concurrent.futures
import functools
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar

from .client import DEFAULT_URL, Client

T = TypeVar("T")


class AsyncClient:
    """Coroutine methods over a shared ``Client``; ``client_options`` are
    ``Client``'s keyword arguments (api_key, admin_key, timeout, retries,
    backoff, ...)."""

    def __init__(self, base_url: str = DEFAULT_URL, *, max_concurrency: int = 8,
                 client: Optional[Client] = None, **client_options: Any):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.client = client or Client(base_url, pool_size=max_concurrency, **client_options)
        self.max_concurrency = max_concurrency
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrency, thread_name_prefix="dsr-aio")

    def __repr__(self) -> str:
        return "AsyncClient(%r)" % self.client.base_url

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def aclose(self) -> None:
        """Waits for running calls, stops the threads, closes idle connections."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self.client.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        return await self._run(self.client.request, method, path, body, **options)

    async def health(self) -> Dict[str, Any]:
        return await self._run(self.client.health)

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.2) -> Dict[str, Any]:
        return await self._run(self.client.wait_ready, timeout, interval)

    async def metrics(self) -> str:
        return await self._run(self.client.metrics)

    async def model(self) -> Dict[str, Any]:
        return await self._run(self.client.model)

    async def tokenize(self, text: str, add_special: bool = False) -> List[int]:
        return await self._run(self.client.tokenize, text, add_special)

    async def detokenize(self, tokens: Iterable[int]) -> str:
        return await self._run(self.client.detokenize, list(tokens))

    async def logprobs(self, items: Sequence[Dict[str, Any]], **extra: Any) -> Dict[str, Any]:
        return await self._run(self.client.logprobs, items, **extra)

    async def score(self, items: Sequence[Dict[str, Any]], token_logprobs: bool = False,
                    **extra: Any) -> Dict[str, Any]:
        return await self._run(self.client.score, items, token_logprobs, **extra)

    async def rewards_understanding(self, images: Sequence[Any], responses: Sequence[str]) -> List[float]:
        return await self._run(self.client.rewards_understanding, images, responses)

    async def rewards_generation(self, prompts: Sequence[str], images: Sequence[Any]) -> List[float]:
        return await self._run(self.client.rewards_generation, prompts, images)

    async def rollout(self, request: Optional[Dict[str, Any]] = None, **fields: Any) -> Dict[str, Any]:
        return await self._run(self.client.rollout, request, **fields)

    async def update(self, request: Dict[str, Any]) -> Dict[str, Any]:
        return await self._run(self.client.update, request)

    async def checkpoint(self, name: str) -> Dict[str, Any]:
        return await self._run(self.client.checkpoint, name)

    async def reload(self, path: str) -> Dict[str, Any]:
        return await self._run(self.client.reload, path)

    async def openrlhf_reward(self, query: Sequence[str], prompts: Sequence[str],
                              labels: Sequence[Any]) -> Dict[str, Any]:
        return await self._run(self.client.openrlhf_reward, query, prompts, labels)
