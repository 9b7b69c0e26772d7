"""Which DPO iteration a run hands on (the model the canary will serve)."""

from __future__ import annotations

from gqr_training.align.iterate import selected_iteration


def its(*aec: float) -> list[dict[str, float]]:
    return [{"aec": a} for a in aec]


def test_the_round_that_gained_less_than_delta_is_not_selected() -> None:
    # Measured in the demo: iteration 2 had the best AEC by +0.0037 (< delta 0.005) while its
    # true CTR fell; the run now hands on iteration 1.
    assert selected_iteration(its(0.1289, 0.1649, 0.1686), 0.005) == 1
    assert selected_iteration(its(0.12, 0.13, 0.14, 0.15), 0.005) == 3  # every round cleared delta
    assert selected_iteration(its(0.12, 0.122), 0.005) == 0  # the first round was not worth it
    assert selected_iteration(its(0.12, 0.16, 0.11), 0.005) == 1
    assert selected_iteration(its(0.12), 0.005) == 0
    assert selected_iteration(its(0.12, 0.11, 0.10), -1.0) == 2  # delta < 0: always the last
