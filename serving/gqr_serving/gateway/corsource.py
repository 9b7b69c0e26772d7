"""COR as the gateway sees it: ``retrieve(query, k)`` under a time budget, degrading on failure.

Milvus down (``CORUnavailable``) -> direct successors only (no vector search); anything
else failing or too slow -> no COR. The gateway never fails a request because of COR alone.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from gqr_serving.cor import CORUnavailable, RetrievalResult, side_info

log = logging.getLogger("gqr_serving.gateway")


class CORSource(Protocol):
    """What the gateway needs from COR (``gqr_serving.cor.CORService`` fits)."""

    def retrieve(
        self, query: str, k: int | None = None, *, direct_only: bool = False
    ) -> RetrievalResult: ...


@dataclass(frozen=True)
class CORAnswer:
    """Co-occurring queries and how they were obtained."""

    queries: list[str]
    status: str
    """ok | degraded (Milvus down: direct successors only) | failed | timeout | off."""


class COR:
    """Runs blocking COR calls on a small thread pool with a timeout."""

    def __init__(self, source: CORSource | None, *, k: int = 10, timeout_s: float = 0.3) -> None:
        self.source, self.k, self.timeout_s = source, k, timeout_s
        self._pool: ThreadPoolExecutor | None = None

    async def retrieve(self, query: str, timeout_s: float | None = None) -> CORAnswer:
        if self.source is None:
            return CORAnswer([], "off")
        budget = self.timeout_s if timeout_s is None else min(self.timeout_s, timeout_s)
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(4, thread_name_prefix="gqr-cor")
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._pool, self._call, query, False), max(budget, 0.001)
            )
            return CORAnswer(side_info(result), "ok")
        except CORUnavailable as exc:
            log.warning("COR index unavailable, serving direct successors: %s", exc)
        except TimeoutError:
            return CORAnswer([], "timeout")
        except Exception as exc:  # COR must never fail the request
            log.warning("COR retrieval failed: %s: %s", type(exc).__name__, exc)
            return CORAnswer([], "failed")
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._pool, self._call, query, True), max(budget, 0.001)
            )
            return CORAnswer(side_info(result), "degraded")
        except Exception as exc:
            log.warning("COR direct retrieval failed: %s: %s", type(exc).__name__, exc)
            return CORAnswer([], "failed")

    def _call(self, query: str, direct_only: bool) -> RetrievalResult:
        assert self.source is not None
        return self.source.retrieve(query, self.k, direct_only=direct_only)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
