from __future__ import annotations

import math
import random

import pytest

from gqr_training.ctr.calibration import (
    correct_probability,
    downsample_negatives,
    logit_offset,
)


def test_correction_formula_and_logit_form_agree() -> None:
    for p in (0.01, 0.2, 0.5, 0.9):
        for w in (0.05, 0.3, 1.0):
            logit = math.log(p / (1 - p)) + logit_offset(w)
            assert correct_probability(p, w) == pytest.approx(1 / (1 + math.exp(-logit)))
    assert correct_probability(0.3, 1.0) == pytest.approx(0.3)


def test_downsampling_then_correction_recovers_the_true_rate() -> None:
    rng = random.Random(0)
    groups = {"rare": 0.02, "common": 0.15}
    items, labels = [], []
    for name, rate in groups.items():
        for _ in range(100_000):
            items.append(name)
            labels.append(int(rng.random() < rate))
    w = 0.1
    kept, kept_labels = downsample_negatives(items, labels, w, seed=1)
    assert len(kept) < len(items) * 0.3
    for name, true_rate in groups.items():
        ys = [y for i, y in zip(kept, kept_labels, strict=True) if i == name]
        biased = sum(ys) / len(ys)  # what a model fit on the sample would predict
        assert biased > 2 * true_rate
        assert correct_probability(biased, w) == pytest.approx(true_rate, rel=0.08)


def test_rates_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="expected a value in"):
        correct_probability(0.5, 0.0)
    with pytest.raises(ValueError, match="expected a value in"):
        downsample_negatives([1], [0], 1.5, seed=0)
