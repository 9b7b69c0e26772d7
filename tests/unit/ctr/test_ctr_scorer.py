from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gqr_training.ctr.calibration import correct_probability
from gqr_training.ctr.model import CTRConfig
from gqr_training.ctr.scorer import CTRScorer, ScoringInputError


@pytest.fixture(scope="module")
def scorer(tiny_artifact: Path) -> CTRScorer:
    return CTRScorer.load(tiny_artifact)


def test_artifact_layout(tiny_artifact: Path) -> None:
    for name in (
        "model.safetensors",
        "ctr_config.json",
        "metrics.json",
        "training.json",
        "reliability.png",
        "tokenizer/tokenizer.json",
    ):
        assert (tiny_artifact / name).is_file(), name
    conf = CTRConfig.load(tiny_artifact)
    assert (conf.backbone, conf.variant, conf.max_positions) == ("bert", "ctx", 4)
    training = json.loads((tiny_artifact / "training.json").read_text())
    assert training["window_start"].startswith("2025-03-01")
    assert training["held_out_day"] == "2025-03-03"
    assert {"auc", "logloss", "diff_ctr", "ece"} <= set(
        json.loads((tiny_artifact / "metrics.json").read_text())
    )


def test_score_batch_matches_single_and_rewards(scorer: CTRScorer) -> None:
    pairs = [
        ("paris price", ["paris tips", "paris history"]),
        ("yoga tips", ["yoga price", "tokyo weather", "yoga reviews"]),
    ]
    batched = scorer.score_batch(pairs)
    for (user, queries), probs in zip(pairs, batched, strict=True):
        single = scorer.score(user, queries)
        assert len(single) == len(queries)
        assert all(0.0 < p < 1.0 for p in single)
        assert single == pytest.approx(probs, abs=1e-6)
    p = batched[1]
    assert scorer.list_reward(*pairs[1], component="multiChoice") == pytest.approx(
        1 - math.prod(1 - x for x in p), abs=1e-6
    )
    assert scorer.list_reward_batch(pairs, "singleChoice")[1] == pytest.approx(sum(p), abs=1e-6)


def test_ctx_score_depends_on_the_queries_above(scorer: CTRScorer) -> None:
    a = scorer.score("paris price", ["paris tips", "paris history"])[1]
    b = scorer.score("paris price", ["tokyo weather", "paris history"])[1]
    assert a != b


def test_negative_sampling_correction_is_applied(tiny_artifact: Path) -> None:
    scorer = CTRScorer.load(tiny_artifact)
    trained_at = scorer.model.config.negative_sampling_rate  # ctr-train's default: 0.1
    served = scorer.score("paris price", ["paris tips"])[0]
    scorer.model.config.negative_sampling_rate = 1.0  # no correction: the model's own output
    raw = scorer.score("paris price", ["paris tips"])[0]
    assert served == pytest.approx(correct_probability(raw, trained_at), rel=1e-5)
    scorer.model.config.negative_sampling_rate = 0.25
    assert scorer.score("paris price", ["paris tips"])[0] == pytest.approx(
        correct_probability(raw, 0.25), rel=1e-5
    )


@pytest.mark.parametrize(
    ("query", "queries", "field"),
    [
        ("q", [], "queries"),
        ("q", ["a"] * 5, "queries"),
        ("x" * 10_000, ["a"], "query"),
        ("q", ["a", "\ud800"], "queries[1]"),
        ("q", ["a", ""], "queries[1]"),
        (3, ["a"], "query"),
        ("q", "a b", "queries"),
    ],
)
def test_bad_input_names_the_field(
    scorer: CTRScorer, query: object, queries: object, field: str
) -> None:
    with pytest.raises(ScoringInputError) as err:
        scorer.score(query, queries)  # type: ignore[arg-type]
    assert err.value.field == field
