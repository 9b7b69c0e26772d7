"""Sessions -> (q, q_next, count): normalise, split on long gaps, drop self-transitions, prune."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gqr_serving.cor.normalize import normalize_query

Event = tuple[float | None, str]
"""(seconds since some epoch, or None when the source has no times; the raw query)."""
Session = tuple[str, Sequence[Event]]
Transition = tuple[str, str, int]


@dataclass(frozen=True)
class ExtractConfig:
    """Extraction rules, every one a flag of ``cor-build``."""

    max_gap_s: float | None = 1800.0
    """Consecutive queries further apart than this start a new session (None: never split)."""
    top_m: int = 20
    """Keep at most this many successors per query (the most frequent)."""
    min_count: int = 1
    """Drop pairs seen fewer times than this."""

    def __post_init__(self) -> None:
        if self.max_gap_s is not None and self.max_gap_s <= 0:
            raise ValueError(f"max_gap_s must be > 0 or None, got {self.max_gap_s}")
        if self.top_m < 1 or self.min_count < 1:
            raise ValueError(
                f"top_m and min_count must be >= 1, got {self.top_m}, {self.min_count}"
            )


@dataclass
class ExtractStats:
    sessions: int = 0
    segments: int = 0
    events: int = 0
    empty_queries: int = 0
    self_transitions: int = 0
    transitions: int = 0
    query_counts: Counter[str] = field(default_factory=Counter)

    def metrics(self) -> dict[str, float]:
        return {
            "sessions": self.sessions,
            "segments": self.segments,
            "events": self.events,
            "empty_queries": self.empty_queries,
            "self_transitions": self.self_transitions,
            "transitions": self.transitions,
            "distinct_queries": len(self.query_counts),
        }


def segments(events: Sequence[Event], max_gap_s: float | None) -> list[list[str]]:
    """Normalised queries of one session, cut where the time gap exceeds ``max_gap_s``.

    Events without a time never cut; empty queries are skipped.
    """
    out: list[list[str]] = []
    current: list[str] = []
    last_ts: float | None = None
    for ts, raw in events:
        if (
            max_gap_s is not None
            and ts is not None
            and last_ts is not None
            and ts - last_ts > max_gap_s
            and current
        ):
            out.append(current)
            current = []
        if ts is not None:
            last_ts = ts
        q = normalize_query(raw)
        if q:
            current.append(q)
    if current:
        out.append(current)
    return out


def count_transitions(
    sessions: Iterable[Session], config: ExtractConfig, stats: ExtractStats | None = None
) -> Counter[tuple[str, str]]:
    """Counts of consecutive (q, q_next) within each gap-split segment, repeats dropped.

    A repeated query (q, q) is not a transition, and it does not break the chain: a, a, b
    gives one a -> b.
    """
    stats = stats if stats is not None else ExtractStats()
    counts: Counter[tuple[str, str]] = Counter()
    for _, events in sessions:
        stats.sessions += 1
        stats.events += len(events)
        for seg in segments(events, config.max_gap_s):
            stats.segments += 1
            stats.query_counts.update(seg)
            prev: str | None = None
            for q in seg:
                if prev is not None:
                    if q == prev:
                        stats.self_transitions += 1
                        continue
                    counts[(prev, q)] += 1
                    stats.transitions += 1
                prev = q
    stats.empty_queries = stats.events - sum(stats.query_counts.values())
    return counts


def prune(counts: Counter[tuple[str, str]], config: ExtractConfig) -> list[Transition]:
    """Pairs with count >= min_count, at most top_m successors per q (ties: alphabetical).

    Sorted by q, then count descending: the order the artifact stores.
    """
    by_q: dict[str, list[tuple[str, int]]] = {}
    for (q, nxt), c in counts.items():
        if c >= config.min_count:
            by_q.setdefault(q, []).append((nxt, c))
    rows: list[Transition] = []
    for q in sorted(by_q):
        succ = sorted(by_q[q], key=lambda r: (-r[1], r[0]))[: config.top_m]
        rows.extend((q, nxt, c) for nxt, c in succ)
    return rows


def extract(
    sessions: Iterable[Session], config: ExtractConfig
) -> tuple[list[Transition], ExtractStats]:
    stats = ExtractStats()
    rows = prune(count_transitions(sessions, config, stats), config)
    return rows, stats
