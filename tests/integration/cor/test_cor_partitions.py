"""A partitioned COR collection (k-means partitions + stored centroids) on the real milvus-lite:
searches go to the nearest partitions only, find what the whole collection finds on clustered
data, never return a centroid, and a reopened client routes the same way."""

from __future__ import annotations

import numpy as np
import pytest

from gqr_serving.cor import MilvusQueryIndex
from gqr_serving.cor.index import ROUTING_PARTITION
from gqr_serving.cor.neighbours import ExactNeighbourIndex

CLUSTERS, PER_CLUSTER, DIM, PARTS = 24, 40, 32, 8


def _clustered(seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Known queries in topic-like clusters, and unseen queries near them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM))
    vecs = np.repeat(centres, PER_CLUSTER, axis=0) + 0.35 * rng.standard_normal(
        (CLUSTERS * PER_CLUSTER, DIM)
    )
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    unseen = vecs[rng.choice(len(vecs), 60, replace=False)] + 0.1 * rng.standard_normal((60, DIM))
    unseen = (unseen / np.linalg.norm(unseen, axis=1, keepdims=True)).astype(np.float32)
    return [f"q{i}" for i in range(len(vecs))], vecs, unseen


def _recall(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> float:
    hits = sum(len({q for q, _ in g} & {q for q, _ in w}) for g, w in zip(got, want, strict=True))
    return hits / sum(len(w) for w in want)


def test_partitioned_search_routes_and_keeps_recall(milvus_uri: str) -> None:
    queries, vecs, unseen = _clustered()
    index = MilvusQueryIndex(milvus_uri, partitions=PARTS, probe=2, hnsw_m=8, ef_construction=64)
    name = index.build("v1", queries, vecs, batch_size=200)
    parts = index.client.list_partitions(name)
    assert {f"c{j}" for j in range(PARTS)} | {ROUTING_PARTITION} <= set(parts)
    # every known query is stored once, plus one centroid row per partition
    assert int(index.client.get_collection_stats(name)["row_count"]) == len(queries) + PARTS

    search = index.searcher("v1", DIM)
    assert search.partitions == PARTS
    exact = ExactNeighbourIndex(queries, vecs).search(unseen, 10)
    routed = [search.search(unseen[i : i + 1], 10)[0] for i in range(len(unseen))]  # requests
    assert _recall(routed, exact) >= 0.9  # clustered data: the nearest 2 of 8 hold the answer
    assert all(not q.startswith("centroid") for row in routed for q, _ in row)
    # each answer comes from the partitions the query was routed to, and from nowhere else
    routes = search.route(unseen)
    assert routes is not None and all(len(r) == 2 for r in routes)
    members = {
        int(r["id"]): p
        for p in (f"c{j}" for j in range(PARTS))
        for r in index.client.query(name, filter="id >= 0", partition_names=[p])
    }
    for row, route in zip(routed, routes, strict=True):
        assert {members[int(q[1:])] for q, _ in row} <= set(route)
    # a partition-scoped search really is scoped: a known query is not found outside its own
    own = members[0]
    other = next(p for p in (f"c{j}" for j in range(PARTS)) if p != own)
    elsewhere = index.search(name, vecs[:1], 10, [other])[0]
    assert elsewhere and "q0" not in {q for q, _ in elsewhere}
    assert {members[int(q[1:])] for q, _ in elsewhere} == {other}
    assert index.search(name, vecs[:1], 1, [own])[0][0][0] == "q0"

    # A batch (cache warm-up) needing many routes is one search of the whole collection.
    batch = search.search(unseen, 10)
    assert len(set(routes)) > 2 and _recall(batch, exact) >= 0.97

    index.probe = PARTS  # visiting every partition is the whole collection again
    assert search.route(unseen) is None
    assert _recall(search.search(unseen, 10), exact) >= 0.97
    index.close()

    # A fresh client (a gateway starting later) reads the stored centroids and routes the same.
    again = MilvusQueryIndex(milvus_uri, probe=2)
    search2 = again.searcher("v1", DIM)
    assert search2.route(unseen) == routes
    assert [search2.search(unseen[i : i + 1], 10)[0] for i in range(5)] == routed[:5]
    again.close()


def test_small_or_unpartitioned_collections_are_searched_whole(milvus_uri: str) -> None:
    queries, vecs, unseen = _clustered(1)
    index = MilvusQueryIndex(milvus_uri)  # auto: 960 rows is far below the first partition
    name = index.build("v1", queries, vecs)
    assert ROUTING_PARTITION not in index.client.list_partitions(name)
    search = index.searcher("v1", DIM)
    assert search.partitions == 0 and search.route(unseen) is None
    hits = search.search(vecs[:3], 1)
    assert [h[0][0] for h in hits] == queries[:3]
    index.close()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"partitions": -1}, "partitions=-1 (accepted: 0-256, or auto)"),
        ({"partitions": 5000}, "partitions=5000"),
        ({"probe": 0}, "probe=0 (accepted: >= 1"),
    ],
)
def test_bad_partition_settings_are_named(kwargs: dict[str, int], needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        MilvusQueryIndex("unused.db", **kwargs)
