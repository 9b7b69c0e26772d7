"""HTTP client for the CTR predictor (KServe V1) and the over-generate-and-rerank step.

Wire format: :mod:`gqr_contracts.ctr` (``POST /v1/models/<name>:predict``, KServe V1).

Two rerank modes:

- ``pointwise`` (default): ONE request scoring every candidate as a one-item list, i.e. its
  click probability p_1(c) at the top of the list; keep the best N in that order. The
  predictor scores the whole request in one forward pass (and batches concurrent requests).
- ``greedy``: build the list position by position, scoring every (chosen prefix + c) at each
  step: N sequential requests. It uses what a ``ctx`` predictor knows about the queries
  above (redundancy); for ``base`` it picks the same lists as pointwise, and for ``pid`` the
  same unless the position changes the candidates' order. For N = 3 of 6 candidates greedy
  makes 3 round trips scoring 28 (list, position) inputs, pointwise 1 scoring 6; on a 2-core
  machine greedy made the predictor the bottleneck (``benchmarks/bench_gateway.py --ctr``).
"""

from __future__ import annotations

import time
from typing import Literal

import aiohttp
from pydantic import ValidationError

from gqr_contracts.ctr import CtrRequest, CtrResponse
from gqr_contracts.reward import check_component
from gqr_serving.backends.httpclient import JSONPoster

RerankMode = Literal["pointwise", "greedy"]


class CTRError(RuntimeError):
    """The predictor did not answer usefully in time."""


class CTRClient:
    """Scores query lists with the CTR predictor at ``url`` (model ``model``)."""

    def __init__(self, url: str, model: str = "ctr", *, timeout_s: float = 0.5) -> None:
        self.path = f"/v1/models/{model}:predict"
        self.url = url.rstrip("/")
        self._http = JSONPoster(self.url, timeout_s=timeout_s)

    async def score(
        self, query: str, lists: list[list[str]], component: str, timeout_s: float
    ) -> list[float]:
        """The list reward of each list (the predictor's ``reward``)."""
        body = CtrRequest.lists(query, lists, check_component(component)).model_dump(
            exclude_none=True
        )
        try:
            status, raw = await self._http.post(self.path, body, max(timeout_s, 0.001))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise CTRError(f"CTR predictor {self.url}: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            text = raw.decode("utf-8", "replace")[:200]
            raise CTRError(f"CTR predictor {self.url}: HTTP {status}: {text}")
        try:
            rewards = [p.reward for p in CtrResponse.model_validate_json(raw).predictions]
        except ValidationError as exc:
            raise CTRError(f"CTR predictor {self.url}: unexpected payload") from exc
        if len(rewards) != len(lists):
            raise CTRError(f"CTR predictor returned {len(rewards)} scores for {len(lists)} lists")
        return rewards

    async def rerank(
        self,
        query: str,
        candidates: list[str],
        n: int,
        component: str,
        deadline: float,
        mode: RerankMode = "pointwise",
    ) -> list[str]:
        """Best ``n`` of ``candidates``, best first (see the module docstring for ``mode``)."""
        if mode == "greedy":
            return await self._greedy(query, candidates, n, component, deadline)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CTRError("rerank ran out of time")
        rewards = await self.score(query, [[c] for c in candidates], component, remaining)
        order = sorted(range(len(candidates)), key=lambda i: (-rewards[i], i))
        return [candidates[i] for i in order[:n]]

    async def _greedy(
        self, query: str, candidates: list[str], n: int, component: str, deadline: float
    ) -> list[str]:
        """Built position by position; each step scores whole prefixes (N requests)."""
        chosen: list[str] = []
        left = list(candidates)
        while len(chosen) < n and left:
            if len(left) == 1:
                chosen.append(left.pop())
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CTRError("rerank ran out of time")
            rewards = await self.score(query, [[*chosen, c] for c in left], component, remaining)
            best = max(range(len(left)), key=lambda i: (rewards[i], -i))
            chosen.append(left.pop(best))
        return chosen

    async def aclose(self) -> None:
        await self._http.aclose()
