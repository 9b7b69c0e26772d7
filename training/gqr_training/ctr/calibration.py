"""Undo negative down-sampling so predicted click probabilities stay calibrated.

Training on all positives and a share ``w`` of the negatives multiplies the odds by ``1/w``;
the corrected probability is p' = p / (p + (1 - p) / w), i.e. logit' = logit + log(w).
AEC (average estimated CTR) depends on calibrated p, so the scorer always applies this.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def correct_probability(p: float, rate: float) -> float:
    """p' = p / (p + (1 - p) / rate) for a negative sampling rate ``rate`` in (0, 1]."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"negative sampling rate {rate}: expected a value in (0, 1]")
    return p / (p + (1.0 - p) / rate)


def logit_offset(rate: float) -> float:
    """The same correction on the logit: add log(rate)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"negative sampling rate {rate}: expected a value in (0, 1]")
    return math.log(rate)


def downsample_negatives(
    items: Sequence[T], labels: Sequence[int], rate: float, seed: int
) -> tuple[list[T], list[int]]:
    """Keep every positive and each negative with probability ``rate`` (seeded)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"negative sampling rate {rate}: expected a value in (0, 1]")
    rng = random.Random(seed)
    kept: list[T] = []
    kept_labels: list[int] = []
    for item, y in zip(items, labels, strict=True):
        if y or rate >= 1.0 or rng.random() < rate:
            kept.append(item)
            kept_labels.append(y)
    return kept, kept_labels
