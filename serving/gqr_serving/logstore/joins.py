"""The two joins training needs: impressions with their clicks, and queries by session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from gqr_serving.logstore.problems import ReaderStats
from gqr_serving.records import ImpressionRecord, QueryLogRecord

if TYPE_CHECKING:
    from gqr_serving.logstore.reader import LogReader


def impressions_with_clicks(
    reader: LogReader, stats: ReaderStats, start: datetime | None, end: datetime | None
) -> Iterator[tuple[ImpressionRecord, frozenset[int]]]:
    """Clicks in the window are held in memory (they are few); impressions are streamed."""
    clicks: dict[str, set[int]] = {}
    for click in reader.read("click", start, end):
        positions = clicks.setdefault(click.impression_id, set())
        if click.position in positions:
            stats.duplicate_clicks += 1
        positions.add(click.position)
    matched: set[str] = set()
    for imp in reader.read("impression", start, end):
        got = clicks.get(imp.impression_id)
        if not got:
            yield imp, frozenset()
            continue
        if imp.impression_id not in matched:
            matched.add(imp.impression_id)
            shown = len(imp.queries)
            stats.invalid_click_positions += sum(1 for p in got if p >= shown)
        yield imp, frozenset(p for p in got if p < len(imp.queries))
    stats.unmatched_clicks += sum(
        len(positions) for iid, positions in clicks.items() if iid not in matched
    )


def sessions(
    reader: LogReader, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, list[QueryLogRecord]]]:
    by_session: dict[str, list[QueryLogRecord]] = {}
    for q in reader.read("query", start, end):
        by_session.setdefault(q.session_id, []).append(q)
    for queries in by_session.values():
        queries.sort(key=lambda q: q.ts)  # stable: equal timestamps keep storage order
    for sid in sorted(by_session, key=lambda s: (by_session[s][0].ts, s)):
        yield sid, by_session[sid]
