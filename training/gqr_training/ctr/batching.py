"""Cross-request micro-batching for the CTR server: lists that arrive within a few
milliseconds of each other share one forward pass, run off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

Pairs = Sequence[tuple[str, Sequence[str]]]
ScoreFn = Callable[[Pairs], list[list[float]]]


class MicroBatcher:
    """Collects submitted lists for ``wait_s``, then scores up to ``max_lists`` at a time."""

    def __init__(self, score: ScoreFn, max_lists: int = 256, wait_s: float = 0.002) -> None:
        self.score = score
        self.max_lists = max_lists
        self.wait_s = wait_s
        self._pending: list[tuple[Pairs, asyncio.Future[list[list[float]]]]] = []
        self._task: asyncio.Task[None] | None = None
        # One worker: forward passes never overlap, the event loop stays free for I/O.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctr-forward")
        self.batches = 0

    async def submit(self, pairs: Pairs) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[list[float]]] = loop.create_future()
        self._pending.append((pairs, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.wait_s)
        while self._pending:
            take, size = 0, 0
            while take < len(self._pending) and (
                take == 0 or size + len(self._pending[take][0]) <= self.max_lists
            ):
                size += len(self._pending[take][0])
                take += 1
            group, self._pending = self._pending[:take], self._pending[take:]
            flat = [pair for pairs, _ in group for pair in pairs]
            try:
                scores = await loop.run_in_executor(self._pool, self.score, flat)
            except Exception as e:  # surface to every waiting request
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            lo = 0
            for pairs, fut in group:
                if not fut.done():
                    fut.set_result(scores[lo : lo + len(pairs)])
                lo += len(pairs)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
