"""COR as the gateway sees it: ``retrieve(query, k)`` under a time budget, degrading on failure.

Hot path: what needs no vector search (direct successors from the in-memory table, or an
earlier ANN result from the per-version cache) is answered on the event loop in microseconds.
Only a query with too few direct successors and no cached result goes to the index (Milvus),
on a small thread pool, and waits at most the COR budget (``--cor-timeout-s``):

- the search finishes in time -> its result (and the cache keeps it);
- the budget runs out -> the request goes on with the direct successors alone (none for an
  unseen query): status ``timeout``, never an error. The search keeps running and fills the
  cache, so the next request for that query is answered from memory;
- ``max_inflight`` searches already running -> the same, at once: status ``busy`` (a slow or
  hung Milvus cannot pile up threads or queued work). Concurrent requests for one query share
  one search;
- Milvus down (``CORUnavailable``) -> direct successors only: status ``degraded``;
- anything else failing -> no COR: status ``failed``.

The gateway never fails a request because of COR alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from gqr_serving.cor import CORUnavailable, RetrievalResult, normalize_query, side_info

log = logging.getLogger("gqr_serving.gateway")

Path = Literal["memory", "cache", "ann", "none", "off"]


class CORSource(Protocol):
    """What the gateway needs from COR (``gqr_serving.cor.CORService`` fits).

    A source may also offer ``retrieve_from_memory(query, k) -> RetrievalResult | None``
    (answer without an index search, or None): the gateway then calls it on the event loop
    and goes to a thread only for the index search.
    """

    def retrieve(
        self, query: str, k: int | None = None, *, direct_only: bool = False
    ) -> RetrievalResult: ...


@dataclass(frozen=True)
class CORAnswer:
    """Co-occurring queries and how they were obtained."""

    queries: list[str]
    status: str
    """ok | degraded (Milvus down) | timeout (over budget) | busy (searches saturated): these
    three serve direct successors only | failed | off."""
    path: Path = "none"
    """memory (no ANN step needed) | cache (ANN result cached) | ann (searched now) |
    none (ANN step needed, not obtained) | off."""


class BudgetedCOR:
    """COR on the request path: answers from memory on the loop, runs index searches of its
    source (e.g. ``CORService``) on a small pool, within a time budget."""

    def __init__(
        self,
        source: CORSource | None,
        *,
        k: int = 10,
        timeout_s: float = 0.05,
        max_inflight: int = 4,
    ) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight}")
        self.source, self.k, self.timeout_s = source, k, timeout_s
        self.max_inflight = max_inflight
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[str, asyncio.Future[RetrievalResult]] = {}
        self._from_memory: Callable[[str, int], RetrievalResult | None] | None = getattr(
            source, "retrieve_from_memory", None
        )

    @property
    def inflight(self) -> int:
        """Index searches running now (abandoned ones included, until they finish)."""
        return len(self._inflight)

    async def retrieve(self, query: str, timeout_s: float | None = None) -> CORAnswer:
        if self.source is None:
            return CORAnswer([], "off", "off")
        budget = self.timeout_s if timeout_s is None else min(self.timeout_s, timeout_s)
        if self._from_memory is not None:
            try:
                found = self._from_memory(query, self.k)
            except Exception as exc:  # COR must never fail the request
                log.warning("COR retrieval failed: %s: %s", type(exc).__name__, exc)
                return CORAnswer([], "failed")
            if found is not None:
                return CORAnswer(side_info(found), "ok", "cache" if found.cached else "memory")
        try:
            search = self._search(query)
        except _Busy:
            return self._direct(query, "busy")
        try:
            result = await asyncio.wait_for(asyncio.shield(search), max(budget, 0.001))
        except CORUnavailable as exc:
            log.warning("COR index unavailable, serving direct successors: %s", exc)
            return self._direct(query, "degraded")
        except TimeoutError:
            return self._direct(query, "timeout")
        except Exception as exc:  # COR must never fail the request
            log.warning("COR retrieval failed: %s: %s", type(exc).__name__, exc)
            return CORAnswer([], "failed")
        path: Path = "cache" if result.cached else "ann" if result.used_index else "memory"
        return CORAnswer(side_info(result), "ok", path)

    def _search(self, query: str) -> asyncio.Future[RetrievalResult]:
        """The running search for this query, or a new one; :class:`_Busy` when saturated."""
        key = normalize_query(query)
        running = self._inflight.get(key)
        if running is not None:
            return running
        if len(self._inflight) >= self.max_inflight:
            raise _Busy
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_inflight, thread_name_prefix="gqr-cor")
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, self._call, query)
        self._inflight[key] = fut

        def done(f: asyncio.Future[RetrievalResult]) -> None:
            self._inflight.pop(key, None)
            if not f.cancelled():
                f.exception()  # retrieved: an abandoned search's error is not "never retrieved"

        fut.add_done_callback(done)
        return fut

    def _direct(self, query: str, status: str) -> CORAnswer:
        """Direct successors only (in memory, on the loop) after the ANN step was not had."""
        assert self.source is not None
        try:
            result = self.source.retrieve(query, self.k, direct_only=True)
        except Exception as exc:
            log.warning("COR direct retrieval failed: %s: %s", type(exc).__name__, exc)
            return CORAnswer([], "failed")
        return CORAnswer(side_info(result), status)

    def _call(self, query: str) -> RetrievalResult:
        assert self.source is not None
        return self.source.retrieve(query, self.k)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class _Busy(Exception):
    """``max_inflight`` index searches are running already."""
