"""Per-user click propensity on top of the text model: an extension beyond the paper's input.

The paper's predictor sees only text and positions, but users differ in how much they click
(the simulated world draws a log-normal propensity per user; real users differ too), and the
oracle the issue compares with knows it. After training, each user seen in the training window
gets a multiplier on every p_k, the empirical-Bayes ratio of the clicks they made to the clicks
the text model expected of them, shrunk towards 1 by ``prior`` expected clicks:

    factor(u) = (clicks(u) + prior) / (expected(u) + prior)

so a user with few impressions keeps ~1 and only heavy users move (``prior`` is chosen on the
training window's last day by ``select_prior``); it multiplies the odds of
each p (for the small p of clicks, ~p x factor). Keys are the hashed user
keys the gateway logs (never raw keys); an unknown or missing key gets 1. At most
``max_users`` users (the most impressions first) are kept in ``user_propensity.json``.

Where it matters: the held-out AUC and logloss of one artifact (the reward model's quality).
Where it does not: any comparison of lists shown to one user (the gateway's rerank, the
alignment loop's list rewards for one prompt), since one factor scales every candidate alike;
so the alignment loop scores without user keys.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PRIORS = (2.0, 5.0, 10.0, 20.0, 50.0)
"""Candidates ``select_prior`` tries."""

FILE = "user_propensity.json"


@dataclass(frozen=True)
class UserPropensity:
    """Hashed user key -> multiplier on that user's click probabilities."""

    factors: dict[str, float]
    prior: float

    def factor(self, user_key: str | None) -> float:
        return self.factors.get(user_key, 1.0) if user_key else 1.0

    def apply(self, probs: Sequence[float], user_key: str | None) -> list[float]:
        """Each p's odds times the user's factor (~p x factor for the small p of clicks, and
        never 1 or more)."""
        f = self.factor(user_key)
        if f == 1.0:
            return list(probs)
        return [p * f / (1.0 - p + p * f) for p in probs]

    def save(self, directory: Path) -> None:
        body = {"prior": self.prior, "users": len(self.factors), "factors": self.factors}
        (directory / FILE).write_text(json.dumps(body, separators=(",", ":")))

    @classmethod
    def load(cls, directory: Path) -> UserPropensity | None:
        path = directory / FILE
        if not path.is_file():
            return None
        body = json.loads(path.read_text())
        return cls({str(k): float(v) for k, v in body["factors"].items()}, float(body["prior"]))


@dataclass(frozen=True)
class _Totals:
    """Per user: clicks made, clicks the text model expected, shown queries."""

    clicks: dict[str, float]
    expected: dict[str, float]
    shown: dict[str, int]

    @classmethod
    def count(
        cls, user_keys: Sequence[str], clicked: Sequence[int], expected: Sequence[float]
    ) -> _Totals:
        if not len(user_keys) == len(clicked) == len(expected):
            raise ValueError(
                f"{len(user_keys)} user keys, {len(clicked)} labels and {len(expected)} "
                "probabilities: expected one of each per shown query"
            )
        obs: dict[str, float] = defaultdict(float)
        exp: dict[str, float] = defaultdict(float)
        shown: dict[str, int] = defaultdict(int)
        for u, y, p in zip(user_keys, clicked, expected, strict=True):
            if u:
                obs[u] += y
                exp[u] += p
                shown[u] += 1
        return cls(obs, exp, shown)

    def factors(self, prior: float, max_users: int) -> UserPropensity:
        if not prior > 0 or not math.isfinite(prior):
            raise ValueError(f"prior={prior} (accepted: a positive number of expected clicks)")
        keep = sorted(self.shown, key=lambda u: (-self.shown[u], u))[:max_users]
        return UserPropensity(
            {u: (self.clicks[u] + prior) / (self.expected[u] + prior) for u in keep}, prior
        )


def fit(
    user_keys: Sequence[str],
    clicked: Sequence[int],
    expected: Sequence[float],
    *,
    prior: float = 10.0,
    max_users: int = 200_000,
) -> UserPropensity:
    """Factors from one row per shown query: its user, whether it was clicked, and the text
    model's p for it (on the training window)."""
    return _Totals.count(user_keys, clicked, expected).factors(prior, max_users)


def select_prior(
    user_keys: Sequence[str],
    clicked: Sequence[int],
    expected: Sequence[float],
    groups: Sequence[date] | Sequence[int],
    candidates: Sequence[float] = PRIORS,
) -> tuple[float, dict[float, float]]:
    """The prior whose factors, fitted on every group but the last (days, in order), give the
    lowest logloss on the last group; and each candidate's logloss. With one group only: 10.
    The users' totals are counted once; each candidate only divides them differently."""
    last = max(groups) if groups else None
    fit_rows = [i for i, g in enumerate(groups) if g != last]
    val_rows = [i for i, g in enumerate(groups) if g == last]
    if not fit_rows or not val_rows:
        return 10.0, {}
    totals = _Totals.count(
        [user_keys[i] for i in fit_rows],
        [clicked[i] for i in fit_rows],
        [expected[i] for i in fit_rows],
    )
    losses: dict[float, float] = {}
    for prior in candidates:
        users = totals.factors(prior, max_users=len(totals.shown))
        total = 0.0
        for i in val_rows:
            p = min(max(users.apply([expected[i]], user_keys[i])[0], 1e-7), 1 - 1e-7)
            total -= math.log(p) if clicked[i] else math.log(1 - p)
        losses[prior] = total / len(val_rows)
    return min(losses, key=losses.__getitem__), losses
