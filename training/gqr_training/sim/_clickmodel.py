"""The hidden click model: the only place in the project where true click probabilities exist.

P(click q_k | u, q_1..q_{k-1}) = examination(k) * attractiveness(u, q_k, q_1..q_{k-1}), with

    examination(k) = (k + 1) ** -position_decay                     (k is 0-based)
    attractiveness = min(max_attr, attr_scale * rel * nov * spec * pop * appeal * unk * red * user)

Private on purpose: the CTR predictor, the alignment code and COR must learn from logs only, and a
lint contract forbids them to import ``gqr_training.sim``. Evaluation goes through ``World``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from gqr_training.sim.universe import ParsedQuery, Universe


@dataclass(frozen=True)
class ClickParams:
    """Parameters of the hidden click model; the defaults are the world's calibrated defaults."""

    position_decay: float = 0.8
    """Examination falls as (k+1)^-decay: 1.00, 0.57, 0.42 for the three suggestion slots."""
    attr_scale: float = 0.19
    """Attractiveness of an ideal query for an average user (before position)."""
    max_attr: float = 0.9
    """Cap on attractiveness: nobody clicks with certainty."""
    rel_same_domain: float = 0.3
    """Relatedness of a query about another topic of the user's domain (same topic: 1)."""
    rel_implicit: float = 0.45
    """Relatedness of a topic-less query whose aspects fit the user's domain ("hotels cheap")."""
    rel_generic: float = 0.15
    """Relatedness of stock queries ("learn more", "related topics")."""
    rel_unrelated: float = 0.03
    """Relatedness of a query about a topic of another domain."""
    novelty_modifier_only: float = 0.45
    """A query that only adds modifiers to the user's own intent is a weak follow-up."""
    novelty_copy: float = 0.04
    """A near-copy of the user query (nothing new) is almost never clicked."""
    spec_cap: int = 2
    """Specificity (aspects + modifiers + extra topics) that users like best."""
    spec_floor: float = 0.3
    """Factor for a bare topic (specificity 0); rises linearly to 1 at the cap."""
    spec_overshoot: float = 0.4
    """Factor lost per unit of specificity beyond the cap: the reward-hacking trap of length."""
    spec_min: float = 0.08
    """Floor for very over-specific queries."""
    unknown_word: float = 0.5
    """Factor per word the universe does not know (garbled model output)."""
    redundancy: float = 0.8
    """Share of attractiveness lost when a query above has the same intent (same aspect)."""
    redundancy_overlap: float = 0.6
    """Weight of plain word overlap with a query above when the intents differ."""
    user_sigma: float = 0.3
    """Spread of users' click propensity (log-normal, mean 1), fixed per hashed user key."""

    def __post_init__(self) -> None:
        for name in ("attr_scale", "max_attr", "rel_same_domain", "rel_generic", "novelty_copy"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ClickParams.{name}={value} must lie in [0, 1]")
        if self.spec_cap < 1:
            raise ValueError(f"ClickParams.spec_cap={self.spec_cap} must be >= 1")
        if self.position_decay < 0:
            raise ValueError(f"ClickParams.position_decay={self.position_decay} must be >= 0")


def examination(k: int, params: ClickParams) -> float:
    """Probability that a user looks at the query in 0-based position ``k``."""
    return float((k + 1) ** -params.position_decay)


def user_propensity(user_key: str, params: ClickParams, seed: int) -> float:
    """A user's click propensity, stable across sessions (derived from the hashed key)."""
    if params.user_sigma == 0:
        return 1.0
    h = hashlib.blake2b(f"{seed}:{user_key}".encode(), digest_size=8).digest()
    u = (int.from_bytes(h, "big") + 0.5) / 2**64
    z = _norm_ppf(u)
    return math.exp(params.user_sigma * z - params.user_sigma**2 / 2)


def _norm_ppf(u: float) -> float:
    # The logistic approximation of the probit is plenty for a propensity spread.
    return math.log(u / (1 - u)) / 1.702


def relatedness(user: ParsedQuery, q: ParsedQuery, uni: Universe, params: ClickParams) -> float:
    if user.entities and set(user.entities) & set(q.entities):
        return 1.0
    user_domains = {uni.entities[e].domain for e in user.entities}
    if q.entities:
        if user_domains & {uni.entities[e].domain for e in q.entities}:
            return params.rel_same_domain
        return params.rel_unrelated
    if q.aspects and any((d, a) in uni.aspect_pop for d in user_domains for a in q.aspects):
        return params.rel_implicit
    if not user.entities:  # the user query itself is off-lexicon: fall back to word overlap
        return max(params.rel_generic, _jaccard(user.tokens, q.tokens))
    return params.rel_generic


def novelty(user: ParsedQuery, q: ParsedQuery, params: ClickParams) -> float:
    if q.aspects - user.aspects or set(q.entities) - set(user.entities):
        return 1.0
    if q.modifiers - user.modifiers:
        return params.novelty_modifier_only
    if q.generic:
        return 1.0  # stock queries are unrelated rather than copies; relatedness prices them
    return params.novelty_copy


def specificity_factor(s: int, params: ClickParams) -> float:
    if s <= params.spec_cap:
        return params.spec_floor + (1 - params.spec_floor) * s / params.spec_cap
    return max(params.spec_min, 1 - params.spec_overshoot * (s - params.spec_cap))


def interest(user: ParsedQuery, q: ParsedQuery, uni: Universe) -> float:
    """Popularity of what the query newly asks about, times the appeal of its modifiers."""
    topic = next(iter(q.entities), None)
    if topic is None:
        topic = next(iter(user.entities), None)
    aspects = (q.aspects - user.aspects) or q.aspects
    if topic is not None and aspects:
        pop = sum(uni.popularity(topic, a) for a in aspects) / len(aspects)
    else:
        pop = 0.5
    for m in q.modifiers:
        pop *= uni.modifier_appeal[m]
    return pop


def redundancy_factor(q: ParsedQuery, above: Sequence[ParsedQuery], params: ClickParams) -> float:
    """Context effect: a query that repeats the intent of one shown above it loses appeal."""
    worst = 0.0
    for a in above:
        same_topic = set(q.entities) & set(a.entities) or not (q.entities and a.entities)
        if q.tokens == a.tokens or (q.aspects & a.aspects and same_topic):
            sim = 1.0
        else:
            sim = params.redundancy_overlap * _jaccard(q.tokens, a.tokens)
        worst = max(worst, sim)
    return 1.0 - params.redundancy * worst


def base_attractiveness(
    user: ParsedQuery, q: ParsedQuery, uni: Universe, params: ClickParams
) -> float:
    """Attractiveness before the context effect and the user's propensity."""
    return (
        params.attr_scale
        * relatedness(user, q, uni, params)
        * novelty(user, q, params)
        * specificity_factor(q.specificity, params)
        * interest(user, q, uni)
        * params.unknown_word**q.n_unknown
    )


def click_probs(
    user: ParsedQuery,
    shown: Sequence[ParsedQuery],
    uni: Universe,
    params: ClickParams,
    propensity: float = 1.0,
) -> list[float]:
    """p_k for every shown query, in display order."""
    probs = []
    for k, q in enumerate(shown):
        attr = base_attractiveness(user, q, uni, params) * redundancy_factor(q, shown[:k], params)
        attr = min(params.max_attr, attr * propensity)
        probs.append(examination(k, params) * attr)
    return probs


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
