"""Writing and reading back: layout, kinds, windows, rotation, threads, durability calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from logstore_factories import T0, click, impression, query

from gqr_contracts.job import JobResult
from gqr_serving.logstore import LogReader, LogWriter, WriterFailedError, last_days
from gqr_serving.logstore.segment import Segment


def test_records_of_every_kind_round_trip_as_compact_json_lines(tmp_path: Path) -> None:
    job = JobResult(
        job="ctr-train",
        status="succeeded",
        artifact_uri="pvc://store/ctr/7",
        finished=T0,
        metrics={"auc": 0.7},
    )
    records = [impression(1), click(1, 2), query("s", "hello"), job]
    with LogWriter(tmp_path, "w1") as w:
        for rec in records:
            w.write(rec)

    seg = tmp_path / "impression" / "2024-05-01" / "w1-00000001.jsonl"
    assert seg.read_text() == records[0].model_dump_json() + "\n"
    r = LogReader(tmp_path)
    assert list(r.read("impression")) == [records[0]]
    assert list(r.read("click")) == [records[1]]
    assert list(r.read("query")) == [records[2]]
    assert list(r.read("job_result")) == [job]
    assert r.problems == []


def test_records_are_partitioned_by_their_own_day_even_when_late(tmp_path: Path) -> None:
    days = [T0 + timedelta(days=d) for d in (2, 0, 1, 0)]  # out of order
    with LogWriter(tmp_path, "w") as w:
        w.write_many([impression(i, ts) for i, ts in enumerate(days)])
    assert sorted(p.name for p in (tmp_path / "impression").iterdir()) == [
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
    ]
    r = LogReader(tmp_path)
    day2 = list(r.read("impression", T0 + timedelta(days=1), T0 + timedelta(days=2)))
    assert [x.impression_id for x in day2] == ["imp-2"]


def test_window_is_half_open_and_only_opens_the_days_it_needs(tmp_path: Path) -> None:
    ts = [T0 - timedelta(days=3), T0 - timedelta(seconds=1), T0, T0 + timedelta(days=1)]
    with LogWriter(tmp_path, "w") as w:
        w.write_many([impression(i, t) for i, t in enumerate(ts)])
    r = LogReader(tmp_path)
    got = [x.impression_id for x in r.read("impression", T0 - timedelta(hours=1), ts[3])]
    assert got == ["imp-1", "imp-2"]
    files = r.segment_files("impression", T0 - timedelta(hours=1), ts[3])
    assert [Path(f).parent.name for f in files] == ["2024-05-01", "2024-05-02"]
    assert len(list(r.read("impression"))) == 4


def test_naive_window_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no timezone"):
        LogReader(tmp_path).read("impression", datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="unknown record kind"):
        LogReader(tmp_path).read("impressions")  # type: ignore[call-overload]


def test_last_days_is_n_whole_days_ending_now() -> None:
    now = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)
    assert last_days(14, now) == (datetime(2024, 5, 1, 10, 30, tzinfo=UTC), now)
    start, end = last_days(1)
    assert end - start == timedelta(days=1) and end.tzinfo is not None
    with pytest.raises(ValueError):
        last_days(-1, now)


def test_segments_rotate_by_size(tmp_path: Path) -> None:
    line = len(impression(0).model_dump_json()) + 1
    with LogWriter(tmp_path, "w", max_segment_bytes=line * 10) as w:
        for i in range(35):
            w.write(impression(i))
    files = sorted((tmp_path / "impression" / "2024-05-01").iterdir())
    assert len(files) == 4
    assert all(f.stat().st_size <= line * 10 for f in files)
    assert len(list(LogReader(tmp_path).read("impression"))) == 35


def test_segments_rotate_by_age(tmp_path: Path) -> None:
    with LogWriter(tmp_path, "w", max_segment_seconds=0.05) as w:
        w.write(impression(1))
        threading.Event().wait(0.1)
        w.write(impression(2))
    assert len(list((tmp_path / "impression" / "2024-05-01").iterdir())) == 2


def test_a_reused_writer_id_never_overwrites_old_segments(tmp_path: Path) -> None:
    for i in range(2):
        with LogWriter(tmp_path, "pod-0") as w:
            w.write(impression(i))
    assert len(list(LogReader(tmp_path).read("impression"))) == 2


def test_write_returns_only_after_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_sync = Segment.sync

    def counting_sync(self: Segment) -> None:
        real_sync(self)
        synced.append(self.size)

    monkeypatch.setattr(Segment, "sync", counting_sync)
    with LogWriter(tmp_path, "w") as w:
        w.write(impression(1))
        assert (
            synced
            and synced[-1] == (tmp_path / "impression/2024-05-01/w-00000001.jsonl").stat().st_size
        )
        n = len(synced)
        w.write_many([impression(i) for i in range(100)])
        assert len(synced) == n + 1  # one group commit for the batch


def test_concurrent_threads_lose_nothing_and_share_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = 0
    real_sync = Segment.sync

    def counting_sync(self: Segment) -> None:
        nonlocal syncs
        syncs += 1
        real_sync(self)

    monkeypatch.setattr(Segment, "sync", counting_sync)
    with LogWriter(tmp_path, "w") as w:

        def work(t: int) -> None:
            for i in range(100):
                w.write(impression(f"{t}-{i}"))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    r = LogReader(tmp_path)
    ids = [x.impression_id for x in r.read("impression")]
    assert sorted(ids) == sorted(f"imp-{t}-{i}" for t in range(8) for i in range(100))
    assert r.problems == [] and syncs <= 800


def test_a_failed_fsync_is_never_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = LogWriter(tmp_path, "w")
    w.write(impression(1))

    def failing_sync(self: Segment) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Segment, "sync", failing_sync)
    with pytest.raises(OSError, match="Input/output"):
        w.write(impression(2))
    with pytest.raises(WriterFailedError, match="failed earlier"):
        w.write(impression(3))
    w.close()


def test_only_records_are_accepted(tmp_path: Path) -> None:
    with LogWriter(tmp_path, "w") as w, pytest.raises(TypeError, match="cannot log a dict"):
        w.write({"kind": "impression"})  # type: ignore[arg-type]


def test_closed_writer_refuses_writes(tmp_path: Path) -> None:
    w = LogWriter(tmp_path, "w")
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(impression(1))


def test_bad_writer_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writer_id"):
        LogWriter(tmp_path, "../escape")
