"""Columnar logs: compacting day folders into Parquet and reading them in the engine changes
nothing a user sees. On generated stores (duplicates, invalid traffic, bad lines, several
segments), the record-at-a-time path and the columnar one give the same records, training
rows, COR counts, /v1/stats rows and counters, before and after compaction."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.logstore.logstore_factories import impression, random_store

from gqr_serving.gateway.stats import LogStats
from gqr_serving.invalid import InvalidTrafficPolicy
from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.logstore.columnar import COMPACTED_NAME
from gqr_serving.logstore.compact import compact
from gqr_serving.logstore.engine import ColumnarLogs
from gqr_serving.logstore.retention import prune
from gqr_serving.records import ImpressionRecord
from gqr_training.cor.extract import ExtractConfig, ExtractStats, count_transitions
from gqr_training.cor.sources import logstore_sessions, logstore_transitions
from gqr_training.ctr.data import read_window

POLICIES = [
    InvalidTrafficPolicy(),
    InvalidTrafficPolicy(user_min_impressions=3, user_max_ctr=0.3),
    InvalidTrafficPolicy(all_positions_n=0, user_max_ctr=1.0),
]
DAY0 = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
LATER = DAY0 + timedelta(days=5)  # every generated day is closed by then


def record_join(root: Path, start: datetime, end: datetime, policy: Any) -> tuple[Any, Any]:
    reader = LogReader(root)
    rows = [
        (imp.model_dump(), sorted(clicked))
        for imp, clicked in reader.impressions_with_clicks(start, end, policy=policy)
    ]
    return rows, reader.stats


def engine_join(root: Path, start: datetime, end: datetime, policy: Any) -> tuple[Any, Any]:
    reader = LogReader(root)
    rows = []
    for batch in ColumnarLogs(reader).impressions_with_clicks(start, end, policy=policy):
        for row in batch.to_pylist():
            clicked = row.pop("clicked")
            row["aux_texts"] = dict(row["aux_texts"])
            rows.append((ImpressionRecord.model_validate(row).model_dump(), sorted(clicked)))
    return rows, reader.stats


def reads(root: Path, start: datetime, end: datetime) -> Iterator[Any]:
    for kind in ("impression", "click", "query"):
        reader = LogReader(root)
        yield [r.model_dump() for r in reader.read(kind, start, end)]
        yield reader.stats, [str(p) for p in reader.problems]


def cor(root: Path, start: datetime, end: datetime, gap: float | None) -> list[Any]:
    config = ExtractConfig(max_gap_s=gap)
    by_records, by_engine = ExtractStats(), ExtractStats()
    expected = count_transitions(logstore_sessions(root, start, end), config, by_records)
    got = logstore_transitions(root, start, end, config, by_engine)
    assert got == expected
    assert by_engine == by_records
    return [expected, by_records]


def arm_rows(root: Path, policy: Any, columnar: bool) -> list[Any]:
    stats = LogStats(str(root), refresh_s=0, policy=policy, columnar=columnar)
    return [dataclasses.astuple(r) for r in stats.query(5 * 86400)[1]]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31),
    policy=st.sampled_from(POLICIES),
    bounds=st.tuples(st.integers(0, 72 * 60), st.integers(0, 72 * 60)),
    gap=st.sampled_from([1800.0, None, 120.0]),
)
def test_columnar_path_gives_what_the_record_path_gives(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    policy: InvalidTrafficPolicy,
    bounds: tuple[int, int],
    gap: float | None,
) -> None:
    root = tmp_path_factory.mktemp("store")
    random_store(root, seed, DAY0)
    lo, hi = sorted(bounds)
    start, end = DAY0 + timedelta(minutes=lo), DAY0 + timedelta(minutes=max(hi, lo + 720))

    expected_join = record_join(root, start, end, policy)
    expected_reads = list(reads(root, start, end))
    expected_cor = cor(root, start, end, gap)
    expected_stats = arm_rows(root, policy, columnar=False)
    expected_window = read_window(root, start, end, 4, columnar=False)
    assert expected_join[0], "the generated window joins some impressions"

    for compacted in (False, True):
        if compacted:
            result = compact(root, now=LATER, open_guard_s=0)  # just written: aged by hand
            assert result.compacted and not result.open
        assert engine_join(root, start, end, policy) == expected_join
        assert list(reads(root, start, end)) == expected_reads
        assert cor(root, start, end, gap) == expected_cor
        assert arm_rows(root, policy, columnar=True) == expected_stats
        assert read_window(root, start, end, 4) == expected_window
    assert arm_rows(root, policy, columnar=False) == expected_stats


T = datetime(2024, 5, 1, 12, tzinfo=UTC)


def age_segments(root: Path) -> None:
    """Segments written just now, dated as written long ago (the open guard is about mtime)."""
    for path in root.rglob("*.jsonl"):
        os.utime(path, (0, 0))


def test_only_closed_days_are_compacted_and_late_segments_still_count(tmp_path: Path) -> None:
    with LogWriter(tmp_path, writer_id="a") as w:
        w.write_many([impression(i, T + timedelta(hours=6 * i)) for i in range(4)])
    day_end = datetime(2024, 5, 2, tzinfo=UTC)
    age_segments(tmp_path)
    # Day 1 ended 30 minutes ago: still open (a writer may still be appending to it).
    early = compact(tmp_path, now=day_end + timedelta(minutes=30))
    assert early.compacted == []
    # A segment a writer holds open (flock'ed) keeps its day open, however old.
    opened = LogWriter(tmp_path, writer_id="b")
    opened.write(impression("open", T))
    age_segments(tmp_path)  # old, but its writer still holds it
    result = compact(tmp_path, now=day_end + timedelta(days=3))
    assert result.compacted == ["impression/2024-05-02"]
    assert result.open == ["impression/2024-05-01"]
    opened.close()
    result = compact(tmp_path, now=day_end + timedelta(days=3))
    assert result.compacted == ["impression/2024-05-01"]
    assert compact(tmp_path, now=day_end + timedelta(days=3)).up_to_date == [
        "impression/2024-05-01",
        "impression/2024-05-02",
    ]
    # A late segment (a crashed writer's leftovers, uploaded later) is read from JSONL until
    # the next compaction folds it in: never lost, never counted twice.
    with LogWriter(tmp_path, writer_id="late") as w:
        w.write(impression("late", T))
    age_segments(tmp_path)
    ids = sorted(r.impression_id for r in LogReader(tmp_path).read("impression"))
    assert ids == ["imp-0", "imp-1", "imp-2", "imp-3", "imp-late", "imp-open"]
    assert compact(tmp_path, now=day_end + timedelta(days=3)).compacted == ["impression/2024-05-01"]
    assert sorted(r.impression_id for r in LogReader(tmp_path).read("impression")) == ids


def test_retention_deletes_the_compacted_file_with_its_day(tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    with LogWriter(tmp_path, writer_id="a") as w:
        w.write(impression("old", old))
    age_segments(tmp_path)
    assert compact(tmp_path).compacted == [f"impression/{old.date()}"]
    assert (tmp_path / "impression" / str(old.date()) / COMPACTED_NAME).exists()
    assert prune(tmp_path, 30).deleted_days == [f"impression/{old.date()}"]
    assert list(LogReader(tmp_path).read("impression")) == []


def test_a_compacted_file_without_a_manifest_is_named_in_the_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with LogWriter(tmp_path, writer_id="a") as w:
        w.write(impression(1, T))
    folder = tmp_path / "impression" / "2024-05-01"
    pq.write_table(pa.table({"x": [1]}), folder / COMPACTED_NAME)
    with pytest.raises(ValueError, match=rf"{COMPACTED_NAME}: no gqr.logstore manifest"):
        list(LogReader(tmp_path).read("impression"))


def test_compact_refuses_a_kind_it_does_not_compact(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind 'job_result' is not compacted"):
        compact(tmp_path, kinds=["job_result"])
