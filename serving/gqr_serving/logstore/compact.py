"""Compaction: each closed ``<kind>/<day>`` folder's JSONL segments into one Parquet file.

``compact(root)`` writes ``<root>/<kind>/<day>/compacted.parquet`` (``columnar``) for every
impression, click and query day folder that is closed: its whole UTC day ended more than
``open_guard_s`` ago (65 minutes: a writer's ``max_segment_seconds`` plus slack, the rule
retention uses) and, on a local root, none of its segments is flock'ed by a writer or was
written within that guard. On an object store every object is a closed segment. The JSONL
segments stay where they are (the write path and the source of truth); a folder whose
segments changed since it was compacted (a late upload) is compacted again, and until then
readers take the late segments from JSONL. The file appears whole: a local one is written
aside and renamed, an object is one upload. Several compactors may run at once.

Readers (``LogReader`` and ``logstore.engine``) use the Parquet file for the segments it
lists and JSONL for everything else, so compaction never changes what a read returns.

    gqr logs-compact --root s3://bucket/logs   (where gqr_serving alone is installed, as in the
    gateway image: python -m gqr_serving.logstore.compact --root ...)
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from gqr_serving.logstore.columnar import (
    BATCH_ROWS,
    COMPACTABLE,
    COMPACTED_NAME,
    SCHEMA,
    Manifest,
    RecordingLog,
    ord_base,
    to_batch,
)
from gqr_serving.logstore.layout import Kind, Record
from gqr_serving.logstore.reader import DayFolder, LogReader
from gqr_serving.logstore.retention import OPEN_GUARD_S, is_closed
from gqr_serving.logstore.segment import fsync_dir


@dataclass
class CompactResult:
    """What one run did, as ``<kind>/<day>`` names."""

    compacted: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)
    """Closed by the clock but with a segment still locked or recently written: next run."""
    rows: int = 0


def compact(
    root: str | os.PathLike[str],
    *,
    now: datetime | None = None,
    storage_options: dict[str, Any] | None = None,
    open_guard_s: float = OPEN_GUARD_S,
    kinds: Sequence[Kind] = COMPACTABLE,
    progress: Callable[[str], None] | None = None,
) -> CompactResult:
    """Compact every closed day folder of ``kinds`` under ``root`` that is not up to date."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()}: expected an aware datetime (UTC)")
    for kind in kinds:
        if kind not in COMPACTABLE:
            raise ValueError(f"kind {kind!r} is not compacted; expected some of {COMPACTABLE}")
    reader = LogReader(root, storage_options=storage_options)
    local = isinstance(reader.fs, LocalFileSystem)
    if not local:
        reader.fs.invalidate_cache()  # a cached instance may hold an old listing
    result = CompactResult()
    for kind in kinds:
        for d in reader.day_folders(kind):
            name = f"{kind}/{d.day.isoformat()}"
            day_end = datetime(d.day.year, d.day.month, d.day.day, tzinfo=UTC) + timedelta(1)
            if not d.segments or (now - day_end).total_seconds() < open_guard_s:
                continue
            names = [p.rsplit("/", 1)[-1] for p in d.segments]
            if d.compacted is not None and reader.manifest(d.compacted).segments == names:
                result.up_to_date.append(name)
                continue
            if local and not all(is_closed(p, open_guard_s) for p in d.segments):
                result.open.append(name)
                continue
            result.rows += _write_day(reader, kind, d, names)
            result.compacted.append(name)
            if progress is not None:
                progress(f"compacted {name}: {len(names)} segment(s)")
    return result


def _write_day(reader: LogReader, kind: Kind, d: DayFolder, names: list[str]) -> int:
    """Write the day's compacted file; returns its row count."""
    target = f"{d.path}/{COMPACTED_NAME}"
    local = isinstance(reader.fs, LocalFileSystem)
    tmp = f"{d.path}/.{COMPACTED_NAME}.{secrets.token_hex(4)}" if local else target
    problems = RecordingLog()
    rows = 0
    with reader.fs.open(tmp, "wb") as f:
        writer = pq.ParquetWriter(f, SCHEMA[kind], compression="zstd")
        try:
            pending: list[Record] = []
            for path in d.segments:
                for record in reader._read_file(kind, path, problems):
                    pending.append(record)
                    if len(pending) >= BATCH_ROWS:
                        writer.write_batch(to_batch(kind, pending, ord_base(d.day) + rows))
                        rows += len(pending)
                        pending = []
            if pending:
                writer.write_batch(to_batch(kind, pending, ord_base(d.day) + rows))
                rows += len(pending)
            manifest = Manifest.of(kind, d.day.isoformat(), names, problems)
            writer.add_key_value_metadata(manifest.encode())
        finally:
            writer.close()
        if local:
            f.flush()
            os.fsync(f.fileno())
    if local:
        os.replace(tmp, target)
        fsync_dir(Path(d.path))
    else:
        reader.fs.invalidate_cache(d.path)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gqr_serving.logstore.compact",
        description="Compact the closed day folders of a log store into Parquet (idempotent).",
    )
    p.add_argument("--root", required=True, help="Log store root: a folder or an fsspec URL.")
    args = p.parse_args(argv)
    result = compact(args.root, progress=lambda line: print(line, flush=True))
    print(summary(result))
    return 0


def summary(result: CompactResult) -> str:
    """One line on what a run did (the CLIs print it)."""
    return (
        f"compacted {len(result.compacted)} day folder(s) ({result.rows} records); "
        f"{len(result.up_to_date)} up to date; {len(result.open)} still open (next run)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
