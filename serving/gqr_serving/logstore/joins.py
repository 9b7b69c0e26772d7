"""The two joins training needs: impressions with their clicks, and queries by session.

They work on record streams (what ``LogReader.read`` yields), so they need no reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gqr_serving.logstore.problems import ReaderStats
from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord


def impressions_with_clicks(
    clicks: Iterable[ClickRecord], impressions: Iterable[ImpressionRecord], stats: ReaderStats
) -> Iterator[tuple[ImpressionRecord, frozenset[int]]]:
    """Clicks are held in memory (they are few, and read first); impressions are streamed."""
    by_impression: dict[str, set[int]] = {}
    for click in clicks:
        positions = by_impression.setdefault(click.impression_id, set())
        if click.position in positions:
            stats.duplicate_clicks += 1
        positions.add(click.position)
    matched: set[str] = set()
    for imp in impressions:
        got = by_impression.get(imp.impression_id)
        if not got:
            yield imp, frozenset()
            continue
        if imp.impression_id not in matched:
            matched.add(imp.impression_id)
            shown = len(imp.queries)
            stats.invalid_click_positions += sum(1 for p in got if p >= shown)
        yield imp, frozenset(p for p in got if p < len(imp.queries))
    stats.unmatched_clicks += sum(
        len(positions) for iid, positions in by_impression.items() if iid not in matched
    )


def sessions(queries: Iterable[QueryLogRecord]) -> Iterator[tuple[str, list[QueryLogRecord]]]:
    by_session: dict[str, list[QueryLogRecord]] = {}
    for q in queries:
        by_session.setdefault(q.session_id, []).append(q)
    for records in by_session.values():
        records.sort(key=lambda q: q.ts)  # stable: equal timestamps keep storage order
    for sid in sorted(by_session, key=lambda s: (by_session[s][0].ts, s)):
        yield sid, by_session[sid]
