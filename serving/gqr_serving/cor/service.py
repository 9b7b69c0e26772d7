"""The CURRENT COR version: its artifact in memory plus its Milvus collection, answering
synchronously (the gateway's request path reaches it through
``gqr_serving.gateway.cor_budget.BudgetedCOR``, which adds the time budget).

``refresh()`` loads a newly published version completely (successor table, vector
collection built and loaded, alias switched) and only then swaps one reference, so a
concurrent ``retrieve`` answers wholly from the old version or wholly from the new one.

Direct successors are always served from memory; Milvus is searched only for queries with
fewer than ``min_cooccurring`` of them, and those results are cached per version (``cache_size``
entries, LRU). The cache belongs to the swapped reference, so the switch invalidates it. Before
swapping (in the refresh thread, off the request path) the new version's cache is warmed with
batched searches for up to ``warm_on_switch`` queries: first those the old version's cache
answered most recently (what users type now, unseen ones included), then the known queries
with too few successors, most frequent first. So neither a switch nor a start sends every
sparse query to Milvus one request at a time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from gqr_serving.cor.artifact import CORArtifact, load_artifact, read_current
from gqr_serving.cor.encoders import QueryEncoder
from gqr_serving.cor.errors import IndexMismatch
from gqr_serving.cor.index import MilvusQueryIndex, VersionSearch
from gqr_serving.cor.retrieve import CORRetriever, RetrievalConfig, RetrievalResult

log = logging.getLogger("gqr_serving.cor")


def index_artifact(
    index: MilvusQueryIndex,
    artifact: CORArtifact,
    encoder: QueryEncoder,
    *,
    batch_size: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Encode the artifact's known queries and build its version's collection (no switch)."""
    queries = artifact.queries
    vectors = encoder.encode(queries) if queries else None
    if vectors is None:
        import numpy as np

        vectors = np.zeros((0, encoder.dim), dtype=np.float32)
    return index.build(artifact.version, queries, vectors, batch_size=batch_size, progress=progress)


class CORService:
    """Serves ``retrieve`` from the published COR version; ``refresh`` picks up new ones."""

    def __init__(
        self,
        artifact_root: str | os.PathLike[str],
        *,
        index: MilvusQueryIndex | None = None,
        encoder: QueryEncoder | None = None,
        config: RetrievalConfig | None = None,
        build_missing: bool = True,
        keep_versions: int = 2,
        cache_size: int = 0,
        warm_on_switch: int = 0,
    ) -> None:
        """``index=None`` serves direct successors only. ``build_missing`` lets the service
        index a published version itself (the embedded milvus-lite case, where only the
        process holding the ``.db`` can write it). ``cache_size``: index-search results kept
        per version; ``warm_on_switch``: how many to search ahead when a version loads."""
        if (index is None) != (encoder is None):
            raise ValueError("pass both index and encoder, or neither (direct successors only)")
        self.artifact_root = artifact_root
        self.index, self.encoder = index, encoder
        self.config = config or RetrievalConfig()
        self.build_missing, self.keep_versions = build_missing, keep_versions
        self.cache_size, self.warm_on_switch = cache_size, warm_on_switch
        self._retriever: CORRetriever | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        r = self._retriever
        return None if r is None else r.version

    def refresh(self) -> bool:
        """Load CURRENT if it changed; True when a new version now serves."""
        with self._lock:
            current = read_current(self.artifact_root)
            if current is None or current == self.version:
                return False
            artifact = load_artifact(self.artifact_root, current)
            searcher = None
            if self.index is not None and self.encoder is not None:
                indexed_with = artifact.manifest.get("index", {}).get("encoder")
                if indexed_with and indexed_with != self.encoder.name:
                    raise IndexMismatch(
                        f"version {current} was indexed with {indexed_with}; "
                        f"this service encodes with {self.encoder.name}"
                    )
                if not self.index.has_version(current):
                    if not self.build_missing:
                        raise LookupError(f"version {current} has no Milvus collection yet")
                    index_artifact(self.index, artifact, self.encoder)
                searcher = self.index.searcher(current, self.encoder.dim)
                self.index.switch(current)
            retriever = CORRetriever(
                artifact.successors,
                artifact.totals,
                version=current,
                encoder=self.encoder,
                index=searcher,
                config=self.config,
                cache_size=self.cache_size,
            )
            if searcher is not None and self.cache_size and self.warm_on_switch:
                _warm(retriever, self._retriever, artifact, searcher, self.warm_on_switch)
            self._retriever = retriever  # the one atomic swap readers observe
            if self.index is not None:
                self.index.prune(self.keep_versions)
            return True

    def retrieve(
        self, query: str, k: int | None = None, *, direct_only: bool = False
    ) -> RetrievalResult:
        """See :meth:`CORRetriever.retrieve`; before any version is loaded: empty result."""
        retriever = self._retriever
        if retriever is None:
            return RetrievalResult(query, "", "", notes=("no COR version loaded",))
        return retriever.retrieve(query, k, direct_only=direct_only)

    def retrieve_from_memory(self, query: str, k: int | None = None) -> RetrievalResult | None:
        """See :meth:`CORRetriever.retrieve_from_memory` (no index search; None if needed)."""
        retriever = self._retriever
        if retriever is None:
            return RetrievalResult(query, "", "", notes=("no COR version loaded",))
        return retriever.retrieve_from_memory(query, k)


def _warm(
    new: CORRetriever,
    old: CORRetriever | None,
    artifact: CORArtifact,
    searcher: VersionSearch,
    limit: int,
) -> None:
    """Fill the new version's cache before it serves (best effort: a failure only logs).

    Known queries are searched with the vectors their collection stores (fetched, not
    encoded again: index_artifact builds it from ``artifact.queries``, in that order).
    """
    k = new.config.k
    recent = [] if old is None else [q for q, kk in old.cache.hottest(limit) if kk == k]
    n = new.config.min_cooccurring
    sparse = [q for q, succ in artifact.successors.items() if len(succ) < n]
    sparse.sort(key=lambda q: (-artifact.totals.get(q, 0), q))
    todo = [q for q in dict.fromkeys([*recent, *sparse]) if new.needs_index(q)][:limit]
    started = time.monotonic()
    try:
        row = {q: i for i, q in enumerate(artifact.queries)}
        stored = searcher.stored_vectors({row[q]: q for q in todo if q in row})
        warmed = new.warm(todo, k, limit=limit, vectors=stored)
    except Exception as exc:  # the switch must not depend on warming
        log.warning("COR cache warm-up failed: %s: %s", type(exc).__name__, exc)
        return
    log.info(
        "COR %s: cache warmed with %d queries (%d stored vectors) in %.1f s",
        new.version,
        warmed,
        len(stored),
        time.monotonic() - started,
    )
