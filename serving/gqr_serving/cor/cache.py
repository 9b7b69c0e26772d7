"""A bounded, thread-safe LRU of COR retrieval results (one per served COR version).

Only results that needed the vector index (the ANN step) are cached: the others come from the
in-memory successor table in microseconds. Each :class:`~gqr_serving.cor.retrieve.CORRetriever`
owns its cache and a retriever serves exactly one version, so the atomic version switch
(``CORService.refresh`` swapping the retriever) is also the cache's invalidation: a result of
the old version can never be served under the new one, and entries keyed by
(normalised query, k) of a given version never go stale within it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries, least recently used evicted first; ``maxsize=0`` is off."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self.maxsize == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def hottest(self, n: int) -> list[K]:
        """Up to ``n`` keys, most recently used first (what to warm a successor cache with)."""
        with self._lock:
            keys = list(self._data)
        return keys[::-1][: max(0, n)]

    def __len__(self) -> int:
        return len(self._data)
