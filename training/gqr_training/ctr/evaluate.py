"""Offline metrics of a click predictor: AUC, logloss, the paper's diff_ctr, calibration ECE,
and a reliability diagram (PNG).

diff_ctr (paper eq. 9) measures how far the predicted CTR level is from the observed one:
over K test sets S_1..S_K (here: consecutive time slices of the held-out data, one per day
when the test spans several days),

    diff_ctr = 1/K * sum_j |mean_{i in S_j} p_i - mean_{i in S_j} y_i| / mean_{i in S_j} y_i

i.e. the mean relative error of the predicted mean CTR per set. Lower is better; it is the
quantity AEC (average estimated CTR) relies on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EPS = 1e-7


def logloss(labels: Sequence[int], probs: Sequence[float]) -> float:
    total = 0.0
    for y, p in zip(labels, probs, strict=True):
        p = min(max(p, EPS), 1 - EPS)
        total -= math.log(p) if y else math.log(1 - p)
    return total / max(1, len(labels))


def auc(labels: Sequence[int], probs: Sequence[float]) -> float:
    """ROC AUC; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(list(labels), list(probs)))


def diff_ctr(labels: Sequence[int], probs: Sequence[float], groups: Sequence[int]) -> float:
    """Paper eq. 9 over the sets named by ``groups`` (sets without clicks are skipped)."""
    sums: dict[int, list[float]] = {}
    for y, p, g in zip(labels, probs, groups, strict=True):
        s = sums.setdefault(g, [0.0, 0.0, 0.0])
        s[0] += p
        s[1] += y
        s[2] += 1
    errors = [abs(sp - sy) / sy for sp, sy, _ in sums.values() if sy > 0]
    return sum(errors) / len(errors) if errors else float("nan")


def time_slices(n: int, k: int) -> list[int]:
    """Set ids for ``n`` time-ordered items split into ``k`` consecutive equal slices."""
    k = max(1, min(k, n))
    return [min(k - 1, i * k // max(1, n)) for i in range(n)]


def reliability(
    labels: Sequence[int], probs: Sequence[float], bins: int = 15
) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, count) per equal-width probability bin (non-empty)."""
    acc = [[0.0, 0.0, 0] for _ in range(bins)]
    for y, p in zip(labels, probs, strict=True):
        b = min(bins - 1, int(p * bins))
        acc[b][0] += p
        acc[b][1] += y
        acc[b][2] += 1
    return [(sp / n, sy / n, int(n)) for sp, sy, n in acc if n]


def ece(labels: Sequence[int], probs: Sequence[float], bins: int = 15) -> float:
    """Expected calibration error: count-weighted |mean predicted - observed| over bins."""
    n = max(1, len(labels))
    return sum(c * abs(mp - obs) for mp, obs, c in reliability(labels, probs, bins)) / n


def evaluate(
    labels: Sequence[int], probs: Sequence[float], groups: Sequence[int] | None = None
) -> dict[str, float]:
    """All metrics at once. ``groups`` are the diff_ctr sets (default: 4 time slices)."""
    groups = groups if groups is not None else time_slices(len(labels), 4)
    n = max(1, len(labels))
    return {
        "auc": auc(labels, probs),
        "logloss": logloss(labels, probs),
        "diff_ctr": diff_ctr(labels, probs, groups),
        "ece": ece(labels, probs),
        "mean_pred": sum(probs) / n,
        "mean_label": sum(labels) / n,
        "n": float(len(labels)),
    }


def plot_reliability(
    curves: dict[str, tuple[Sequence[int], Sequence[float]]], path: Path, bins: int = 15
) -> Path:
    """Reliability diagram, one line per named predictor (e.g. model and oracle)."""
    from gqr_training.plots import figure

    with figure(path, (5, 5), dpi=100) as ax:
        top = 0.0
        for name, (labels, probs) in curves.items():
            # Bins with a handful of impressions are noise; ECE still counts them.
            pts: Any = [r for r in reliability(labels, probs, bins) if r[2] >= 30]
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            top = max(top, *xs, *ys) if xs else top
            ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece(labels, probs, bins):.4f})")
        top = min(1.0, top * 1.1 or 1.0)
        ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
        ax.set_xlabel("predicted click probability")
        ax.set_ylabel("observed click rate")
        ax.set_title("CTR predictor reliability")
        ax.legend(loc="upper left", fontsize=8)
    return path
