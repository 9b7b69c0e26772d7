"""Record factories for the log store tests (a uniquely named module, imported directly)."""

from __future__ import annotations

from datetime import UTC, datetime

from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def impression(i: int | str, ts: datetime = T0, n: int = 3) -> ImpressionRecord:
    return ImpressionRecord(
        impression_id=f"imp-{i}",
        ts=ts,
        deployment="local",
        task="suggestion",
        arm="stable",
        model_version="v1",
        session_id=f"s-{i}",
        user_key="u",
        query=f"query {i}",
        queries=[f"q{i}-{k}" for k in range(n)],
    )


def click(i: int | str, position: int, ts: datetime = T0) -> ClickRecord:
    return ClickRecord(impression_id=f"imp-{i}", position=position, ts=ts)


def query(session: str, text: str, ts: datetime = T0) -> QueryLogRecord:
    return QueryLogRecord(session_id=session, ts=ts, query=text)
