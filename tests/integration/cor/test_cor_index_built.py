"""build() returns with the HNSW index in place on every segment (milvus-lite internals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gqr_serving.cor import MilvusQueryIndex


def _segments(uri: str, collection: str) -> list:
    from milvus_lite.server_manager import server_manager_instance

    _server, db, _port = server_manager_instance._servers[str(Path(uri).resolve())]
    return list(db.get_collection(collection)._segment_cache.values())


def test_build_indexes_every_segment_before_returning(milvus_uri: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    index = MilvusQueryIndex(milvus_uri, hnsw_m=8, ef_construction=40)
    name = index.build("v1", [f"q{i}" for i in range(3000)], vectors, batch_size=500)

    # Checked at once: a collection created with its index is loaded before the rows arrive,
    # and milvus-lite then indexes each flushed segment later, from a background thread.
    segments = _segments(milvus_uri, name)
    assert segments and sum(s.num_rows for s in segments) == 3000
    assert all("vector" in s.indexes and s.indexes["vector"].index_type == "HNSW" for s in segments)
    hnsw = segments[0].indexes["vector"]._index.hnsw  # the build parameters reached faiss
    assert (hnsw.nb_neighbors(1), hnsw.efConstruction) == (8, 40)

    search = index.searcher("v1", 32)
    hits = search.search(vectors[:3], 1)
    assert [h[0][0] for h in hits] == ["q0", "q1", "q2"]
    index.close()


def test_local_client_sends_no_keepalive_pings(milvus_uri: str) -> None:
    """A long create_index must not meet GOAWAY too_many_pings (and pymilvus's retry)."""
    index = MilvusQueryIndex(milvus_uri)
    opts = dict(index.client._handler._grpc_options)  # the channel's own options
    assert opts["grpc.keepalive_time_ms"] == 2**31 - 1
    index.close()
