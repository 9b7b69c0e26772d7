"""Object storage roots (fsspec URLs): staged locally, uploaded whole, crash leftovers recovered."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import fsspec
import pytest
from logstore_factories import T0, impression

from gqr_serving.logstore import LogReader, LogWriter
from gqr_serving.logstore.staging import _try_lock

T = TypeVar("T")


def test_memory_store_round_trip_after_close(tmp_path: Path, memory_root: str) -> None:
    staging = tmp_path / "staging"
    with LogWriter(memory_root, "w", staging_dir=staging) as w:
        w.write_many([impression(i) for i in range(50)])
        # Acknowledged = durable in the local staging folder; uploaded when the segment closes.
        assert list((staging / "w" / "impression" / "2024-05-01").iterdir())
    r = LogReader(memory_root)
    assert len(list(r.read("impression"))) == 50 and r.problems == []
    fs = fsspec.filesystem("memory")
    assert fs.ls("/logstore-test/impression/2024-05-01", detail=False) == [
        "/logstore-test/impression/2024-05-01/w-00000001.jsonl"
    ]
    assert not (staging / "w").exists()


def test_rotated_segments_are_uploaded_while_writing(tmp_path: Path, memory_root: str) -> None:
    line = len(impression(0).model_dump_json()) + 1
    with LogWriter(memory_root, "w", staging_dir=tmp_path, max_segment_bytes=10 * line) as w:
        w.write_many([impression(i) for i in range(25)])
        w.write(impression(25))  # rotates the full segments out
        w.rotate()
        r = LogReader(memory_root)
        assert len(_wait_for(lambda: list(r.read("impression")), 26)) == 26


def _wait_for(fn: Callable[[], list[T]], n: int) -> list[T]:
    deadline = time.monotonic() + 5
    while True:
        got = fn()
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def test_file_url_store_uploads_atomically(tmp_path: Path) -> None:
    root = (tmp_path / "remote").as_uri()
    with LogWriter(root, "w", staging_dir=tmp_path / "staging") as w:
        w.write_many([impression(i) for i in range(10)])
    day = tmp_path / "remote" / "impression" / "2024-05-01"
    assert [p.name for p in day.iterdir()] == ["w-00000001.jsonl"]  # no temp file left
    assert len(list(LogReader(root).read("impression", T0))) == 10


def test_a_crashed_writers_staged_segments_are_uploaded_by_the_next_writer(
    tmp_path: Path, memory_root: str
) -> None:
    staging = tmp_path / "staging"
    # What a SIGKILLed writer leaves: acknowledged lines plus a torn tail, lock not held.
    dead = staging / "dead-writer" / "impression" / "2024-05-01"
    dead.mkdir(parents=True)
    (staging / "dead-writer" / ".lock").touch()
    good = b"".join(impression(i).model_dump_json().encode() + b"\n" for i in range(3))
    (dead / "dead-writer-00000001.jsonl").write_bytes(good + b'{"kind": "impr')
    with LogWriter(memory_root, "new", staging_dir=staging) as w:
        w.write(impression(99))
    r = LogReader(memory_root)
    ids = sorted(x.impression_id for x in r.read("impression"))
    assert ids == ["imp-0", "imp-1", "imp-2", "imp-99"]
    assert r.problems == []  # the torn tail was never acknowledged: dropped before upload
    assert not (staging / "dead-writer").exists()


def test_a_live_writers_staging_folder_is_left_alone(tmp_path: Path, memory_root: str) -> None:
    staging = tmp_path / "staging"
    live = staging / "live" / "impression" / "2024-05-01"
    live.mkdir(parents=True)
    (live / "live-00000001.jsonl").write_bytes(impression(1).model_dump_json().encode() + b"\n")
    fd = _try_lock(staging / "live")
    assert fd is not None
    try:
        with LogWriter(memory_root, "other", staging_dir=staging) as w:
            w.write(impression(2))
        assert (live / "live-00000001.jsonl").exists()
        with pytest.raises(RuntimeError, match="in use by another live writer"):
            LogWriter(memory_root, "live", staging_dir=staging)
    finally:
        os.close(fd)


def test_an_idle_writer_still_uploads_aged_segments(tmp_path: Path, memory_root: str) -> None:
    with LogWriter(memory_root, "w", staging_dir=tmp_path, max_segment_seconds=0.1) as w:
        w.write(impression(1))
        # No further write, rotate or close: the upload thread rotates the aged segment.
        got = _wait_for(lambda: list(LogReader(memory_root).read("impression")), 1)
        assert [x.impression_id for x in got] == ["imp-1"]
