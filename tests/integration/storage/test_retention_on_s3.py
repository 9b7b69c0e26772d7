"""Retention on an S3 log store (a real MinIO): old day folders go, the window stays, and a
segment still open (staged on the writer's local disk) survives to be uploaded afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.logstore.test_logstore_retention import imp

from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.logstore.retention import prune


@pytest.fixture
def root(s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{s3.bucket()}/logs"


def ids(root: str) -> list[str]:
    return sorted(r.impression_id for r in LogReader(root).read("impression"))


def test_retention_on_s3_keeps_the_window_and_open_segments(root: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with LogWriter(root, writer_id="closed", staging_dir=tmp_path / "staging") as w:
        for name, days in {"d45": 45, "d31": 31, "d29": 29, "d0": 0}.items():
            w.write(imp(name, now - timedelta(days=days)))
    open_writer = LogWriter(root, writer_id="open", staging_dir=tmp_path / "staging")
    open_writer.write(imp("open-old", now - timedelta(days=45)))  # staged, not uploaded
    try:
        result = prune(root, 30)
        assert result.deleted_files == {"impression": 2}
        assert ids(root) == ["d0", "d29"]
        assert prune(root, 30).deleted_files == {}  # nothing left to delete: idempotent
    finally:
        open_writer.close()  # uploads the segment that was open during the prune
    assert ids(root) == ["d0", "d29", "open-old"]
    assert prune(root, 30).deleted_files == {"impression": 1}  # closed now: past retention
    assert ids(root) == ["d0", "d29"]
