"""Retention on a local root: day folders older than the window go, everything inside it stays,
and a segment a writer still has open is never deleted, however old its day."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from testsupport.records import impression

from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.logstore.retention import cutoff_day, main, prune
from gqr_serving.records import ClickRecord, ImpressionRecord

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def imp(iid: str, ts: datetime) -> ImpressionRecord:
    return impression(iid, ts, "q", ["a", "b"], session_id="", user_key="", deployment="d")


def age_files(root: Path, seconds: float = 3 * 86400) -> None:
    """Make every segment look untouched for a while (as old segments are)."""
    old = time.time() - seconds
    for p in root.rglob("*.jsonl"):
        os.utime(p, (old, old))


def ids(root: Path) -> list[str]:
    return sorted(r.impression_id for r in LogReader(root).read("impression"))


def test_old_days_go_the_window_stays(tmp_path: Path) -> None:
    days_ago = {"d40": 40, "d31": 31, "d30": 30, "d29": 29, "d0": 0}
    with LogWriter(tmp_path, writer_id="w1") as w:
        for name, n in days_ago.items():
            w.write(imp(name, NOW - timedelta(days=n)))
        w.write(ClickRecord(impression_id="d40", position=0, ts=NOW - timedelta(days=40)))
    age_files(tmp_path)
    result = prune(tmp_path, 30, now=NOW)
    # The day holding NOW - 30d is partly inside the window: kept whole.
    assert result.cutoff == cutoff_day(30, NOW) == (NOW - timedelta(days=30)).date()
    assert ids(tmp_path) == ["d0", "d29", "d30"]
    assert result.deleted_files == {"impression": 2, "click": 1}
    assert sorted(result.deleted_days) == sorted(
        [
            f"impression/{(NOW - timedelta(days=40)).date()}",
            f"impression/{(NOW - timedelta(days=31)).date()}",
            f"click/{(NOW - timedelta(days=40)).date()}",
        ]
    )
    assert not (tmp_path / "click").exists() or not list((tmp_path / "click").iterdir())
    assert prune(tmp_path, 30, now=NOW).deleted_files == {}  # idempotent


def test_an_open_segment_is_kept_however_old(tmp_path: Path) -> None:
    old = NOW - timedelta(days=90)
    with LogWriter(tmp_path, writer_id="closed") as w:
        w.write(imp("closed-old", old))
    writer = LogWriter(tmp_path, writer_id="open")  # a late record, e.g. a spool replayed
    writer.write(imp("open-old", old))
    age_files(tmp_path)  # the open one looks old too: only its lock tells
    result = prune(tmp_path, 30, now=NOW)
    assert len(result.kept_open) == 1 and "open-" in result.kept_open[0]
    writer.write(imp("open-old-2", old))  # the writer goes on appending: nothing lost
    assert ids(tmp_path) == ["open-old", "open-old-2"]
    writer.close()
    age_files(tmp_path)
    assert prune(tmp_path, 30, now=NOW).deleted_files == {"impression": 1}
    assert ids(tmp_path) == [] and not list((tmp_path / "impression").iterdir())


def test_a_recently_written_segment_counts_as_open(tmp_path: Path) -> None:
    with LogWriter(tmp_path, writer_id="w") as w:
        w.write(imp("fresh", NOW - timedelta(days=90)))
    assert prune(tmp_path, 30, now=NOW).kept_open  # modified seconds ago
    assert ids(tmp_path) == ["fresh"]
    assert prune(tmp_path, 30, now=NOW, open_guard_s=0).deleted_files == {"impression": 1}


def test_dry_run_and_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = (NOW - timedelta(days=90)).date().isoformat()
    with LogWriter(tmp_path, writer_id="w") as w:
        w.write(imp("old", NOW - timedelta(days=90)))
    (tmp_path / "impression" / old / "notes.txt").write_text("not a segment")
    (tmp_path / "impression" / "not-a-day").mkdir()
    age_files(tmp_path)
    assert main(["--root", str(tmp_path), "--days", "30", "--dry-run"]) == 0
    assert "would delete 1 segment(s)" in capsys.readouterr().out
    assert ids(tmp_path) == ["old"]
    assert main(["--root", str(tmp_path), "--days", "30"]) == 0
    assert ids(tmp_path) == []
    assert (tmp_path / "impression" / old / "notes.txt").exists()  # never someone else's file
    assert (tmp_path / "impression" / "not-a-day").is_dir()


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match="days=0: expected a whole number of days >= 1"):
        cutoff_day(0)
    with pytest.raises(ValueError, match="aware datetime"):
        cutoff_day(3, datetime(2025, 1, 1))
