"""A BERT sentence encoder in NumPy: the COR query encoder without torch.

The gateway embeds one query per request; pulling torch (about 2.5 GB with its CUDA wheels)
into its image for a six-layer MiniLM is the wrong trade. This module runs the same
computation as sentence-transformers for the models COR uses (a ``BertModel`` folder as
sentence-transformers saves it: ``config.json``, ``model.safetensors``, ``tokenizer.json``,
mean or CLS pooling in ``1_Pooling``) with NumPy matrix products, the ``tokenizers`` fast
tokenizer and ``safetensors``' NumPy loader. Its vectors match sentence-transformers' to float32
rounding (tests/unit/cor/test_bert_numpy.py holds it to a cosine of 0.99999 on real queries),
so an index built by a training Job with either implementation is queried correctly by the
other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class UnsupportedModelError(ValueError):
    """The folder holds a model this encoder does not implement (use sentence-transformers)."""


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), below float32's resolution near 1."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)))


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (not the tanh approximation)."""
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2)))))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return np.asarray((x - mean) / np.sqrt(var + eps) * w + b)


@dataclass(frozen=True)
class _Config:
    hidden: int
    heads: int
    layers: int
    eps: float
    pooling: str  # "mean" | "cls"
    max_len: int


def _json_int(file: Path, key: str) -> int | None:
    if not file.exists():
        return None
    value = json.loads(file.read_text()).get(key)
    return int(value) if isinstance(value, (int, float)) and 0 < value < 1_000_000 else None


def _read_config(path: Path) -> _Config:
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnsupportedModelError(f"{path}/config.json: {exc}") from exc
    if cfg.get("model_type") != "bert":
        raise UnsupportedModelError(
            f"{path}: model_type {cfg.get('model_type')!r}, only 'bert' is implemented"
        )
    if (
        cfg.get("hidden_act", "gelu") != "gelu"
        or cfg.get("position_embedding_type", "absolute") != "absolute"
    ):
        raise UnsupportedModelError(
            f"{path}: hidden_act {cfg.get('hidden_act')!r} / position_embedding_type "
            f"{cfg.get('position_embedding_type')!r}; only gelu with absolute positions is "
            "implemented"
        )
    pooling = "mean"
    pooling_file = path / "1_Pooling" / "config.json"
    if pooling_file.exists():
        pool = json.loads(pooling_file.read_text())
        # sentence-transformers >= 6 writes "pooling_mode": "mean"; earlier ones flag a mode.
        mode = pool.get("pooling_mode")
        modes = [mode] if isinstance(mode, str) else list(mode or [])
        modes += [
            k.removeprefix("pooling_mode_")
            for k, v in pool.items()
            if k.startswith("pooling_mode_") and v
        ]
        modes = ["mean" if m == "mean_tokens" else "cls" if m == "cls_token" else m for m in modes]
        if modes not in (["mean"], ["cls"]):
            raise UnsupportedModelError(
                f"{pooling_file}: pooling {modes}; only mean or CLS pooling is implemented"
            )
        pooling = modes[0]
    # The truncation length: sentence_bert_config.json's max_seq_length (sentence-transformers
    # < 6), else the tokenizer's model_max_length (>= 6), never past the position table.
    max_len = int(cfg.get("max_position_embeddings", 512))
    limits = [_json_int(path / "sentence_bert_config.json", "max_seq_length")]
    if limits[0] is None:
        limits.append(_json_int(path / "tokenizer_config.json", "model_max_length"))
    max_len = min([max_len, *(n for n in limits if n)])
    return _Config(
        hidden=int(cfg["hidden_size"]),
        heads=int(cfg["num_attention_heads"]),
        layers=int(cfg["num_hidden_layers"]),
        eps=float(cfg.get("layer_norm_eps", 1e-12)),
        pooling=pooling,
        max_len=max_len,
    )


class NumpyBertEncoder:
    """A sentence-transformers BERT folder run in NumPy; the :class:`QueryEncoder` protocol.

    Its ``name`` is the model's (``st:<folder>``), not the implementation's: COR indexes record
    the encoder that built them, and this one computes the same vectors as
    :class:`~gqr_serving.cor.encoders.SentenceTransformerEncoder`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, batch_size: int = 64, name: str | None = None
    ) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.cfg = _read_config(self.path)
        weights_file = self.path / "model.safetensors"
        tokenizer_file = self.path / "tokenizer.json"
        for needed in (weights_file, tokenizer_file):
            if not needed.exists():
                raise UnsupportedModelError(
                    f"{self.path}: no {needed.name} (needed by the NumPy encoder)"
                )
        raw = load_file(str(weights_file))
        prefix = "bert." if any(k.startswith("bert.") for k in raw) else ""
        self._w = {
            k[len(prefix) :]: v.astype(np.float32) for k, v in raw.items() if k.startswith(prefix)
        }
        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=self.cfg.max_len)
        self.batch_size = batch_size
        self._name = name or f"st:{self.path.name}"
        self._layers = [self._layer_weights(i) for i in range(self.cfg.layers)]

    def _layer_weights(self, i: int) -> dict[str, np.ndarray]:
        p = f"encoder.layer.{i}."
        w = self._w
        return {
            # Q, K, V in one product: (hidden, 3 * hidden).
            "qkv": np.concatenate(
                [w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
            ),
            "qkv_b": np.concatenate(
                [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
            ),
            "ao": w[p + "attention.output.dense.weight"].T,
            "ao_b": w[p + "attention.output.dense.bias"],
            "ln1_w": w[p + "attention.output.LayerNorm.weight"],
            "ln1_b": w[p + "attention.output.LayerNorm.bias"],
            "up": w[p + "intermediate.dense.weight"].T,
            "up_b": w[p + "intermediate.dense.bias"],
            "down": w[p + "output.dense.weight"].T,
            "down_b": w[p + "output.dense.bias"],
            "ln2_w": w[p + "output.LayerNorm.weight"],
            "ln2_b": w[p + "output.LayerNorm.bias"],
        }

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self.cfg.hidden

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cfg, w = self.cfg, self._w
        b, n = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.eps
        )
        h, d = cfg.heads, cfg.hidden // cfg.heads
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(
            np.float32
        )
        scale = np.float32(1 / np.sqrt(d))
        for lw in self._layers:
            qkv = x @ lw["qkv"] + lw["qkv_b"]  # (b, n, 3 * hidden)
            q, k, v = (
                qkv[..., i * cfg.hidden : (i + 1) * cfg.hidden]
                .reshape(b, n, h, d)
                .transpose(0, 2, 1, 3)
                for i in range(3)
            )
            scores = q @ k.transpose(0, 1, 3, 2) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, cfg.hidden)
            x = _layer_norm(ctx @ lw["ao"] + lw["ao_b"] + x, lw["ln1_w"], lw["ln1_b"], cfg.eps)
            up = _gelu(x @ lw["up"] + lw["up_b"])
            x = _layer_norm(up @ lw["down"] + lw["down_b"] + x, lw["ln2_w"], lw["ln2_b"], cfg.eps)
        if cfg.pooling == "cls":
            return np.asarray(x[:, 0], dtype=np.float32)
        m = mask[..., None].astype(np.float32)
        return np.asarray((x * m).sum(1) / np.maximum(m.sum(1), 1e-9), dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tok.encode_batch(list(texts))
        # Similar lengths together, so a batch pads little.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                seq = encodings[i].ids
                ids[r, : len(seq)] = seq
                mask[r, : len(seq)] = 1
            out[rows] = self._forward(ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
