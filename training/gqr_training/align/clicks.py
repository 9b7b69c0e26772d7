"""Preference pairs from raw clicks (the paper's *_clk baselines, Appendix B.2).

No reward model: for each distinct (normalised) user query in the logs, a list that was
clicked is preferred to a list shown for the same query that was not. The chosen list's reward
is its number of clicked positions, the rejected list's 0; eq. 6 (closest lengths, with the
same per-pair length limit as the CTR pairs) picks one pair per query. The prompt is the
first logged request of that query with its side information (history, AI answer), the
co-occurring queries refreshed from ``cor`` when given, so the pairs are trained on the prompts
the policy is evaluated with.

With an output filter (``safety``), a clicked list holding a query the gateway would refuse to
serve is never chosen: it counts as unclicked (a rejected candidate) instead.

What raw clicks carry and the CTR predictor smooths away: position bias (a click on the first
slot says less), each user's own propensity to click, and chance (one impression per list).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gqr_serving.prompt import PromptRequest, TaskPreset
from gqr_serving.safety import OutputFilter
from gqr_training.align.data import Task, clean_list, completion_text, make_task
from gqr_training.align.logprompts import with_cooccurring
from gqr_training.align.pairs import Pair, select_pair


@dataclass
class ClickPairStats:
    """How the click pairs came about."""

    impressions: int = 0
    """Impressions of the task read."""
    queries: int = 0
    """Distinct user queries among them."""
    with_both: int = 0
    """Queries with at least one clicked and one unclicked usable list."""
    length_gap_refused: int = 0
    """Queries with both, where every clicked/unclicked combination broke the length limit."""
    pairs: int = 0
    """Pairs returned (at most ``max_pairs``)."""
    chosen_chars: float = 0.0
    """Mean length of the chosen responses."""
    rejected_chars: float = 0.0
    """Mean length of the rejected responses."""
    lists_dropped: int = 0
    """Logged lists with no query left after the task's constraints."""
    unsafe_clicked: int = 0
    """Clicked lists the output filter refused: never chosen, counted as unclicked."""


@dataclass
class _Group:
    task: Task
    """The query's first logged request, rendered once."""
    clicked: dict[str, float] = field(default_factory=dict)
    unclicked: set[str] = field(default_factory=set)


def click_pairs(
    logs: str,
    preset: TaskPreset,
    *,
    task: str = "suggestion",
    start: datetime | None = None,
    end: datetime | None = None,
    max_pairs: int | None = None,
    max_length_gap: float | None = 0.1,
    cor: Callable[[str], Sequence[str]] | None = None,
    seed: int = 0,
    safety: OutputFilter | None = None,
) -> tuple[list[Pair], ClickPairStats]:
    """One (clicked, unclicked) pair per user query of ``task`` in the logs' ``[start, end)``;
    with ``max_pairs``, a random sample (by ``seed``) of them. A clicked list ``safety``
    refuses is never chosen."""
    from gqr_serving.cor.normalize import normalize_query
    from gqr_serving.logstore import LogReader

    stats = ClickPairStats()
    groups: dict[str, _Group] = {}
    for imp, clicked in LogReader(logs).impressions_with_clicks(start, end):
        if imp.task != task:
            continue
        stats.impressions += 1
        key = normalize_query(imp.query)
        if not key:
            continue
        group = groups.get(key)
        if group is None:
            side = imp.side_info
            if cor is not None:
                side = with_cooccurring(side, list(cor(imp.query)))
            request = PromptRequest(task=task, query=imp.query, side_info=side)
            group = _Group(make_task(preset, request))
            groups[key] = group
        queries = clean_list(preset, group.task, imp.queries)
        if not queries:
            stats.lists_dropped += 1
            continue
        text = completion_text(queries)
        # Positions past the cleaned list were clicked on a query the task would not serve.
        hits = sum(1 for p in clicked if p < len(queries))
        if hits and safety is not None and safety.first_reason(queries) is not None:
            stats.unsafe_clicked += 1
            hits = 0
        if hits:
            group.clicked[text] = max(group.clicked.get(text, 0.0), float(hits))
        else:
            group.unclicked.add(text)
    stats.queries = len(groups)
    pairs: list[Pair] = []
    for group in groups.values():
        rejected = [(t, 0.0) for t in sorted(group.unclicked) if t not in group.clicked]
        if not group.clicked or not rejected:
            continue
        stats.with_both += 1
        chosen = sorted(group.clicked.items())
        picked = select_pair(chosen, rejected, 1.0, max_length_gap)
        if picked is None:
            stats.length_gap_refused += 1
            continue
        (c, rc), (r, rr) = picked
        pairs.append(Pair(group.task.prompt, c, r, rc, rr))
    random.Random(seed).shuffle(pairs)
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    stats.pairs = len(pairs)
    if pairs:
        stats.chosen_chars = sum(len(p.chosen) for p in pairs) / len(pairs)
        stats.rejected_chars = sum(len(p.rejected) for p in pairs) / len(pairs)
    return pairs, stats
