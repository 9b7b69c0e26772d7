"""Record factories for the log store tests (a uniquely named module, imported directly)."""

from __future__ import annotations

from datetime import UTC, datetime

from testsupport import records

from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def impression(i: int | str, ts: datetime = T0, n: int = 3) -> ImpressionRecord:
    queries = [f"q{i}-{k}" for k in range(n)]
    return records.impression(
        f"imp-{i}", ts, f"query {i}", queries, session_id=f"s-{i}", user_key="u"
    )


def click(i: int | str, position: int, ts: datetime = T0) -> ClickRecord:
    return ClickRecord(impression_id=f"imp-{i}", position=position, ts=ts)


def query(session: str, text: str, ts: datetime = T0) -> QueryLogRecord:
    return QueryLogRecord(session_id=session, ts=ts, query=text)
