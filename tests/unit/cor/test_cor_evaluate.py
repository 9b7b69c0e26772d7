"""The next-query evaluation on synthetic sessions (fast encoder) and its clean skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gqr_serving.cor import HashingEncoder
from gqr_training.cor.evaluate import Judge, evaluate, loso_folds, main, session_pairs
from gqr_training.cor.extract import ExtractConfig, Session


def test_cor_beats_popularity_on_repeated_topics() -> None:
    topics = [["red car", "red car price", "red car dealer"], ["blue sea", "blue sea fish"]]
    sessions: list[Session] = [
        (f"{t}-{r}", [(None, q) for q in topic]) for t, topic in enumerate(topics) for r in range(3)
    ] + [("pop", [(None, "weather"), (None, "news")])] * 4
    enc = HashingEncoder(128)
    judge = Judge(enc, [q for _, ev in sessions for _, q in ev], threshold=0.99)
    res = evaluate(sessions, loso_folds(len(sessions)), lambda _: enc, judge)
    assert res["cor"]["hit@1"] > res["popular-successors"]["hit@1"]
    assert res["cor"]["mrr"] > res["popular-successors"]["mrr"]
    assert res["cor"]["pairs"] == sum(len(session_pairs(s, ExtractConfig())) for s in sessions)


def test_missing_data_is_a_clean_skip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trec", str(tmp_path / "absent.xml.gz")]) == 0
    captured = capsys.readouterr()
    assert "skipping COR evaluation" in captured.err
    assert "skipped" in json.loads(captured.out.strip().splitlines()[-1])
