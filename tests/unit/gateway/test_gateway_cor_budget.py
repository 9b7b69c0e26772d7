"""COR on the request path: memory first, the index search under a budget, never an error.

The index here blocks until the test releases it, so "over budget" does not depend on how
fast the machine running the test is: the search cannot finish before the budget runs out.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from gateway_fakes import SUCCESSORS, ScriptedBackend, client

from gqr_serving.cor import (
    CORRetriever,
    CORUnavailable,
    ExactNeighbourIndex,
    HashingEncoder,
    RetrievalConfig,
)
from gqr_serving.cor.neighbours import Neighbours

pytestmark = pytest.mark.anyio

GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A drink."}
K = 10  # the gateway's default --cor-k: the cache is keyed by it


class GatedIndex:
    """Exact search that waits for ``gate`` first (or fails, when ``error`` is set)."""

    def __init__(self, gate: threading.Event, error: Exception | None = None) -> None:
        enc = HashingEncoder(64)
        known = sorted(SUCCESSORS)
        self.inner = ExactNeighbourIndex(known, enc.encode(known))
        self.gate, self.error = gate, error
        self.calls = 0

    def search(self, vectors: np.ndarray, k: int) -> Neighbours:
        self.calls += 1
        if self.error is not None:
            raise self.error
        self.gate.wait(30)  # a safety net: the test always opens it
        return self.inner.search(vectors, k)


def source(index: GatedIndex) -> CORRetriever:
    totals = {q: sum(c for _, c in rows) for q, rows in SUCCESSORS.items()}
    return CORRetriever(
        SUCCESSORS,
        totals,
        version="t",
        encoder=HashingEncoder(64),
        index=index,
        config=RetrievalConfig(k=K, min_similarity=0.0),  # min_cooccurring 5: index needed
        cache_size=100,
    )


def metric(text: str, name: str, label: str = "") -> float:
    head = f"{name}{{{label}}} " if label else f"{name} "
    for line in text.splitlines():
        if line.startswith(head):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def wait_cached(src: CORRetriever, query: str) -> None:
    for _ in range(500):
        if src.retrieve_from_memory(query, K) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{query!r} never reached the cache")


async def test_over_budget_goes_on_with_direct_successors_and_counts_it(tmp_path: Path) -> None:
    gate = threading.Event()
    index = GatedIndex(gate)
    src = source(index)
    backend = ScriptedBackend(GOOD)
    try:
        async with client(tmp_path, backend, cor=src, cor_timeout_s=0.05) as c:
            r = await c.post("/v1/recommend", json=REQ)
            assert r.status_code == 200, r.text
            assert r.json()["fallback"] is False
            assert "green tea benefits" in backend.prompts[0].text  # direct successors kept
            text = (await c.get("/metrics")).text
            assert metric(text, "gqr_gateway_cor_total", 'status="timeout"') == 1
            assert metric(text, "gqr_gateway_cor_path_total", 'path="none"') == 1
            ok = 'endpoint="/v1/recommend",status="200"'
            assert metric(text, "gqr_gateway_requests_total", ok) == 1

            gate.set()  # the abandoned search finishes and fills the cache ...
            await wait_cached(src, REQ["query"])
            r = await c.post("/v1/recommend", json=REQ)  # ... so the next request uses it
            assert r.status_code == 200
            text = (await c.get("/metrics")).text
            assert metric(text, "gqr_gateway_cor_total", 'status="ok"') == 1
            assert metric(text, "gqr_gateway_cor_path_total", 'path="cache"') == 1
            assert index.calls == 1
    finally:
        gate.set()


async def test_one_search_per_query_and_a_bounded_number_in_flight(tmp_path: Path) -> None:
    gate = threading.Event()
    index = GatedIndex(gate)
    src = source(index)
    try:
        async with client(
            tmp_path, ScriptedBackend(GOOD), cor=src, cor_timeout_s=0.05, cor_max_inflight=1
        ) as c:
            for _ in range(2):  # the second request joins the search the first one started
                assert (await c.post("/v1/recommend", json=REQ)).status_code == 200
            other = {**REQ, "query": "rome weather"}  # the one search slot is taken
            assert (await c.post("/v1/recommend", json=other)).status_code == 200
            text = (await c.get("/metrics")).text
            assert metric(text, "gqr_gateway_cor_total", 'status="timeout"') == 2
            assert metric(text, "gqr_gateway_cor_total", 'status="busy"') == 1
            assert metric(text, "gqr_gateway_cor_path_total", 'path="none"') == 3
            assert metric(text, "gqr_gateway_cor_inflight") == 1  # the gated search
            assert index.calls == 1
            gate.set()
            await wait_cached(src, REQ["query"])
            assert (await c.post("/v1/recommend", json=other)).status_code == 200
            assert index.calls == 2  # the slot is free again
    finally:
        gate.set()


async def test_index_down_serves_direct_successors_as_degraded(tmp_path: Path) -> None:
    index = GatedIndex(threading.Event(), error=CORUnavailable("milvus is down"))
    backend = ScriptedBackend(GOOD)
    async with client(tmp_path, backend, cor=source(index)) as c:
        r = await c.post("/v1/recommend", json=REQ)
        assert r.status_code == 200 and r.json()["fallback"] is False
        assert "green tea benefits" in backend.prompts[0].text
        text = (await c.get("/metrics")).text
    assert metric(text, "gqr_gateway_cor_total", 'status="degraded"') == 1
    assert metric(text, "gqr_gateway_cor_path_total", 'path="none"') == 1


async def test_queries_with_enough_successors_never_leave_memory(tmp_path: Path) -> None:
    index = GatedIndex(threading.Event(), error=AssertionError("no search expected"))
    src = source(index)
    src.config = RetrievalConfig(k=K, min_cooccurring=2)
    async with client(tmp_path, ScriptedBackend(GOOD), cor=src) as c:
        for _ in range(3):
            assert (await c.post("/v1/recommend", json=REQ)).status_code == 200
        text = (await c.get("/metrics")).text
    assert metric(text, "gqr_gateway_cor_path_total", 'path="memory"') == 3
    assert index.calls == 0
