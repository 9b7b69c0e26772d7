"""The world is reproducible, its default CTRs look like a real product's, and the oracle is a
ceiling."""

from __future__ import annotations

import statistics as stats
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gqr_training.sim import (
    AnnotatorPolicy,
    CooccurrencePolicy,
    OraclePolicy,
    Request,
    World,
)
from gqr_training.sim.universe import tokenize

DAY = date(2025, 3, 1)  # the day of the shared `requests` fixture


def _mean_ctr(world: World, requests: list[Request], policy: object) -> float:
    assert callable(policy)
    return stats.fmean(world.true_list_ctr(r, policy(r)) for r in requests)


def _cqr(world: World) -> CooccurrencePolicy:
    cqr = CooccurrencePolicy()
    for d in range(1, 8):
        cqr.observe(world.sample_requests(DAY - timedelta(days=d), 3000))
    return cqr


def test_same_seed_same_world_different_seed_different_world() -> None:
    a, b, c = World(5), World(5), World(6)
    day = date(2025, 1, 2)
    assert a.sample_requests(day, 100) == b.sample_requests(day, 100)
    assert a.sample_requests(day, 100) != c.sample_requests(day, 100)
    assert a.universe.aspect_pop == b.universe.aspect_pop != c.universe.aspect_pop
    ann_a, ann_b = AnnotatorPolicy(a.universe, seed=1), AnnotatorPolicy(b.universe, seed=1)
    reqs = a.sample_requests(day, 50)
    assert [ann_a(r) for r in reqs] == [ann_b(r) for r in reqs]


def test_requests_are_sessions_in_time_order(requests: list[Request]) -> None:
    assert len(requests) == 400
    assert [r.ts for r in requests] == sorted(r.ts for r in requests)
    follow_ups = [r for r in requests if r.history]
    assert len(follow_ups) > 100  # multi-turn sessions
    assert all(r.ai_response for r in requests)
    assert all(2 <= len(r.query.split()) <= 8 for r in requests)


def test_vocabulary_is_small_and_parse_recovers_the_structure(world: World) -> None:
    uni = world.universe
    assert 400 <= len(uni.vocabulary) <= 3000
    p = uni.parse("Pocono Mountains hotels, with kids!")
    assert [uni.entities[e].phrase for e in p.entities] == ["pocono mountains"]
    assert p.aspects == {"hotels"} and p.modifiers == {"with kids"} and p.n_unknown == 0
    assert uni.parse("pocono mountains zorblax").n_unknown == 1
    assert tokenize('"designer" dogs') == ("designer", "dogs")


def test_default_ctrs_are_realistic_with_a_big_gap_to_the_oracle(
    world: World, requests: list[Request]
) -> None:
    annotator = _mean_ctr(world, requests, AnnotatorPolicy(world.universe, seed=0))
    cqr = _mean_ctr(world, requests, _cqr(world))
    oracle = _mean_ctr(world, requests, OraclePolicy(world))
    assert 0.08 <= annotator <= 0.15
    assert annotator < cqr < oracle
    assert oracle >= 2 * annotator
    assert oracle <= 0.45


def test_oracle_beats_every_policy_on_the_same_request(
    world: World, requests: list[Request]
) -> None:
    annotator = AnnotatorPolicy(world.universe, seed=3)
    for r in requests[:150]:
        mine = annotator(r)
        best = world.oracle_list(r, [*world.candidate_pool(r), *mine])
        assert world.true_list_ctr(r, best) >= world.true_list_ctr(r, mine) - 1e-12


def test_annotator_samples_diverse_lists(world: World, requests: list[Request]) -> None:
    annotator = AnnotatorPolicy(world.universe, seed=0)
    r = requests[0]
    lists = {tuple(annotator(r)) for _ in range(20)}
    assert len(lists) >= 15
    assert all(len(q) == 3 and len(set(q)) == 3 for q in lists)


def test_hint_task_is_single_choice(world: World) -> None:
    hints = world.sample_requests(DAY, 30, task="hint")
    assert all(r.n_queries == 1 and r.component == "singleChoice" for r in hints)
    assert all(r.ai_response is None for r in hints)
    assert len(world.oracle_list(hints[0])) == 1
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        world.sample_requests(DAY, 3, task="nope")


def test_candidate_pool_is_generous(world: World, requests: list[Request]) -> None:
    pool = world.candidate_pool(requests[0])
    assert len(pool) >= 100
    assert requests[0].query not in pool


def test_changed_params_change_the_world(requests: list[Request]) -> None:
    base = World(seed=11)
    flat = World(seed=11, params=replace(base.params, position_decay=0.0))
    r = requests[0]
    q = [*base.oracle_list(r)]
    assert flat.true_list_ctr(r, q) > base.true_list_ctr(r, q)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_list_from_the_pool_beats_the_oracle(
    world: World, requests: list[Request], data: st.DataObject
) -> None:
    r = data.draw(st.sampled_from(requests[:40]))
    pool = world.candidate_pool(r)
    mine = data.draw(st.lists(st.sampled_from(pool), min_size=3, max_size=3, unique=True))
    ctr = world.true_list_ctr(r, mine)
    assert 0.0 <= ctr <= 1.0
    assert world.true_list_ctr(r, world.oracle_list(r, pool)) >= ctr - 1e-12
