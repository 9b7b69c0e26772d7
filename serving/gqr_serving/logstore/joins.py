"""The two joins training needs: impressions with their clicks, and queries by session.

They work on record streams (what ``LogReader.read`` yields), so they need no reader.
Invalid traffic (``gqr_serving.invalid``, the definition ``/v1/stats`` also applies) is left
out and counted in ``ReaderStats``; each impression id is joined once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gqr_serving.invalid import InvalidTrafficPolicy, UserTally, impression_verdict
from gqr_serving.logstore.problems import ReaderStats
from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord

Clicks = dict[str, dict[int, str | None]]  # impression id -> position -> recorded verdict


def collect_clicks(clicks: Iterable[ClickRecord], stats: ReaderStats) -> Clicks:
    """Clicks by impression, once per (impression, position): the first record's verdict."""
    by_impression: Clicks = {}
    for click in clicks:
        positions = by_impression.setdefault(click.impression_id, {})
        if click.position in positions:
            stats.duplicate_clicks += 1
            continue
        positions[click.position] = click.invalid
    return by_impression


def flag_users(
    clicks: Clicks, impressions: Iterable[ImpressionRecord], policy: InvalidTrafficPolicy
) -> set[str]:
    """Users (hashed keys) the ``user_ctr`` rule leaves out over these impressions."""
    tally, seen = UserTally(), set()
    for imp in impressions:
        if imp.impression_id not in seen:
            seen.add(imp.impression_id)
            tally.add(imp.user_key, bool(clicks.get(imp.impression_id)))
    return tally.flagged(policy)


def impressions_with_clicks(
    clicks: Iterable[ClickRecord] | Clicks,
    impressions: Iterable[ImpressionRecord],
    stats: ReaderStats,
    *,
    policy: InvalidTrafficPolicy | None = None,
    drop_users: set[str] | frozenset[str] = frozenset(),
) -> Iterator[tuple[ImpressionRecord, frozenset[int]]]:
    """Clicks are held in memory (they are few, and read first); impressions are streamed.
    Left out, and counted: a repeated impression id, an impression with invalid traffic,
    every impression of a user in ``drop_users`` (see :func:`flag_users`)."""
    policy = policy or InvalidTrafficPolicy()
    by_impression = clicks if isinstance(clicks, dict) else collect_clicks(clicks, stats)
    seen: set[str] = set()
    for imp in impressions:
        if imp.impression_id in seen:
            stats.duplicate_impressions += 1
            continue
        seen.add(imp.impression_id)
        got = by_impression.get(imp.impression_id) or {}
        shown = len(imp.queries)
        stats.invalid_click_positions += sum(1 for p in got if p >= shown)
        valid = {p: v for p, v in got.items() if p < shown}
        reason = "user_ctr" if imp.user_key and imp.user_key in drop_users else None
        reason = reason or impression_verdict(valid, shown, policy)
        if reason is not None:
            stats.invalid_impressions += 1
            stats.invalid_clicks += len(valid)
            stats.invalid_by_reason[reason] = stats.invalid_by_reason.get(reason, 0) + 1
            continue
        yield imp, frozenset(valid)
    stats.invalid_users += len(drop_users)
    stats.unmatched_clicks += sum(
        len(positions) for iid, positions in by_impression.items() if iid not in seen
    )


def sessions(queries: Iterable[QueryLogRecord]) -> Iterator[tuple[str, list[QueryLogRecord]]]:
    by_session: dict[str, list[QueryLogRecord]] = {}
    for q in queries:
        by_session.setdefault(q.session_id, []).append(q)
    for records in by_session.values():
        records.sort(key=lambda q: q.ts)  # stable: equal timestamps keep storage order
    for sid in sorted(by_session, key=lambda s: (by_session[s][0].ts, s)):
        yield sid, by_session[sid]
