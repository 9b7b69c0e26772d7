"""Users' multi-turn search sessions and the recommendation requests they raise, day by day.

Generative story: a user picks a topic (Zipf over topics), types a broad or an aspect query,
reads the AI answer, then most often follows up on the same topic with a new, popular aspect and
about one modifier (the kind of follow-up the click model likes), sometimes narrows the same
intent, hops to a sibling topic, or restates the query. So consecutive (q, q_next) pairs in the
query log are a useful, noisy signal of good follow-ups, which is what co-occurrence retrieval
(COR) and the CQR baseline rely on. Sessions are exogenous: clicks do not steer them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from gqr_contracts.reward import Component
from gqr_training.sim.lexicon import FILLERS
from gqr_training.sim.universe import Universe, render


@dataclass(frozen=True)
class TaskSpec:
    """How many queries a task shows and how its list CTR aggregates (eq. 3 or eq. 4)."""

    n_queries: int
    component: Component


# Mirrors the serving task presets (gqr_serving.prompt); the world only needs N and the component.
TASKS: dict[str, TaskSpec] = {
    "suggestion": TaskSpec(3, "multiChoice"),
    "clarification": TaskSpec(3, "multiChoice"),
    "hint": TaskSpec(1, "singleChoice"),
    "completion": TaskSpec(5, "singleChoice"),
}


@dataclass(frozen=True)
class Request:
    """One moment where the product asks for recommended queries (what a gateway receives)."""

    task: str
    session_id: str
    user_key: str  # already hashed, as the gateway logs it
    query: str
    history: tuple[str, ...]  # the session's earlier queries, oldest first
    ai_response: str | None
    ts: datetime
    n_queries: int
    component: Component


@dataclass
class _State:
    entity: int
    aspect: str | None
    modifiers: tuple[str, ...]
    used_aspects: set[str] = field(default_factory=set)


class SessionModel:
    """Samples sessions and requests from a universe; deterministic given (seed, day)."""

    def __init__(self, universe: Universe, seed: int = 0, n_users: int = 200_000) -> None:
        self.uni = universe
        self.seed = seed
        self.n_users = n_users
        self._entity_cum = list(accumulate(universe.entity_weights.tolist()))
        self._siblings: dict[int, list[int]] = {}
        for i, e in enumerate(universe.entities):
            self._siblings.setdefault(e.domain, []).append(i)
        # Users type popular aspects more often than the click model's taste alone would say:
        # squaring sharpens the signal that session logs carry.
        self._aspect_cum = {
            i: list(accumulate(universe.popularity(i, a) ** 2 for a in universe.aspects_of(i)))
            for i in range(len(universe.entities))
        }
        self._mod_cum = [
            list(accumulate(universe.modifier_appeal[m] ** 2 for m in mods))
            for mods in universe.modifiers_of
        ]

    # ---- requests -------------------------------------------------------------------------
    def day_requests(self, day: date, n: int, task: str = "suggestion") -> list[Request]:
        """``n`` requests: every query of the day's sessions (the last one cut), in time order."""
        spec = task_spec(task)
        rng = random.Random(f"{self.seed}:{day.isoformat()}")
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        out: list[Request] = []
        i = 0
        while len(out) < n:
            queries = self.sample_session(rng)
            sid = f"w{self.seed}-{day:%Y%m%d}-{i:06d}"
            user = _hash(f"user:{self.seed}:{int(rng.paretovariate(1.2) * 97) % self.n_users}")
            # Sessions start across the day, denser in the evening; they end before midnight.
            t = start + timedelta(seconds=min(rng.betavariate(2.2, 1.6) * 86_400, 84_000))
            for j, q in enumerate(queries[: n - len(out)]):
                out.append(
                    Request(
                        task=task,
                        session_id=sid,
                        user_key=user,
                        query=q,
                        history=tuple(queries[:j]),
                        ai_response=self.ai_response(q, rng) if task != "hint" else None,
                        ts=t,
                        n_queries=spec.n_queries,
                        component=spec.component,
                    )
                )
                t += timedelta(seconds=rng.uniform(15, 180))
            i += 1
        out.sort(key=lambda r: r.ts)
        return out

    def sample_session(self, rng: random.Random) -> list[str]:
        """The queries one user types in one session (1 to 6, about 2.3 on average)."""
        uni = self.uni
        e = rng.choices(range(len(uni.entities)), cum_weights=self._entity_cum)[0]
        r = rng.random()
        if r < 0.4:
            state = _State(e, None, ())
        else:
            a = self._aspect(e, rng, set())
            mods = (self._modifier(e, rng),) if r > 0.85 else ()
            state = _State(e, a, mods, {a})
        queries = [self._render(state)]
        while len(queries) < 6 and rng.random() < 0.58:
            state = self._next(state, rng)
            q = self._render(state)
            if q != queries[-1]:
                queries.append(q)
        return queries

    def _next(self, s: _State, rng: random.Random) -> _State:
        r = rng.random()
        if r < 0.70:  # a new aspect of the same topic: the follow-up users actually want
            a = self._aspect(s.entity, rng, s.used_aspects)
            k = rng.choices((0, 1, 2), weights=(0.3, 0.5, 0.2))[0]
            mods = tuple(dict.fromkeys(self._modifier(s.entity, rng) for _ in range(k)))
            return _State(s.entity, a, mods, s.used_aspects | {a})
        if r < 0.82 and s.aspect is not None:  # narrow the same intent
            m = self._modifier(s.entity, rng)
            mods = s.modifiers if m in s.modifiers else (*s.modifiers, m)
            return _State(s.entity, s.aspect, mods[-2:], s.used_aspects)
        if r < 0.92:  # hop to a sibling topic, keeping the intent
            sib = rng.choice(self._siblings[self.uni.entities[s.entity].domain])
            return _State(sib, s.aspect, (), set(s.used_aspects))
        # restate: back to the bare topic (a generalisation, as real users do)
        return _State(s.entity, None, (), s.used_aspects)

    def _aspect(self, e: int, rng: random.Random, exclude: set[str]) -> str:
        aspects = self.uni.aspects_of(e)
        for _ in range(8):
            a = rng.choices(aspects, cum_weights=self._aspect_cum[e])[0]
            if a not in exclude:
                return a
        return a

    def _modifier(self, e: int, rng: random.Random) -> str:
        d = self.uni.entities[e].domain
        return rng.choices(self.uni.modifiers_of[d], cum_weights=self._mod_cum[d])[0]

    def _render(self, s: _State) -> str:
        return render(self.uni.entities[s.entity].phrase, s.aspect, s.modifiers)

    # ---- the AI answer stand-in -----------------------------------------------------------
    def ai_response(self, query: str, rng: random.Random) -> str:
        """A short answer text that names the query's topic and three related aspects."""
        p = self.uni.parse(query)
        if not p.entities:
            return f"Here is what we found about {query}."
        e = p.entities[0]
        topic = self.uni.entities[e].phrase
        others = [a for a in self.uni.aspects_of(e) if a not in p.aspects]
        mentioned = rng.sample(others, k=min(3, len(others)))
        what = f"{topic} {' '.join(sorted(p.aspects))}".strip()
        a1, a2, a3 = (mentioned + ["details"] * 3)[:3]
        return rng.choice(
            (
                f"{what}: a short answer. It depends on {a1} and {a2}; {a3} also matters.",
                f"In short, {what} comes down to {a1}. People also weigh {a2} and {a3}.",
                f"Key points on {what}: {a1}, {a2}, and {a3}. See the sources for more.",
            )
        )


def task_spec(task: str) -> TaskSpec:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; the world knows {sorted(TASKS)}") from None


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def near_copy(query: str, rng: random.Random) -> str:
    """The user's query padded or reordered: looks new, says nothing new."""
    words = query.split()
    r = rng.random()
    if r < 0.5:
        filler = rng.choice(FILLERS)
        return f"{filler} {query}" if rng.random() < 0.5 else f"{query} {filler}"
    if len(words) > 1 and r < 0.8:
        return " ".join(words[-1:] + words[:-1])
    return query
