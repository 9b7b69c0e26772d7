"""Tokenizers for the CTR predictor: train a small WordPiece vocabulary on the logs' queries
(no hub needed), load a saved one, and cache token ids per query text."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int = 4000) -> Any:
    """A BERT-style (lower-cased WordPiece) fast tokenizer trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer  # tokenizers-backed since transformers 5

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    tok.train_from_iterator(texts, trainer=trainer)
    return BertTokenizer(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


class TokenCache:
    """Token ids (no special tokens) per text; queries repeat a lot in logs."""

    def __init__(self, tokenizer: Any, max_tokens: int, max_entries: int = 500_000) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.max_entries = max_entries
        self._cache: dict[str, list[int]] = {}

    def warm(self, texts: Iterable[str], batch: int = 4096) -> None:
        """Tokenize many texts in batched calls (much faster than one by one)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            ids = self.tokenizer(chunk, add_special_tokens=False)["input_ids"]
            for text, row in zip(chunk, ids, strict=True):
                self._store(text, row)

    def __call__(self, text: str) -> list[int]:
        got = self._cache.get(text)
        if got is None:
            got = self._store(text, self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return got

    def _store(self, text: str, ids: list[int]) -> list[int]:
        ids = list(ids[: self.max_tokens])
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[text] = ids
        return ids
