"""SimCSE fine-tuning of the COR query encoder, and whether it helps next-query retrieval.

Unsupervised: each query is its own positive (two dropout-noised passes), other queries in
the batch are negatives. Supervised: (q, q_next) pairs from sessions are the positives.
Both use sentence-transformers' trainer with MultipleNegativesRankingLoss.

    # k-fold comparison on TREC Session 2012 (the encoder is tuned on training folds only):
    python -m gqr_training.cor.simcse --mode supervised --evaluate --folds 5
    # tune on all sessions of a source and save a model folder for --encoder:
    python -m gqr_training.cor.simcse --mode unsupervised --save models/cor-simcse
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gqr_serving.cor.encoders import QueryEncoder, SentenceTransformerEncoder
from gqr_training.cliconfig import ConfigParser, at_least, validate, within
from gqr_training.cor.evaluate import DEFAULT_TREC
from gqr_training.cor.extract import ExtractConfig, Session, segments

MODES = ("unsupervised", "supervised")


def training_texts(
    sessions: Sequence[Session], mode: str, config: ExtractConfig | None = None
) -> tuple[list[str], list[str]]:
    """(anchors, positives): each distinct query twice, or each distinct (q, q_next) pair."""
    cfg = config or ExtractConfig()
    queries: dict[str, None] = {}
    pairs: dict[tuple[str, str], None] = {}
    for _, events in sessions:
        for seg in segments(events, cfg.max_gap_s):
            queries.update(dict.fromkeys(seg))
            pairs.update(dict.fromkeys((a, b) for a, b in itertools.pairwise(seg) if a != b))
    if mode == "unsupervised":
        return list(queries), list(queries)
    if mode == "supervised":
        return [a for a, _ in pairs], [b for _, b in pairs]
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def fine_tune(
    anchors: list[str],
    positives: list[str],
    out_dir: Path,
    *,
    base: str | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    seed: int = 0,
) -> SentenceTransformerEncoder:
    """Tune ``base`` (default: packaged MiniLM) on the pairs; save to ``out_dir``."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    encoder = SentenceTransformerEncoder(base)
    model = encoder.model
    data = Dataset.from_dict({"anchor": anchors, "positive": positives})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=0.1,
        seed=seed,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        # Unsupervised SimCSE: identical texts in one batch would be false negatives.
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    model.save(str(out_dir))
    return SentenceTransformerEncoder(out_dir)


def compare(
    sessions: list[Session], mode: str, folds: int, epochs: int, hit_similarity: float
) -> dict[str, Any]:
    """k-fold: COR with the base encoder vs with one tuned on each fold's training sessions."""
    from gqr_serving.cor.encoders import load_encoder
    from gqr_training.cor.evaluate import CachedEncoder, Judge, evaluate, kfold

    base = load_encoder("minilm")
    cfg = ExtractConfig()
    every = [q for s in sessions for seg in segments(s[1], cfg.max_gap_s) for q in seg]
    judge = Judge(base, every, hit_similarity)  # the judge stays the base model
    plan = kfold(len(sessions), folds)
    cached = CachedEncoder(base)
    results = {"base": evaluate(sessions, plan, lambda _: cached, judge)["cor"]}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(folds))

        def tuned(train: list[Session]) -> QueryEncoder:
            anchors, positives = training_texts(train, mode, cfg)
            out = Path(tmp) / f"fold{next(counter)}"
            return CachedEncoder(fine_tune(anchors, positives, out, epochs=epochs))

        results[f"simcse-{mode}"] = evaluate(sessions, plan, tuned, judge)["cor"]
    return {"protocol": f"{folds}-fold", "mode": mode, "epochs": epochs, "results": results}


@dataclass(kw_only=True)
class SimCSEConfig:
    """What SimCSE fine-tuning is told: the data, the mode, and evaluate or save."""

    trec: Path = field(default=DEFAULT_TREC, metadata={"help": "TREC Session XML(.gz)."})
    mode: str = field(
        default="supervised",
        metadata={
            "help": "Positives: the query itself (unsupervised) or its successor (supervised).",
            "choices": MODES,
        },
    )
    epochs: int = field(
        default=1, metadata={"help": "Training epochs (1).", "rule": at_least(1, "a whole number")}
    )
    evaluate: bool = field(default=False, metadata={"help": "k-fold base vs tuned comparison."})
    folds: int = field(
        default=5,
        metadata={"help": "Folds of --evaluate (5).", "rule": at_least(2, "a whole number")},
    )
    hit_similarity: float = field(
        default=0.8, metadata={"help": "Judge cosine (0.8).", "rule": within(0, 1, "a cosine")}
    )
    save: Path | None = field(
        default=None, metadata={"help": "Tune on all sessions and save the model here."}
    )

    def __post_init__(self) -> None:
        validate(self)


def make_parser() -> ConfigParser[SimCSEConfig]:
    return ConfigParser(SimCSEConfig, description="SimCSE fine-tuning of the COR query encoder.")


def main(argv: list[str] | None = None) -> int:
    from gqr_training.cor.sources import trec_sessions_unless_missing

    args = make_parser().parse_config(argv)
    sessions = trec_sessions_unless_missing(args.trec, "SimCSE")
    if sessions is None:
        return 0
    report: dict[str, Any] = {"data": str(args.trec)}
    if args.evaluate:
        report |= compare(sessions, args.mode, args.folds, args.epochs, args.hit_similarity)
    if args.save:
        anchors, positives = training_texts(sessions, args.mode)
        fine_tune(anchors, positives, args.save, epochs=args.epochs)
        report["saved"] = str(args.save)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
