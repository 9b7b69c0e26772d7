"""Nearest-known-query search: the protocol, and an exact in-memory implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

Neighbours = list[list[tuple[str, float]]]
"""Per query vector: (known query, cosine similarity), most similar first."""


class NeighbourSearch(Protocol):
    """Finds the known queries nearest to some query vectors."""

    def search(self, vectors: np.ndarray, k: int) -> Neighbours: ...


class ExactNeighbourIndex:
    """Brute-force cosine search over a small in-memory matrix (evaluation, small corpora).

    Exact, so it is also the yardstick the ANN indexes are measured against.
    """

    def __init__(self, queries: Sequence[str], vectors: np.ndarray) -> None:
        if len(queries) != len(vectors):
            raise ValueError(f"{len(queries)} queries but {len(vectors)} vectors")
        self.queries = list(queries)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, vectors: np.ndarray, k: int) -> Neighbours:
        if not self.queries or k <= 0:
            return [[] for _ in range(len(vectors))]
        sims = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        k = min(k, len(self.queries))
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out: Neighbours = []
        for row, idx in enumerate(top):
            order = idx[np.argsort(-sims[row, idx], kind="stable")]
            out.append([(self.queries[i], float(sims[row, i])) for i in order])
        return out
