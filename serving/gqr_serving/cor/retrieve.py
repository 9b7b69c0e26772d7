"""``retrieve(q, k)``: co-occurring queries for q, direct successors first, then neighbours'.

Paper §3.3: the queries users search right after q (its successors Q_q) are the COR side
information. When q has fewer than ``min_cooccurring`` of them, the ``neighbours`` nearest
known queries (by the query encoder and the ANN index) lend theirs, weighted by similarity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from gqr_serving.cor.artifact import Successors
from gqr_serving.cor.cache import LRUCache
from gqr_serving.cor.encoders import QueryEncoder
from gqr_serving.cor.errors import QueryTooLong
from gqr_serving.cor.neighbours import NeighbourSearch
from gqr_serving.cor.normalize import dedup_key, normalize_query

Provenance = Literal["direct", "neighbour"]
MAX_K = 1000


@dataclass(frozen=True)
class RetrievalConfig:
    """How COR retrieves and ranks; defaults follow the paper's small-n, small-N_s setting."""

    k: int = 10
    """How many co-occurring queries to return by default."""
    min_cooccurring: int = 5
    """n: with fewer direct successors than this, neighbours are consulted."""
    neighbours: int = 10
    """N_s: how many nearest known queries lend their successors."""
    min_similarity: float = 0.5
    """Neighbours less similar than this (cosine) are ignored."""
    neighbour_weight: float = 0.5
    """A neighbour's successor weighs this much relative to a direct one, times similarity."""
    smoothing: float = 1.0
    """Added to a query's total count, so one observation is weaker evidence than fifty."""
    max_query_chars: int = 512
    """Longer queries raise :class:`QueryTooLong` (field ``query``)."""

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be in [1, {MAX_K}], got {self.k}")
        if self.min_cooccurring < 0 or self.neighbours < 0:
            raise ValueError("min_cooccurring and neighbours must be >= 0")
        if not 0.0 <= self.neighbour_weight <= 1.0:
            raise ValueError(f"neighbour_weight must be in [0, 1], got {self.neighbour_weight}")


@dataclass(frozen=True, slots=True)
class CORItem:
    """One co-occurring query, its score and where it came from."""

    query: str
    score: float
    provenance: Provenance
    count: int
    """Co-occurrence count behind it (direct count, or summed over lending neighbours)."""
    via: tuple[str, ...] = ()
    """The neighbour queries that lent it (empty for a direct successor)."""


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    """What ``retrieve`` returns: ranked items plus how they were found."""

    query: str
    normalized: str
    version: str
    items: tuple[CORItem, ...] = ()
    neighbours: tuple[tuple[str, float], ...] = ()
    used_index: bool = False
    notes: tuple[str, ...] = field(default=())
    cached: bool = False
    """Served from the result cache (an earlier index search of this version)."""


def side_info(result: RetrievalResult) -> list[str]:
    """The co-occurring queries for the prompt's COR section (``SideInfo.cooccurring``)."""
    return [item.query for item in result.items]


