"""A COR retriever over given transitions, its neighbour index exact (a uniquely named module,
imported directly by the retrieval and cache tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gqr_serving.cor import CORRetriever, ExactNeighbourIndex, HashingEncoder, RetrievalConfig
from gqr_serving.cor.artifact import successors_from_columns


def exact_retriever(
    rows: Sequence[tuple[str, str, int]], config: RetrievalConfig, **kwargs: Any
) -> CORRetriever:
    """The successors of ``rows`` (query, next query, count); neighbours found exactly among
    the known queries on 256-dim hashing vectors; ``kwargs`` go to ``CORRetriever``."""
    succ, totals = successors_from_columns(*map(list, zip(*rows, strict=True)))
    enc = HashingEncoder(256)
    known = sorted(succ)
    index = ExactNeighbourIndex(known, enc.encode(known))
    return CORRetriever(
        succ, totals, version="v1", encoder=enc, index=index, config=config, **kwargs
    )
