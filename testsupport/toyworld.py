"""A toy recommendation world for the alignment tests and benchmarks: topics x aspects, an
annotator that picks aspects at random, and a known scorer that likes some aspects (no
simulator needed); SFT rows of its requests and tiny LMs trained on them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gqr_serving.prompt import PromptRequest, SideInfo, load_preset
from gqr_training.align.scoring import ListScorer, from_prob_fn

TOPICS = ["green tea", "roth ira", "sourdough bread", "gre test", "ryder cup", "banff park"]
GOOD = ["prices", "reviews", "benefits"]
BAD = ["history", "overview", "facts", "meaning", "origin"]
PRESET = load_preset("suggestion")


def requests(n: int, seed: int = 0) -> list[PromptRequest]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        out.append(
            PromptRequest(
                task="suggestion",
                query=topic,
                side_info=SideInfo(ai_response=f"{topic} is a thing people ask about."),
            )
        )
    return out


def annotate(req: PromptRequest, rng: random.Random) -> list[str]:
    return [f"{req.query} {a}" for a in rng.sample(GOOD + BAD, 3)]


def probs(user: str, queries: Sequence[str]) -> list[float]:
    out = []
    for k, q in enumerate(queries):
        good = any(q.endswith(" " + a) for a in GOOD) and q.startswith(user)
        out.append((0.4 if good else 0.05) / (k + 1))
    return out


class PoolEngine:
    """A stand-in generation engine: samples next queries uniformly from the text's topic x
    ``aspects`` (default: the good and bad ones); whole responses of 3 of them."""

    def __init__(self, seed: int = 0, aspects: Sequence[str] = ()) -> None:
        self.rng = random.Random(seed)
        self.aspects = list(aspects) or GOOD + BAD

    def complete(
        self,
        texts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop_at_sep: bool,
    ) -> list[list[str]]:
        out = []
        for text in texts:
            topic = text.split("<query>\n", 1)[1].split("\n", 1)[0]
            qs = [f"{topic} {a}" for a in self.aspects]
            if stop_at_sep:
                out.append([self.rng.choice(qs) + " <SEP>" for _ in range(n)])
            else:
                out.append([self.response(qs) for _ in range(n)])
        return out

    def response(self, qs: list[str]) -> str:
        """A whole response: 3 of the queries."""
        return " <SEP> ".join(self.rng.sample(qs, 3))


known_scorer: ListScorer = from_prob_fn(probs)
"""The list reward of :func:`probs` (0 for an empty list): what beam search should maximise."""


def make_scorer() -> Any:
    """Factory for ``dpo-iterate --ctr py:...``."""
    return known_scorer


def sft_rows(n: int = 240, seed: int = 0) -> list[dict[str, str]]:
    from gqr_training.align.data import sft_examples

    rng = random.Random(seed)
    reqs = requests(n, seed)
    return sft_examples(PRESET, reqs, [annotate(r, rng) for r in reqs], augment=0)


def tiny_model(rows: list[dict[str, str]], hidden: int = 48) -> tuple[Any, Any]:
    from gqr_training.align import tinylm

    tok = tinylm.tokenizer_for_rows(rows)
    cfg = tinylm.TinyLMConfig(hidden=hidden, layers=2, heads=2, intermediate=96)
    return tinylm.build_model(tok, cfg), tok


def trained_tiny_model(out: Path, epochs: float = 6.0) -> tuple[Any, Any]:
    """A tiny LM that has learned the output format of the toy world (a few seconds)."""
    from gqr_training.align.sft import SFTOptions, train_sft

    rows = sft_rows()
    model, tok = tiny_model(rows)
    opts = SFTOptions(epochs=epochs, lr=3e-3, batch_size=16, progress=False)
    model, _ = train_sft(model, tok, rows, out / "sft-trainer", opts)
    return model, tok


def dpo_inputs(d: Path, n_train: int, n_test: int) -> dict[str, Path]:
    """``dpo-iterate``'s inputs in ``d``: a tiny LM that knows the output format (``sft``), and
    the training and test prompts of the toy world as JSON Lines (``train``, ``test``)."""
    import torch

    from gqr_training.align import tinylm
    from gqr_training.align.data import request_row, write_jsonl

    torch.manual_seed(0)
    model, tok = trained_tiny_model(d, epochs=4.0)
    tinylm.save(model, tok, d / "sft")
    write_jsonl(d / "train.jsonl", (request_row(r) for r in requests(n_train, seed=1)))
    write_jsonl(d / "test.jsonl", (request_row(r) for r in requests(n_test, seed=2)))
    return {"model": d / "sft", "train": d / "train.jsonl", "test": d / "test.jsonl", "dir": d}
