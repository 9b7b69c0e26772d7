"""The simulated world's public face: requests, clicks, true CTRs and the oracle list.

This is the explicit oracle/evaluation API: demos and benchmarks use it to measure what real
systems cannot (the true CTR of a policy, the best achievable list). Learning code must not.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date

import numpy as np

from gqr_contracts.reward import Component
from gqr_contracts.reward import list_reward as list_ctr
from gqr_training.sim import _clickmodel as cm
from gqr_training.sim.lexicon import GENERIC_QUERIES
from gqr_training.sim.sessions import Request, SessionModel, near_copy
from gqr_training.sim.universe import ParsedQuery, Universe, render

Rng = random.Random | np.random.Generator


def draw_clicks(probs: Sequence[float], component: Component, rng: Rng) -> list[int]:
    """Sample the clicked positions: independent draws (multi) or at most one click (single)."""
    if component == "multiChoice":
        return [k for k, p in enumerate(probs) if rng.random() < p]
    u = rng.random() * max(1.0, float(sum(probs)))
    for k, p in enumerate(probs):
        if u < p:
            return [k]
        u -= p
    return []


class World:
    """A seeded universe of topics and users with a hidden click model."""

    def __init__(self, seed: int = 0, params: cm.ClickParams | None = None) -> None:
        self.seed = seed
        self.params = params or cm.ClickParams()
        self.universe = Universe(seed)
        self.sessions = SessionModel(self.universe, seed)

    def sample_requests(self, day: date, n: int, task: str = "suggestion") -> list[Request]:
        """``n`` requests of one day, in time order; the same for the same (seed, day, task)."""
        return self.sessions.day_requests(day, n, task)

    # ---- the hidden click model, seen from outside ----------------------------------------
    def true_click_probs(self, request: Request, queries: Sequence[str]) -> list[float]:
        """p_k = P(click q_k | user query, q_1..q_{k-1}) for every query, in display order."""
        parse = self.universe.parse
        return cm.click_probs(
            self._user(request),
            [parse(q) for q in queries],
            self.universe,
            self.params,
            cm.user_propensity(request.user_key, self.params, self.seed),
        )

    def true_list_ctr(
        self, request: Request, queries: Sequence[str], component: Component | None = None
    ) -> float:
        """The expected number-of-sessions-with-a-click of this list (eq. 3 / eq. 4)."""
        probs = self.true_click_probs(request, queries)
        return list_ctr(probs, component or request.component)

    def show(self, request: Request, queries: Sequence[str], rng: Rng) -> list[int]:
        """Show the list to the user; return the 0-based positions clicked.

        Multi-choice: every query is clicked independently. Single-choice: at most one click.
        """
        return draw_clicks(self.true_click_probs(request, queries), request.component, rng)

    # ---- the ceiling ---------------------------------------------------------------------
    def candidate_pool(self, request: Request) -> list[str]:
        """A generous pool for the request: every aspect of its topic at several specificities,
        sibling topics, near-copies, stock and off-topic queries (the good and the bad)."""
        uni = self.universe
        user = self._user(request)
        rng = random.Random(f"pool:{self.seed}:{request.query}")
        pool: dict[str, None] = {}
        topic = user.entities[0] if user.entities else None
        if topic is None:
            for past in reversed(request.history):
                hist = uni.parse(past).entities
                if hist:
                    topic = hist[0]
                    break
        if topic is not None:
            e = uni.entities[topic]
            mods = uni.modifiers_of[e.domain]
            pool[e.phrase] = None
            for m in rng.sample(mods, 3):
                pool[render(e.phrase, None, (m,))] = None
            for a in uni.aspects_of(topic):
                pool[render(e.phrase, a)] = None
                for m in mods:
                    pool[render(e.phrase, a, (m,))] = None
                for _ in range(2):
                    pool[render(e.phrase, a, tuple(rng.sample(mods, 2)))] = None
                pool[render(e.phrase, a, tuple(rng.sample(mods, 3)))] = None
            siblings = [i for i, s in enumerate(uni.entities) if s.domain == e.domain]
            for s in rng.sample(siblings, min(4, len(siblings))):
                for a in rng.sample(uni.aspects_of(s), 3):
                    pool[render(uni.entities[s].phrase, a)] = None
            foreign = [o.phrase for o in uni.entities if o.domain != e.domain]
            for phrase in rng.sample(foreign, 3):
                pool[phrase] = None
        for _ in range(2):
            pool[near_copy(request.query, rng)] = None
        for g in GENERIC_QUERIES:
            pool[g] = None
        pool.pop(request.query, None)
        return list(pool)

    def oracle_list(
        self,
        request: Request,
        pool: Sequence[str] | None = None,
        n: int | None = None,
        beam: int = 4,
        shortlist: int = 40,
    ) -> list[str]:
        """The best list of ``n`` queries from ``pool`` (default: :meth:`candidate_pool`).

        Beam search over the ``shortlist`` most attractive candidates; exact for these click
        effects in practice, since redundancy only lowers and examination only decays with k.
        """
        n = n or request.n_queries
        pool = list(dict.fromkeys(pool if pool is not None else self.candidate_pool(request)))
        user = self._user(request)
        parsed = [self.universe.parse(q) for q in pool]
        base = [cm.base_attractiveness(user, p, self.universe, self.params) for p in parsed]
        order = sorted(range(len(pool)), key=lambda i: -base[i])[: max(shortlist, n)]
        prop = cm.user_propensity(request.user_key, self.params, self.seed)
        params = self.params
        # A beam is (list CTR so far, chosen indices, their click probabilities).
        beams: list[tuple[float, list[int], list[float]]] = [(0.0, [], [])]
        for k in range(min(n, len(order))):
            exam = cm.examination(k, params)
            grown: list[tuple[float, list[int], list[float]]] = []
            for _, chosen, probs in beams:
                above = [parsed[i] for i in chosen]
                for i in order:
                    if i in chosen:
                        continue
                    red = cm.redundancy_factor(parsed[i], above, params)
                    p = exam * min(params.max_attr, base[i] * red * prop)
                    new_probs = [*probs, p]
                    grown.append((list_ctr(new_probs, request.component), [*chosen, i], new_probs))
            grown.sort(key=lambda t: -t[0])
            beams = grown[:beam]
        return [pool[i] for i in beams[0][1]]

    def _user(self, request: Request) -> ParsedQuery:
        return self.universe.parse(request.query)
