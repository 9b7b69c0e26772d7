"""Prompts from the logs count each impression id once, however often its record was written
(a spool replayed after a crash writes it twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gqr_serving.logstore import LogWriter
from gqr_serving.records import ImpressionRecord
from gqr_training.align.logprompts import prompts_from_logs

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def test_a_replayed_impression_counts_once(tmp_path: Path) -> None:
    records = [
        ImpressionRecord(
            impression_id=f"iid-{i}",
            ts=NOW - timedelta(minutes=i),
            deployment="d",
            task="suggestion",
            arm="stable",
            model_version="v1",
            session_id="",
            user_key="",
            query=f"query number {i}",
            queries=["a", "b"],
        )
        for i in range(200)
    ]
    with LogWriter(tmp_path, writer_id="first") as w:
        w.write_many(records)
    with LogWriter(tmp_path, writer_id="replay") as w:
        w.write_many(records)
    got = prompts_from_logs(str(tmp_path), NOW - timedelta(days=1), NOW + timedelta(hours=1),
                            "suggestion")  # fmt: skip
    assert got.impressions == 200
    assert len(got.train) + len(got.test) == 200
