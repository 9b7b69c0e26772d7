"""The gateway's torch-free COR encoder computes sentence-transformers' vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gqr_serving.cor.bert_numpy import NumpyBertEncoder, UnsupportedModelError
from gqr_serving.cor.encoders import SentenceTransformerEncoder, load_encoder, packaged_minilm_path

QUERIES = [
    "cheap flights to paris",
    "How To Fix A Leaking Tap?",
    "café crème brûlée recipe",
    "",
    "a",
    "python " * 400,  # past max_seq_length: truncated the same way
    "weather tomorrow in san francisco, ca 94103",
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1))


def test_packaged_minilm_matches_sentence_transformers() -> None:
    st = SentenceTransformerEncoder()
    nb = load_encoder("minilm", runtime="numpy")
    assert isinstance(nb, NumpyBertEncoder)
    # The same name: an index built by either is queried by the other.
    assert nb.name == st.name == "st:all-MiniLM-L6-v2" and nb.dim == st.dim == 384
    a, b = st.encode(QUERIES), nb.encode(QUERIES)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert _cosines(a, b).min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # One query at a time (the gateway's case) gives the batch's vector: padding is masked.
    for i, q in enumerate(QUERIES):
        np.testing.assert_allclose(nb.encode([q])[0], b[i], atol=1e-5)
    assert nb.encode([]).shape == (0, 384)


def _tiny_bert_folder(tmp_path: Path, pooling: str) -> Path:
    """A random 2-layer BERT saved by sentence-transformers itself, with the given pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel

    base = tmp_path / "base"
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(base)
    # The real vocabulary and tokenizer, so the text side is exercised too.
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (base / name).write_bytes((packaged_minilm_path() / name).read_bytes())
    transformer = Transformer(str(base), max_seq_length=16)
    model = SentenceTransformer(
        modules=[transformer, Pooling(32, pooling_mode=pooling)], device="cpu"
    )
    out = tmp_path / f"tiny-{pooling}"
    model.save(str(out))
    return out


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_a_saved_bert_folder_matches_with_its_pooling_and_length(
    tmp_path: Path, pooling: str
) -> None:
    folder = _tiny_bert_folder(tmp_path, pooling)
    st, nb = SentenceTransformerEncoder(folder), NumpyBertEncoder(folder)
    assert nb.name == st.name == f"st:tiny-{pooling}"
    assert _cosines(st.encode(QUERIES), nb.encode(QUERIES)).min() > 0.99999


def test_a_model_it_does_not_implement_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UnsupportedModelError, match=r"gpt.*model_type 'gpt2'.*only 'bert'"):
        NumpyBertEncoder(folder)
    with pytest.raises(ValueError, match="encoder runtime 'onnx': expected 'torch' or 'numpy'"):
        load_encoder("minilm", runtime="onnx")
