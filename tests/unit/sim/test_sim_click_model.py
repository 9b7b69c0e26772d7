"""Each hidden effect moves the click probability in the stated direction."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from gqr_training.sim import ClickParams, Request, World


def _req(query: str, task: str = "suggestion") -> Request:
    n, comp = (1, "singleChoice") if task == "hint" else (3, "multiChoice")
    return Request(task, "s1", "u1", query, (), None, datetime(2025, 1, 1, tzinfo=UTC), n, comp)  # type: ignore[arg-type]


def _p(world: World, query: str, shown: list[str], k: int = 0) -> float:
    return world.true_click_probs(_req(query), shown)[k]


U = "pocono mountains"


def test_examination_decays_with_position(world: World) -> None:
    a, b, c = "pocono mountains hotels", "grand canyon weather", "lisbon tours"
    first = world.true_click_probs(_req(U), [a, b, c])[0]
    last = world.true_click_probs(_req(U), [b, c, a])[2]
    assert last < 0.6 * first


def test_near_copy_is_not_clicked(world: World) -> None:
    u = "pocono mountains hotels"
    copy = _p(world, u, ["about pocono mountains hotels"])
    follow_up = _p(world, u, ["pocono mountains hiking trails"])
    assert copy < 0.1 * follow_up


def test_specificity_pays_up_to_a_cap_then_hurts(world: World) -> None:
    mods = ["with kids", "in winter", "luxury"]
    lengths = [f"pocono mountains hotels {' '.join(mods[:k])}".strip() for k in range(4)]
    p = [_p(world, "pocono mountains", [q]) for q in ["pocono mountains with kids", *lengths]]
    bare_mod, aspect, one, two, three = p
    assert aspect < one  # more specific is better ...
    assert two < one and three < two  # ... up to the cap (2), then worse
    assert bare_mod < one


def test_redundancy_with_a_query_above_lowers_attractiveness(world: World) -> None:
    q = "pocono mountains hotels with kids"
    after_same_intent = _p(world, U, ["pocono mountains hotels", q], 1)
    after_other_intent = _p(world, U, ["pocono mountains weather", q], 1)
    assert after_same_intent < 0.5 * after_other_intent


def test_relatedness_ranks_same_topic_over_sibling_over_foreign(world: World) -> None:
    same = _p(world, U, ["pocono mountains hiking trails"])
    sibling = _p(world, U, ["grand canyon hiking trails"])
    foreign = _p(world, U, ["roth ira fees"])
    generic = _p(world, U, ["learn more"])
    assert same > sibling > foreign
    assert same > 3 * generic


def test_gibberish_is_penalised(world: World) -> None:
    assert _p(world, U, ["pocono mountains hotels zzq"]) < _p(world, U, ["pocono mountains hotels"])


def test_multi_choice_allows_several_clicks_single_choice_at_most_one(world: World) -> None:
    shown = ["pocono mountains hotels", "pocono mountains weather", "pocono mountains tours"]
    rng = random.Random(0)
    multi = _req(U)
    single = _req(U, "hint")
    single_list = ["pocono mountains hotels with kids"]
    multi_clicks = [world.show(multi, shown, rng) for _ in range(4000)]
    assert max(len(c) for c in multi_clicks) >= 2
    single_clicks = [world.show(single, single_list * 3, rng) for _ in range(4000)]
    assert max(len(c) for c in single_clicks) == 1
    rate = sum(bool(c) for c in single_clicks) / 4000
    assert rate == pytest.approx(world.true_list_ctr(single, single_list * 3), abs=0.02)
    empirical = sum(bool(c) for c in multi_clicks) / 4000
    assert empirical == pytest.approx(world.true_list_ctr(multi, shown), abs=0.02)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="attr_scale"):
        ClickParams(attr_scale=2.0)
    with pytest.raises(ValueError, match="spec_cap"):
        ClickParams(spec_cap=0)
