from __future__ import annotations

import math
from pathlib import Path

import pytest

from gqr_training.ctr.evaluate import (
    auc,
    diff_ctr,
    ece,
    evaluate,
    logloss,
    plot_reliability,
    time_slices,
)


def test_auc_and_logloss_known_values() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(auc([0, 0], [0.1, 0.2]))
    assert logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_diff_ctr_is_mean_relative_error_per_set() -> None:
    labels = [1, 0, 0, 0, 1, 1, 0, 0]
    probs = [0.5, 0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.25]
    groups = [0, 0, 0, 0, 1, 1, 1, 1]
    # set 0: predicted 0.125 vs observed 0.25 -> 0.5; set 1: 0.25 vs 0.5 -> 0.5
    assert diff_ctr(labels, probs, groups) == pytest.approx(0.5)


def test_ece_zero_when_calibrated_and_slices() -> None:
    labels = [1, 0, 0, 0] * 10
    assert ece(labels, [0.25] * 40) == pytest.approx(0.0)
    assert ece(labels, [0.75] * 40) == pytest.approx(0.5)
    assert time_slices(8, 4) == [0, 0, 1, 1, 2, 2, 3, 3]
    m = evaluate(labels, [0.25] * 40)
    assert m["mean_pred"] == pytest.approx(m["mean_label"])


def test_reliability_png(tmp_path: Path) -> None:
    labels = [1, 0, 0, 0] * 10
    path = plot_reliability({"model": (labels, [0.2, 0.3, 0.25, 0.25] * 10)}, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
