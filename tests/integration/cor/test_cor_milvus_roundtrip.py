"""build -> artifact -> Milvus index -> retrieve, on a real milvus-lite."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.cor.conftest import ROWS_V1, make_version
from testsupport.artifacts import cor_build_tsv, sessions_tsv

from gqr_contracts.job import JobResult
from gqr_serving.cor import CORService, HashingEncoder, MilvusQueryIndex, RetrievalConfig


def test_service_indexes_and_retrieves(tmp_path: Path, milvus_uri: str) -> None:
    root = tmp_path / "art"
    make_version(root, "v1", ROWS_V1)
    index = MilvusQueryIndex(milvus_uri)
    svc = CORService(
        root, index=index, encoder=HashingEncoder(128), config=RetrievalConfig(min_similarity=0.2)
    )
    assert svc.refresh() and svc.version == "v1"
    assert index.current_version() == "v1" and index.versions() == ["v1"]
    res = svc.retrieve("pocono mountain resort", 5)  # unseen: neighbours lend successors
    assert res.used_index and res.version == "v1"
    got = {i.query: i for i in res.items}
    assert got["skytop lodge"].provenance == "neighbour"
    assert got["skytop lodge"].via == ("pocono mountain resorts",)
    assert svc.refresh() is False  # nothing new
    index.close()


def build_indexed(
    tmp_path: Path, milvus_uri: str, sessions: list[tuple[str, list[str]]], *flags: str
) -> tuple[int, Path]:
    """cor-build --index of ``sessions`` into ``tmp_path/art`` and milvus, on 64-dim hashing
    vectors: the exit code and the artifact root."""
    root = tmp_path / "art"
    tsv = sessions_tsv(tmp_path / "s.tsv", sessions)
    index = ("--index", "--milvus-uri", milvus_uri, "--encoder", "hashing:64")
    return cor_build_tsv(tsv, root, *index, *flags), root


def test_cor_build_index_flag_then_serve(
    tmp_path: Path, milvus_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = [("a", ["red car", "red car price"]), ("b", ["blue sea", "blue sea fish"])]
    rc, root = build_indexed(tmp_path, milvus_uri, sessions, "--version", "v7")
    result = JobResult.model_validate_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and result.status == "succeeded" and result.metrics["index_s"] > 0
    index = MilvusQueryIndex(milvus_uri)
    assert index.current_version() == "v7"
    # The service finds the collection already built and only loads it.
    svc = CORService(
        root,
        index=index,
        encoder=HashingEncoder(64),
        config=RetrievalConfig(min_similarity=0.2),
        build_missing=False,
    )
    assert svc.refresh()
    assert [i.query for i in svc.retrieve("red cars", 3).items] == ["red car price"]
    index.close()


def test_encoder_mismatch_is_refused(
    tmp_path: Path, milvus_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = build_indexed(tmp_path, milvus_uri, [("a", ["x", "y"])])
    capsys.readouterr()
    from gqr_serving.cor import IndexMismatch

    svc = CORService(root, index=MilvusQueryIndex(milvus_uri), encoder=HashingEncoder(32))
    with pytest.raises(IndexMismatch, match="indexed with hashing:64"):
        svc.refresh()
