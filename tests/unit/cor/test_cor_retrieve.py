"""retrieve(q, k): direct successors, neighbour fallback, exclusions, limits, side_info."""

from __future__ import annotations

import pytest
from cor_retrievers import exact_retriever

from gqr_serving.cor import CORRetriever, HashingEncoder, QueryTooLong, RetrievalConfig, side_info

ROWS = [
    ("pocono mountains", "pocono mountains hotels", 4),
    ("pocono mountains", "pocono mountains park", 2),
    ("pocono mountains", "Pocono, mountains", 1),  # a near-duplicate of q: never shown
    ("pocono mountain resorts", "skytop lodge", 3),
    ("pocono mountain resorts", "pocono mountains", 1),
    ("403b retirement plan", "403b contribution limits", 5),
]


def retriever(**cfg: object) -> CORRetriever:
    config = RetrievalConfig(min_similarity=0.2, **cfg)  # type: ignore[arg-type]
    return exact_retriever(ROWS, config)


def test_known_query_with_enough_successors_uses_direct_only() -> None:
    res = retriever(min_cooccurring=2).retrieve("  POCONO Mountains ", 5)
    assert not res.used_index
    assert [i.query for i in res.items] == ["pocono mountains hotels", "pocono mountains park"]
    assert all(i.provenance == "direct" for i in res.items)
    assert res.items[0].score > res.items[1].score and res.items[0].count == 4


def test_sparse_query_borrows_neighbour_successors_without_returning_itself() -> None:
    res = retriever(min_cooccurring=5).retrieve("pocono mountains", 10)
    assert res.used_index
    got = {i.query: i for i in res.items}
    assert got["pocono mountains hotels"].provenance == "direct"
    assert got["skytop lodge"].provenance == "neighbour"
    assert got["skytop lodge"].via == ("pocono mountain resorts",)
    assert "pocono mountains" not in got and "Pocono, mountains" not in got


def test_unseen_query_gets_neighbours_only() -> None:
    res = retriever().retrieve("403b retirement plans", 3)
    assert [i.query for i in res.items] == ["403b contribution limits"]
    assert res.items[0].provenance == "neighbour"


def test_direct_only_is_the_degraded_mode() -> None:
    res = retriever().retrieve("unknown thing", 3, direct_only=True)
    assert res.items == () and not res.used_index


def test_empty_query_is_an_empty_result() -> None:
    res = retriever().retrieve(" \t", 3)
    assert res.items == () and res.notes == ("empty query",)


def test_huge_query_raises_naming_the_limit() -> None:
    with pytest.raises(QueryTooLong, match=r"max_query_chars\) is 512"):
        retriever().retrieve("x" * 513)
    with pytest.raises(ValueError, match=r"k must be in \[1, 1000\]"):
        retriever().retrieve("q", 0)


def test_side_info_lists_the_queries_in_rank_order() -> None:
    res = retriever(min_cooccurring=2).retrieve("pocono mountains", 2)
    assert side_info(res) == ["pocono mountains hotels", "pocono mountains park"]


def test_hashing_encoder_is_deterministic_unit_norm() -> None:
    enc = HashingEncoder(64)
    a, b = enc.encode(["Hello World"]), enc.encode(["hello   world"])
    assert (a == b).all()
    assert abs(float((a * a).sum()) - 1.0) < 1e-5
