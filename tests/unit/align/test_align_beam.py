"""CTR-guided beam search (Algorithm 1) and pair building with a known scorer."""

from __future__ import annotations

import random
from typing import Any

from testsupport.toyworld import BAD, GOOD, PRESET, PoolEngine, known_scorer, requests

from gqr_training.align.beam import BeamConfig, beam_search
from gqr_training.align.data import make_task
from gqr_training.align.overlap import OverlapFilter
from gqr_training.align.pairs import PairConfig, build_pairs


def test_beam_search_returns_b_lists_of_n_better_than_random() -> None:
    tasks = [make_task(PRESET, r) for r in requests(12)]
    engine: Any = PoolEngine()
    beams = beam_search(engine, PRESET, tasks, known_scorer, BeamConfig(beam_size=3, candidates=6))
    assert all(len(b) == 3 for b in beams)
    assert all(len(s.queries) == 3 and len(set(s.queries)) == 3 for b in beams for s in b)
    rng = random.Random(1)
    best, rand = [], []
    for t, b in zip(tasks, beams, strict=True):
        assert [s.reward for s in b] == sorted((s.reward for s in b), reverse=True)
        lists = [[f"{t.query} {a}" for a in rng.sample(GOOD + BAD, 3)] for _ in range(20)]
        rewards = known_scorer([(t.query, q, "multiChoice") for q in lists])
        assert b[-1].reward >= sorted(rewards)[len(rewards) // 2]  # every beam beats the median
        best.append(b[0].reward)
        rand.append(sum(rewards) / len(rewards))
    assert sum(best) / len(best) > sum(rand) / len(rand) + 0.1


def test_build_pairs_prefers_high_reward_and_matches_lengths() -> None:
    tasks = [make_task(PRESET, r) for r in requests(16)]
    engine: Any = PoolEngine(2)
    flt = OverlapFilter("token")
    pairs, stats = build_pairs(engine, PRESET, tasks, known_scorer, PairConfig(), flt)
    assert pairs and stats.pairs == len(pairs)
    assert all(p.chosen_reward >= p.rejected_reward + 0.02 for p in pairs)
    assert abs(stats.mean_chosen_len - stats.mean_rejected_len) <= 0.1 * stats.mean_rejected_len
    assert flt.checked > 0


class RepeatingEngine(PoolEngine):
    """Like PoolEngine, but half of the whole responses write their first query twice."""

    def response(self, qs: list[str]) -> str:
        first, middle, last = self.rng.sample(qs, 3)
        if self.rng.random() < 0.5:
            middle = first
        return f"{first} <SEP> {middle} <SEP> {last}"


def test_rejected_is_the_text_the_policy_wrote_repeats_included() -> None:
    from gqr_training.align.data import read_response

    tasks = [make_task(PRESET, r) for r in requests(16)]
    engine: Any = RepeatingEngine(3)
    pairs, _ = build_pairs(engine, PRESET, tasks, known_scorer, PairConfig(max_length_gap=None))
    task_of = {t.prompt: t for t in tasks}
    repeated = [p for p in pairs if len(read_response(PRESET, task_of[p.prompt], p.rejected)) < 3]
    # A response that repeats a query shows only 2 queries, so it scores low and is rejected
    # as written: DPO sees the repeat it must unlearn (before, it saw the cleaned 2-query list).
    assert repeated, "no rejected response with a repeated query"
    for p in repeated:
        parts = [q.strip() for q in p.rejected.split("<SEP>")]
        assert len(parts) == 3 and len(set(parts)) == 2
    # Chosen lists come from the beam: never a repeat.
    for p in pairs:
        parts = [q.strip() for q in p.chosen.split("<SEP>")]
        assert len(set(parts)) == len(parts) == 3
