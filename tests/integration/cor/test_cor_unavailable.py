"""Milvus unreachable -> CORUnavailable; the direct-successor path keeps working."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from tests.integration.cor.conftest import ROWS_V1, make_version

from gqr_serving.cor import (
    CORRetriever,
    CORService,
    CORUnavailable,
    HashingEncoder,
    MilvusQueryIndex,
    load_artifact,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_closed_port_raises_cor_unavailable(tmp_path: Path) -> None:
    index = MilvusQueryIndex(f"http://127.0.0.1:{_closed_port()}", timeout=2.0)
    with pytest.raises(CORUnavailable, match="failed to"):
        index.search("any", np.zeros((1, 8), dtype=np.float32), 3)
    root = tmp_path / "art"
    make_version(root, "v1", ROWS_V1)
    svc = CORService(root, index=index, encoder=HashingEncoder(64))
    with pytest.raises(CORUnavailable):
        svc.refresh()
    assert svc.version is None  # nothing half-loaded


def test_index_failing_mid_service_raises_and_direct_only_still_answers(
    tmp_path: Path, milvus_uri: str
) -> None:
    root = tmp_path / "art"
    make_version(root, "v1", ROWS_V1)
    art = load_artifact(root)
    dead = MilvusQueryIndex(f"http://127.0.0.1:{_closed_port()}", timeout=2.0)
    retriever = CORRetriever(
        art.successors,
        art.totals,
        version="v1",
        encoder=HashingEncoder(64),
        index=_DeadSearch(dead),
    )
    with pytest.raises(CORUnavailable):
        retriever.retrieve("unknown query")
    direct = retriever.retrieve("pocono mountains", direct_only=True)
    assert [i.query for i in direct.items] == ["pocono mountains hotels"]


class _DeadSearch:
    """Searches a named collection on an unreachable server (the real client, no fake)."""

    def __init__(self, index: MilvusQueryIndex) -> None:
        self.index = index

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        return self.index.search("gqr_cor__v1", vectors, k)
