"""The reward interface of the alignment loop: a ``ListScorer`` maps a batch of
(user query, queries, component) to list rewards (eq. 3 multi-choice, eq. 4 single-choice).

Any implementation plugs in: the trained CTR predictor (:func:`from_ctr_scorer`), a CTR
predictor served over HTTP, or a known function in tests. Never the simulated world's truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gqr_contracts.reward import list_reward

ListJob = tuple[str, Sequence[str], str]


class ListScorer(Protocol):
    """Rewards for a batch of lists, in order: ``scorer([(user_query, queries, component)])``."""

    def __call__(self, jobs: Sequence[ListJob], /) -> list[float]: ...


def from_prob_fn(probs: Callable[[str, Sequence[str]], Sequence[float]]) -> ListScorer:
    """A scorer from a per-position probability function ``probs(user_query, queries)``."""

    def score(jobs: Sequence[ListJob]) -> list[float]:
        return [list_reward(probs(u, q), c) if q else 0.0 for u, q, c in jobs]

    return score


def from_ctr_scorer(scorer: Any, batch_size: int = 1024) -> ListScorer:
    """Adapt ``gqr_training.ctr.CTRScorer`` (``score_batch``): one forward pass per chunk of
    lists; empty lists score 0 (a response that parsed to nothing is never clicked)."""

    def score(jobs: Sequence[ListJob]) -> list[float]:
        out = [0.0] * len(jobs)
        todo = [i for i, (_, q, _) in enumerate(jobs) if q]
        for lo in range(0, len(todo), batch_size):
            idx = todo[lo : lo + batch_size]
            probs = scorer.score_batch([(jobs[i][0], list(jobs[i][1])) for i in idx])
            for i, p in zip(idx, probs, strict=True):
                out[i] = list_reward(p, jobs[i][2])
        return out

    return score
