"""Version switch atomicity and pruning on a real milvus-lite."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.integration.cor.conftest import ROWS_V1, ROWS_V2, make_version

from gqr_serving.cor import CORService, HashingEncoder, MilvusQueryIndex, RetrievalConfig
from gqr_serving.cor.artifact import read_current

PROBES = ["pocono mountains", "pocono mountain resort", "403b retirement plans", "glass blowing"]


def _answers(svc: CORService) -> tuple[str, tuple[tuple[str, ...], ...]]:
    results = [svc.retrieve(q, 5) for q in PROBES]
    versions = {r.version for r in results}
    assert len(versions) == 1
    return versions.pop(), tuple(tuple(i.query for i in r.items) for r in results)


def test_readers_during_rebuild_see_old_or_new_never_partial(
    tmp_path: Path, milvus_uri: str
) -> None:
    root = tmp_path / "art"
    enc, cfg = HashingEncoder(128), RetrievalConfig(min_similarity=0.2)
    make_version(root, "v1", ROWS_V1)
    svc = CORService(root, index=MilvusQueryIndex(milvus_uri), encoder=enc, config=cfg)
    svc.refresh()
    expected = {"v1": _answers(svc)[1]}

    # A second, independent reader of the same artifact root and Milvus.
    make_version(root, "v2", ROWS_V2, publish_it=False)
    seen: list[tuple[str, tuple[tuple[str, ...], ...]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            # One snapshot per call: a reader holds the retriever it started with.
            retriever = svc._retriever
            assert retriever is not None
            results = [retriever.retrieve(q, 5) for q in PROBES]
            seen.append(
                (retriever.version, tuple(tuple(i.query for i in r.items) for r in results))
            )

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    from gqr_training.cor.artifact_writer import publish

    publish(root, "v2")
    assert svc.refresh()  # builds the v2 collection while readers keep going
    while not any(v == "v2" for v, _ in seen):
        pass
    stop.set()
    for t in threads:
        t.join()
    expected["v2"] = _answers(svc)[1]
    assert read_current(root) == "v2"
    assert {v for v, _ in seen} == {"v1", "v2"}
    for version, answers in seen:
        assert answers == expected[version], f"a reader saw a mix under {version}"


def test_alias_moves_only_to_complete_collections_and_old_ones_are_pruned(
    tmp_path: Path, milvus_uri: str
) -> None:
    root = tmp_path / "art"
    index = MilvusQueryIndex(milvus_uri)
    svc = CORService(root, index=index, encoder=HashingEncoder(64), keep_versions=2)
    for n, rows in enumerate([ROWS_V1, ROWS_V2, ROWS_V1], start=1):
        make_version(root, f"v{n}", rows)
        svc.refresh()
        name = index.current_collection()
        assert name is not None
        stats = index.client.get_collection_stats(name)
        assert int(stats["row_count"]) == len({r[0] for r in rows})
    assert index.current_version() == "v3"
    assert index.versions() == ["v2", "v3"]  # v1 pruned, the previous one kept for readers
    index.close()


def test_collection_names_round_trip_versions() -> None:
    index = MilvusQueryIndex("unused.db")
    for version in ["v1", "v20240501T000000Z-2", "a_b.c-d", "x_0_1"]:
        assert index.version_of(index.collection_name(version)) == version
