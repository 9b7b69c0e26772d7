"""The COR result cache across version switches, on a real milvus-lite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tests.integration.cor.conftest import ROWS_V1, ROWS_V2, make_version

from gqr_serving.cor import CORService, HashingEncoder, MilvusQueryIndex, RetrievalConfig

CFG = RetrievalConfig(k=5, min_similarity=0.2)  # min_cooccurring 5: all probes need the index
PROBE = "pocono mountain resort"  # unseen: its answer comes from neighbours only


class CountingEncoder(HashingEncoder):
    """Records every text it encodes."""

    def __init__(self) -> None:
        super().__init__(128)
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().encode(texts)


def _service(root: Path, uri: str, warm: int, encoder: HashingEncoder | None = None) -> CORService:
    return CORService(
        root,
        index=MilvusQueryIndex(uri),
        encoder=encoder or HashingEncoder(128),
        config=CFG,
        cache_size=100,
        warm_on_switch=warm,
    )


def test_switch_invalidates_the_cache(tmp_path: Path, milvus_uri: str) -> None:
    root = tmp_path / "art"
    make_version(root, "v1", ROWS_V1)
    svc = _service(root, milvus_uri, warm=0)
    assert svc.refresh()
    v1 = svc.retrieve(PROBE, 5)
    assert v1.version == "v1" and not v1.cached and "skytop lodge" in [i.query for i in v1.items]
    hit = svc.retrieve_from_memory(PROBE, 5)
    assert hit is not None and hit.cached and hit.items == v1.items

    make_version(root, "v2", ROWS_V2)
    assert svc.refresh()
    assert svc.retrieve_from_memory(PROBE, 5) is None  # the v1 answer is gone with v1
    v2 = svc.retrieve(PROBE, 5)
    assert v2.version == "v2" and not v2.cached
    assert "camelback lodge" in [i.query for i in v2.items]
    assert "skytop lodge" not in [i.query for i in v2.items]
    assert svc.index is not None
    svc.index.close()


def test_switch_warms_the_new_version_with_recent_and_sparse_queries(
    tmp_path: Path, milvus_uri: str
) -> None:
    root = tmp_path / "art"
    make_version(root, "v1", ROWS_V1)
    encoder = CountingEncoder()
    svc = _service(root, milvus_uri, warm=50, encoder=encoder)
    assert svc.refresh()
    # Loading warms the known queries with too few successors (all of them here), with the
    # vectors their collection stores: encoded once, to build it, not again to warm.
    known = svc.retrieve_from_memory("403b retirement plan", 5)
    assert known is not None and known.cached and known.version == "v1"
    assert sorted(encoder.seen) == sorted({r[0] for r in ROWS_V1})
    svc.retrieve(PROBE, 5)  # ... and serving caches an unseen one

    make_version(root, "v2", ROWS_V2)
    encoder.seen.clear()
    assert svc.refresh()
    assert sorted(encoder.seen) == sorted([*{r[0] for r in ROWS_V2}, PROBE])  # build + unseen
    warmed = svc.retrieve_from_memory(PROBE, 5)  # searched again, under v2, before the swap
    assert warmed is not None and warmed.cached and warmed.version == "v2"
    assert "camelback lodge" in [i.query for i in warmed.items]
    assert warmed.items == svc.retrieve(PROBE, 5).items
    glass = svc.retrieve_from_memory("glass blowing", 5)  # new in v2, sparse: warmed too
    assert glass is not None and glass.version == "v2"
    assert svc.index is not None
    svc.index.close()
