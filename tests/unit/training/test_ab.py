"""The demo's A/B test on the real simulated world: users are split between the arms, each
arm's lists are shown to them, and a truly better arm wins with a confidence interval that
says so."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from gqr_training.eval.ab import ab_test, split_by_user
from gqr_training.sim import World

DAY = date(2025, 1, 16)


def test_each_user_sees_one_arm_and_every_request_is_served() -> None:
    reqs = World(0).sample_requests(DAY, 600)
    split = split_by_user(reqs, ["stable", "canary"], seed=1)
    users = [{r.user_key for r in arm} for arm in split.values()]
    assert not users[0] & users[1]
    assert sorted(map(id, split["stable"] + split["canary"])) == sorted(map(id, reqs))
    assert min(len(arm) for arm in split.values()) > 200  # about half each


def test_the_oracle_arm_beats_a_copy_of_the_user_query() -> None:
    world = World(0)
    reqs = world.sample_requests(DAY, 1500)

    def copies(batch: Sequence[Any]) -> list[list[str]]:  # the world does not click near-copies
        return [[r.query] * r.n_queries for r in batch]

    def oracle(batch: Sequence[Any]) -> list[list[str]]:
        return [world.oracle_list(r) for r in batch]

    got = ab_test(world, reqs, {"stable": copies, "canary": oracle}, seed=0)
    stable, canary, lift = got["stable"], got["canary"], got["lift"]
    assert stable["impressions"] + canary["impressions"] == 1500
    assert canary["true_ctr"] > stable["true_ctr"]
    assert lift["absolute"] == canary["ctr"] - stable["ctr"] > 0
    lo, hi = lift["absolute_ci95"]
    assert 0 < lo < lift["absolute"] < hi and lift["ci_excludes_zero"]
