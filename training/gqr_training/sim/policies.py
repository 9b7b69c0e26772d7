"""Reference policies for the simulated world: a noisy annotator, a co-occurrence recommender
(the paper's CQR baseline) and the oracle.

A policy is any callable ``request -> list[str]``. The annotator stands in for the human/GPT
annotation the paper's initial SFT imitates: plausible, sampled, unaligned with clicks.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise

from gqr_serving.records import QueryLogRecord
from gqr_training.sim.lexicon import FILLERS, GENERIC_QUERIES
from gqr_training.sim.sessions import Request, near_copy
from gqr_training.sim.universe import Universe, render, tokenize
from gqr_training.sim.world import World

Policy = Callable[[Request], list[str]]

# What a careless annotator writes, and how often (the kinds the click model prices).
ANNOTATOR_MIX: dict[str, float] = {
    "follow_up": 0.55,  # same topic, a new aspect: the good kind, but aspect picked at random
    "near_copy": 0.09,  # the user query padded or reordered
    "over_specific": 0.11,  # three or more refinements
    "generic": 0.07,  # "learn more", "pocono mountains overview"
    "sibling": 0.09,  # another topic of the same domain
    "redundant": 0.09,  # the same aspect as a query above, other modifiers
}


class AnnotatorPolicy:
    """Writes plausible but unaligned lists, sampled (two calls rarely agree)."""

    def __init__(self, universe: Universe, seed: int = 0, mix: dict[str, float] | None = None):
        self.uni = universe
        self.rng = random.Random(f"annotator:{seed}")
        mix = mix or ANNOTATOR_MIX
        self._kinds = list(mix)
        self._weights = [mix[k] for k in self._kinds]

    def __call__(self, request: Request) -> list[str]:
        uni, rng = self.uni, self.rng
        topic = _topic(uni, request)
        out: list[str] = []
        aspects_used: list[str] = []
        for _ in range(request.n_queries * 6):
            if len(out) == request.n_queries:
                break
            kind = rng.choices(self._kinds, weights=self._weights)[0]
            q, aspect = self._one(kind, topic, request, aspects_used)
            if q and q not in out and q != request.query:
                out.append(q)
                if aspect:
                    aspects_used.append(aspect)
        while len(out) < request.n_queries:  # only when the topic is unknown and retries ran out
            out.append(rng.choice([g for g in GENERIC_QUERIES if g not in out]))
        return out

    def _one(
        self, kind: str, topic: int | None, request: Request, used: list[str]
    ) -> tuple[str, str | None]:
        uni, rng = self.uni, self.rng
        if kind == "near_copy" or topic is None:
            if topic is None and rng.random() < 0.5:
                return rng.choice(GENERIC_QUERIES), None
            return near_copy(request.query, rng), None
        e = uni.entities[topic]
        mods = uni.modifiers_of[e.domain]
        user_aspects = uni.parse(request.query).aspects
        fresh = [a for a in uni.aspects_of(topic) if a not in user_aspects] or list(
            uni.aspects_of(topic)
        )
        if kind == "follow_up":
            a = rng.choice(fresh)
            k = rng.choices((0, 1, 2), weights=(0.25, 0.5, 0.25))[0]
            return render(e.phrase, a, tuple(rng.sample(mods, k))), a
        if kind == "over_specific":
            a = rng.choice(fresh)
            if rng.random() < 0.3:
                b = rng.choice([x for x in fresh if x != a] or [a])
                return render(e.phrase, f"{a} {b}", tuple(rng.sample(mods, 2)), max_words=11), a
            return render(e.phrase, a, tuple(rng.sample(mods, rng.choice((3, 4)))), max_words=11), a
        if kind == "generic":
            if rng.random() < 0.5:
                return rng.choice(GENERIC_QUERIES), None
            return f"{e.phrase} {rng.choice(FILLERS)}", None
        if kind == "sibling":
            sib = rng.choice([i for i, s in enumerate(uni.entities) if s.domain == e.domain])
            return render(uni.entities[sib].phrase, rng.choice(uni.aspects_of(sib))), None
        # redundant: repeat an aspect already in the list (or the user's own) with new modifiers
        pick = used or sorted(user_aspects)
        if not pick:
            return render(e.phrase, rng.choice(fresh)), None
        a = rng.choice(pick)
        return render(e.phrase, a, tuple(rng.sample(mods, rng.choice((1, 2))))), a


class CooccurrencePolicy:
    """CQR baseline: the most frequent next queries of the user query in past sessions.

    Backs off to the successors of queries that share the first two words (the topic, for most
    queries) when the query itself is rare, then to the overall most frequent successors.
    """

    def __init__(self, n: int = 3) -> None:
        self.n = n
        self.pairs: Counter[tuple[str, str]] = Counter()
        self._next: dict[str, Counter[str]] = defaultdict(Counter)
        self._by_prefix: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        self._overall: Counter[str] = Counter()

    def observe_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        for q, nxt in pairs:
            if q == nxt:
                continue
            self.pairs[q, nxt] += 1
            self._next[q][nxt] += 1
            self._by_prefix[tokenize(q)[:2]][nxt] += 1
            self._overall[nxt] += 1

    def observe(self, requests: Iterable[Request]) -> None:
        """Count (previous query, query) pairs of the sessions these requests belong to."""
        self.observe_pairs((r.history[-1], r.query) for r in requests if r.history)

    def observe_query_log(self, sessions: Iterable[tuple[str, Sequence[QueryLogRecord]]]) -> None:
        """Count pairs from a query log read back (``LogReader.sessions``)."""
        for _, records in sessions:
            qs = [r.query for r in records]
            self.observe_pairs(pairwise(qs))

    def __call__(self, request: Request) -> list[str]:
        n = request.n_queries or self.n
        skip = {request.query, *request.history}
        out: list[str] = []
        for source in (
            self._next.get(request.query),
            self._by_prefix.get(tokenize(request.query)[:2]),
            self._overall,
        ):
            if not source:
                continue
            for q, _ in source.most_common(n + len(skip) + len(out)):
                if q not in skip and q not in out:
                    out.append(q)
                    if len(out) == n:
                        return out
        for g in GENERIC_QUERIES:  # an empty index: say something rather than nothing
            if len(out) == n:
                break
            if g not in out:
                out.append(g)
        return out


class OraclePolicy:
    """The best list from the world's candidate pool: the ceiling for every policy."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, request: Request) -> list[str]:
        return self.world.oracle_list(request)


def _topic(uni: Universe, request: Request) -> int | None:
    for q in (request.query, *reversed(request.history)):
        ents = uni.parse(q).entities
        if ents:
            return ents[0]
    return None
