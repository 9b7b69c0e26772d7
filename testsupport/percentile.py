"""The percentile the benchmarks print."""

from __future__ import annotations

from collections.abc import Iterable


def pct(xs: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs`` by nearest rank: the sorted value at index
    ``int(q * n)``, the largest for q = 1; NaN when there are none."""
    ordered = sorted(xs)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