class CORRetriever:
    """Ranks co-occurring queries from an in-memory successor table and a neighbour index.

    With ``cache_size > 0``, results that needed the index (the ANN step) are kept in a
    bounded LRU keyed by (normalised query, k); the retriever serves one version only, so
    replacing it on a version switch drops its cache with it.
    """

    def __init__(
        self,
        successors: Successors,
        totals: dict[str, int],
        *,
        version: str = "",
        encoder: QueryEncoder | None = None,
        index: NeighbourSearch | None = None,
        config: RetrievalConfig | None = None,
        cache_size: int = 0,
    ) -> None:
        self.successors, self.totals, self.version = successors, totals, version
        self.encoder, self.index = encoder, index
        self.config = config or RetrievalConfig()
        self.cache: LRUCache[tuple[str, int], RetrievalResult] = LRUCache(cache_size)

    def retrieve(
        self, query: str, k: int | None = None, *, direct_only: bool = False
    ) -> RetrievalResult:
        """Top-k co-occurring queries for ``query``.

        An empty (or whitespace-only) query gives an empty result; a query over
        ``max_query_chars`` raises :class:`QueryTooLong`. With ``direct_only`` (or without an
        encoder and index) no neighbours are consulted: the gateway's degraded mode. A failing
        index raises :class:`CORUnavailable`.
        """
        nq, k = self._prepare(query, k)
        if not nq:
            return RetrievalResult(query, nq, self.version, notes=("empty query",))
        if direct_only or not self.needs_index(nq):
            return self._compute(query, nq, k, use_index=False)
        cached = self.cache.get((nq, k))
        if cached is not None:
            return replace(cached, query=query, cached=True)
        result = self._compute(query, nq, k, use_index=True)
        self.cache.put((nq, k), result)
        return result

    def warm(
        self,
        queries: Sequence[str],
        k: int | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 256,
        vectors: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Cache the answers of those ``queries`` that need the index, searched in batches
        (one index call per ``batch_size`` queries: far cheaper per query than one call each).

        ``queries`` come most important first; at most ``limit`` (and the cache's size) are
        warmed, and the most important end up the most recently used. ``vectors`` may hold
        already known vectors by normalised query (the index's stored ones); the others are
        encoded. Returns how many were cached; a failing index raises :class:`CORUnavailable`
        (what was cached stays).
        """
        k = self.config.k if k is None else k
        cap = self.cache.maxsize if limit is None else min(limit, self.cache.maxsize)
        if cap <= 0 or self.encoder is None or self.index is None:
            return 0
        todo: list[str] = []
        seen: set[str] = set()
        for query in queries:
            if len(query) > self.config.max_query_chars:
                continue
            nq = normalize_query(query)
            if nq and nq not in seen and self.needs_index(nq) and self.cache.get((nq, k)) is None:
                seen.add(nq)
                todo.append(nq)
                if len(todo) == cap:
                    break
        todo.reverse()  # least important first: the LRU evicts those first
        known = vectors or {}
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            vecs = np.zeros((len(chunk), self.encoder.dim), dtype=np.float32)
            new = [i for i, nq in enumerate(chunk) if nq not in known]
            if new:
                vecs[new] = self.encoder.encode([chunk[i] for i in new])
            for i, nq in enumerate(chunk):
                if nq in known:
                    vecs[i] = known[nq]
            rows = self.index.search(vecs, self.config.neighbours + 1)
            for nq, hits in zip(chunk, rows, strict=True):
                self.cache.put((nq, k), self._compute(nq, nq, k, use_index=True, hits=hits))
        return len(todo)

    def retrieve_from_memory(self, query: str, k: int | None = None) -> RetrievalResult | None:
        """What :meth:`retrieve` answers, if that takes no index search; else None.

        In memory only (the successor table and the result cache), so an event loop may call
        it directly; None means the ANN step is needed and not cached.
        """
        nq, k = self._prepare(query, k)
        if not nq:
            return RetrievalResult(query, nq, self.version, notes=("empty query",))
        if not self.needs_index(nq):
            return self._compute(query, nq, k, use_index=False)
        cached = self.cache.get((nq, k))
        return None if cached is None else replace(cached, query=query, cached=True)

    def needs_index(self, normalized: str) -> bool:
        """Whether a (normalised) query has fewer than ``min_cooccurring`` direct successors
        and an index is there to lend it neighbours'."""
        cfg = self.config
        return (
            len(self.successors.get(normalized, ())) < cfg.min_cooccurring
            and cfg.neighbours > 0
            and self.encoder is not None
            and self.index is not None
        )

    def _prepare(self, query: str, k: int | None) -> tuple[str, int]:
        cfg = self.config
        k = cfg.k if k is None else k
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be in [1, {MAX_K}], got {k}")
        if len(query) > cfg.max_query_chars:
            raise QueryTooLong(
                f"query is {len(query)} characters; the limit (max_query_chars) is "
                f"{cfg.max_query_chars}"
            )
        return normalize_query(query), k

    def _compute(
        self,
        query: str,
        nq: str,
        k: int,
        *,
        use_index: bool,
        hits: list[tuple[str, float]] | None = None,
    ) -> RetrievalResult:
        cfg = self.config
        scores: dict[str, _Acc] = {}
        direct = self.successors.get(nq, ())
        total = self.totals.get(nq, 0) + cfg.smoothing
        for nxt, count in direct:
            scores.setdefault(nxt, _Acc("direct")).add(count / total, count, None)
        found: list[tuple[str, float]] = []
        if use_index:
            if hits is None:
                assert self.encoder is not None and self.index is not None
                hits = self.index.search(self.encoder.encode([nq]), cfg.neighbours + 1)[0]
            found = [(p, s) for p, s in hits if p != nq and s >= cfg.min_similarity]
            found = found[: cfg.neighbours]
            for p, sim in found:
                p_total = self.totals.get(p, 0) + cfg.smoothing
                weight = cfg.neighbour_weight * sim / p_total
                for nxt, count in self.successors.get(p, ()):
                    scores.setdefault(nxt, _Acc("neighbour")).add(weight * count, count, p)
        items = _rank(nq, scores, k)
        return RetrievalResult(query, nq, self.version, items, tuple(found), use_index)


class _Acc:
    __slots__ = ("count", "provenance", "score", "via")

    def __init__(self, provenance: Provenance) -> None:
        self.provenance: Provenance = provenance
        self.score, self.count = 0.0, 0
        self.via: list[str] = []

    def add(self, score: float, count: int, via: str | None) -> None:
        self.score += score
        self.count += count
        if via is not None and self.provenance == "neighbour":
            self.via.append(via)


def _rank(nq: str, scores: dict[str, _Acc], k: int) -> tuple[CORItem, ...]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1].score, -kv[1].count, kv[0]))
    seen = {dedup_key(nq)}
    out: list[CORItem] = []
    for cand, acc in ranked:
        key = dedup_key(cand)
        if cand == nq or key in seen:
            continue
        seen.add(key)
        out.append(CORItem(cand, acc.score, acc.provenance, acc.count, tuple(acc.via)))
        if len(out) == k:
            break
    return tuple(out)
