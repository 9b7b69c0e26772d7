"""The seeded universe of the simulated world: entities, aspects, modifiers, and a text parser.

Everything the hidden click model uses is a property of words (an entity's domain, an aspect's
popularity within a domain, a modifier's appeal), and :meth:`Universe.parse` reads those back
from any string, including strings a language model made up. Nothing depends on hidden ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gqr_training.sim.lexicon import DOMAINS, FILLERS, GENERIC_QUERIES, GLOBAL_MODIFIERS, Domain

_TOKEN = re.compile(r"[a-z0-9]+")
_MAX_PHRASE = 5


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens; punctuation and quotes are dropped, as a search engine would."""
    return tuple(_TOKEN.findall(text.lower()))


@dataclass(frozen=True)
class Entity:
    """A topic users search for."""

    phrase: str
    domain: int
    popularity: float  # share of sessions that start on it (Zipf-like over all entities)


@dataclass(frozen=True)
class ParsedQuery:
    """What a query string says, in the universe's terms."""

    tokens: frozenset[str]
    entities: tuple[int, ...]  # entity indices, in order of appearance
    aspects: frozenset[str]
    modifiers: frozenset[str]
    generic: bool  # one of the topic-free stock queries
    n_unknown: int  # content words the universe does not know (a model's gibberish)

    @property
    def specificity(self) -> int:
        """How many refinements the query carries beyond naming its topic."""
        return len(self.aspects) + len(self.modifiers) + max(0, len(self.entities) - 1)


class Universe:
    """Domains, entities, aspect popularity and modifier appeal, drawn from one seed."""

    def __init__(self, seed: int = 0, domains: tuple[Domain, ...] = DOMAINS) -> None:
        rng = np.random.default_rng([seed, 7919])
        self.seed = seed
        self.domains = domains
        self.entities: list[Entity] = []
        weights = []
        for d, dom in enumerate(domains):
            for phrase in dom.entities:
                self.entities.append(Entity(phrase, d, 0.0))
                weights.append(0.0)
        # Zipf over a random order: a few head topics, a long tail of sparse ones (the case the
        # paper's ANN neighbour retrieval exists for).
        order = rng.permutation(len(self.entities))
        ranks = np.empty(len(order))
        ranks[order] = np.arange(1, len(order) + 1)
        zipf = 1.0 / ranks**0.9
        zipf /= zipf.sum()
        self.entities = [
            Entity(e.phrase, e.domain, float(w)) for e, w in zip(self.entities, zipf, strict=True)
        ]
        self.entity_weights = zipf
        self.modifiers_of: list[tuple[str, ...]] = [
            dom.modifiers + GLOBAL_MODIFIERS for dom in domains
        ]
        # How much users of a domain care about an aspect: learnable from (domain words, aspect).
        self.aspect_pop: dict[tuple[int, str], float] = {}
        for d, dom in enumerate(domains):
            for a, p in zip(dom.aspects, rng.uniform(0.25, 1.0, len(dom.aspects)), strict=True):
                self.aspect_pop[d, a] = float(p)
        # Per-topic taste on top of the domain's: only co-occurrence logs reveal it well.
        self.entity_aspect_jitter: dict[tuple[int, str], float] = {}
        for i, e in enumerate(self.entities):
            for a in domains[e.domain].aspects:
                self.entity_aspect_jitter[i, a] = float(rng.uniform(0.8, 1.2))
        all_mods = sorted({m for mods in self.modifiers_of for m in mods})
        self.modifier_appeal = {
            m: float(v)
            for m, v in zip(all_mods, rng.uniform(0.7, 1.25, len(all_mods)), strict=True)
        }
        self._lexicon = self._build_lexicon()
        self._cache: dict[str, ParsedQuery] = {}

    def _build_lexicon(self) -> dict[tuple[str, ...], tuple[str, str | int]]:
        lex: dict[tuple[str, ...], tuple[str, str | int]] = {}

        def add(phrase: str, kind: str, value: str | int) -> None:
            key = tokenize(phrase)
            old = lex.get(key)
            if old is not None and old[0] != kind:
                raise ValueError(f"phrase {phrase!r} is both a {old[0]} and a {kind}")
            lex[key] = (kind, value)

        for i, e in enumerate(self.entities):
            add(e.phrase, "entity", i)
        for dom in self.domains:
            for a in dom.aspects:
                add(a, "aspect", a)
        for mods in self.modifiers_of:
            for m in mods:
                add(m, "modifier", m)
        for f in FILLERS:
            add(f, "filler", f)
        for g in GENERIC_QUERIES:
            add(g, "generic", g)
        return lex

    @property
    def vocabulary(self) -> list[str]:
        """Every word a query of this universe can contain."""
        return sorted({t for key in self._lexicon for t in key})

    def aspects_of(self, entity: int) -> tuple[str, ...]:
        return self.domains[self.entities[entity].domain].aspects

    def popularity(self, entity: int, aspect: str) -> float:
        """Users' interest in ``aspect`` of ``entity``; low for an aspect foreign to its domain."""
        d = self.entities[entity].domain
        pop = self.aspect_pop.get((d, aspect))
        if pop is None:
            return 0.1
        return pop * self.entity_aspect_jitter[entity, aspect]

    def parse(self, query: str) -> ParsedQuery:
        """Longest-match the query's words against the lexicon (cached: queries repeat a lot)."""
        hit = self._cache.get(query)
        if hit is not None:
            return hit
        toks = tokenize(query)
        entities: list[int] = []
        aspects: set[str] = set()
        modifiers: set[str] = set()
        generic = False
        unknown = 0
        i = 0
        while i < len(toks):
            for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
                found = self._lexicon.get(toks[i : i + n])
                if found is not None:
                    kind, value = found
                    if kind == "entity":
                        assert isinstance(value, int)
                        if value not in entities:
                            entities.append(value)
                    elif kind == "aspect":
                        aspects.add(str(value))
                    elif kind == "modifier":
                        modifiers.add(str(value))
                    elif kind == "generic":
                        generic = True
                    i += n
                    break
            else:
                unknown += 1
                i += 1
        parsed = ParsedQuery(
            tokens=frozenset(toks),
            entities=tuple(entities),
            aspects=frozenset(aspects),
            modifiers=frozenset(modifiers),
            generic=generic and not entities,
            n_unknown=unknown,
        )
        if len(self._cache) < 2_000_000:
            self._cache[query] = parsed
        return parsed


def render(
    entity: str, aspect: str | None = None, modifiers: tuple[str, ...] = (), max_words: int = 8
) -> str:
    """The surface form of a structured query: topic first, then what about it, then how.

    Trailing modifiers are dropped until the query has at most ``max_words`` words.
    """
    mods = list(modifiers)
    while True:
        parts = [entity, *([aspect] if aspect else []), *mods]
        text = " ".join(parts)
        if not mods or len(text.split()) <= max_words:
            return text
        mods.pop()
