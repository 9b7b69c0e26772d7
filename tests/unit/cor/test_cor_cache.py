"""The COR result cache: only index searches are cached, bounded LRU, batched warm-up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from cor_retrievers import exact_retriever

from gqr_serving.cor import CORRetriever, HashingEncoder, NeighbourSearch, RetrievalConfig
from gqr_serving.cor.cache import LRUCache
from gqr_serving.cor.neighbours import Neighbours

ROWS = [
    ("pocono mountains", "pocono mountains hotels", 4),
    ("pocono mountains", "pocono mountains park", 2),
    ("pocono mountain resorts", "skytop lodge", 3),
    ("403b retirement plan", "403b contribution limits", 5),
    ("403b retirement plan", "403b vs 401k", 2),
]


class CountingIndex:
    """An exact index that records how it was called (how many calls, how many vectors)."""

    def __init__(self, inner: NeighbourSearch) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def search(self, vectors: np.ndarray, k: int) -> Neighbours:
        self.calls.append(len(vectors))
        return self.inner.search(vectors, k)


def retriever(cache_size: int = 100, **cfg: object) -> tuple[CORRetriever, CountingIndex]:
    config = RetrievalConfig(min_similarity=0.2, min_cooccurring=2, **cfg)  # type: ignore[arg-type]
    r = exact_retriever(ROWS, config, cache_size=cache_size)
    assert r.index is not None
    r.index = index = CountingIndex(r.index)
    return r, index


def test_lru_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and len(cache) == 2
    assert cache.hottest(5) == ["c", "a"]
    off: LRUCache[str, int] = LRUCache(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError, match="maxsize"):
        LRUCache(-1)


def test_index_answers_are_cached_per_normalised_query_and_k() -> None:
    r, index = retriever()
    first = r.retrieve("Pocono Mountain Resorts", 5)  # 1 successor < 2: needs the index
    assert first.used_index and not first.cached and index.calls == [1]
    again = r.retrieve("  pocono mountain RESORTS ", 5)
    assert again.cached and index.calls == [1]
    assert again.items == first.items and again.query == "  pocono mountain RESORTS "
    assert not r.retrieve("pocono mountain resorts", 3).cached  # another k: another entry
    assert index.calls == [1, 1]


def test_queries_with_enough_direct_successors_never_search_nor_fill_the_cache() -> None:
    r, index = retriever()
    res = r.retrieve("pocono mountains", 5)
    assert not res.used_index and not res.cached
    assert r.retrieve_from_memory("pocono mountains", 5) == res
    assert index.calls == [] and len(r.cache) == 0


def test_retrieve_from_memory_never_searches() -> None:
    r, index = retriever()
    assert r.retrieve_from_memory("pocono mountain resort", 5) is None  # needs the index
    assert index.calls == []
    r.retrieve("pocono mountain resort", 5)
    hit = r.retrieve_from_memory("pocono mountain resort", 5)
    assert hit is not None and hit.cached and hit.used_index and index.calls == [1]
    empty = r.retrieve_from_memory("   ", 5)
    assert empty is not None and empty.items == ()


def test_direct_only_neither_reads_nor_writes_the_cache() -> None:
    r, index = retriever()
    r.retrieve("pocono mountain resorts", 5)
    degraded = r.retrieve("pocono mountain resorts", 5, direct_only=True)
    assert not degraded.used_index and not degraded.cached
    assert [i.provenance for i in degraded.items] == ["direct"]
    assert index.calls == [1]


def test_cache_size_zero_searches_every_time() -> None:
    r, index = retriever(cache_size=0)
    for _ in range(3):
        assert not r.retrieve("pocono mountain resorts", 5).cached
    assert index.calls == [1, 1, 1]


def test_warm_searches_in_batches_and_answers_like_retrieve() -> None:
    r, index = retriever()
    fresh, _ = retriever()
    queries = ["pocono mountain resort", "403b plan", "pocono mountains", "glass art", "x" * 600]
    assert r.warm(queries, 5, batch_size=2) == 3  # a direct one and a too-long one skipped
    assert index.calls == [2, 1]
    for q in ("pocono mountain resort", "403b plan", "glass art"):
        hit = r.retrieve_from_memory(q, 5)
        assert hit is not None and hit.cached
        assert hit.items == fresh.retrieve(q, 5).items  # same answer as a search on demand
    assert r.warm(queries, 5) == 0  # already cached: nothing searched
    assert index.calls == [2, 1]


def test_warm_respects_its_limit_and_keeps_the_first_queries_hottest() -> None:
    r, _ = retriever(cache_size=10)
    assert r.warm(["glass art", "403b plan", "pocono mountain resort"], 5, limit=2) == 2
    assert r.cache.hottest(10) == [("glass art", 5), ("403b plan", 5)]


def test_warm_uses_given_vectors_instead_of_encoding() -> None:
    r, _ = retriever()
    fresh, _ = retriever()
    assert r.encoder is not None
    stored = {"glass art": r.encoder.encode(["glass art"])[0]}

    class NoEncoder(HashingEncoder):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            assert list(texts) == ["403b plan"], texts  # only the one without a vector
            return super().encode(texts)

    r.encoder = NoEncoder(256)
    assert r.warm(["glass art", "403b plan"], 5, vectors=stored) == 2
    for q in ("glass art", "403b plan"):
        hit = r.retrieve_from_memory(q, 5)
        assert hit is not None and hit.items == fresh.retrieve(q, 5).items
