"""Compaction on an S3 log store (a real MinIO): closed days become Parquet objects next to
their segments, every read (records, the training join, COR counts, /v1/stats) gives what it
gave before, and retention removes the Parquet object with its day."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest
from tests.unit.logstore.logstore_factories import random_store
from tests.unit.logstore.test_logstore_columnar import cor, engine_join, record_join

from gqr_serving.gateway.stats import LogStats
from gqr_serving.invalid import InvalidTrafficPolicy
from gqr_serving.logstore import LogReader
from gqr_serving.logstore.columnar import COMPACTED_NAME
from gqr_serving.logstore.compact import compact
from gqr_serving.logstore.retention import prune


@pytest.fixture
def root(s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GQR_LOG_STAGING_DIR", str(tmp_path / "staging"))
    return f"s3://{s3.bucket()}/logs"


def test_compacted_days_on_s3_read_as_before(root: str) -> None:
    day0 = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, microsecond=0)
    random_store(root, 7, day0, days=2)
    start, end = day0, day0 + timedelta(days=2)
    policy = InvalidTrafficPolicy(user_min_impressions=3, user_max_ctr=0.3)
    records = [r.model_dump() for r in LogReader(root).read("impression", start, end)]
    join = record_join(root, start, end, policy)  # type: ignore[arg-type]
    counts = cor(root, start, end, 1800.0)  # type: ignore[arg-type]
    stats = LogStats(root, refresh_s=0, policy=policy).query(5 * 86400)[1]

    result = compact(root)
    assert len(result.compacted) >= 6 and not result.open  # 3 kinds x 2 days (and late clicks)
    fs, base = fsspec.core.url_to_fs(root)
    assert fs.exists(f"{base}/impression/{day0.date()}/{COMPACTED_NAME}")
    assert compact(root).compacted == []  # up to date

    assert [r.model_dump() for r in LogReader(root).read("impression", start, end)] == records
    assert engine_join(root, start, end, policy) == join  # type: ignore[arg-type]
    assert cor(root, start, end, 1800.0) == counts  # type: ignore[arg-type]
    after = LogStats(root, refresh_s=0, policy=policy).query(5 * 86400)[1]
    assert [dataclasses.astuple(r) for r in after] == [dataclasses.astuple(r) for r in stats]

    assert prune(root, 1).deleted_days  # every generated day is past a 1-day retention
    fs.invalidate_cache()
    assert not fs.exists(f"{base}/impression/{day0.date()}/{COMPACTED_NAME}")
    assert list(LogReader(root).read("impression", start, end)) == []
