"""LogReader: stream the records of one kind in a time window, skipping untrustworthy lines.

Only the day folders a window touches are listed. Records come in storage order (day, then
segment file, then line), which is not global ts order; ``sessions`` sorts where order matters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, overload

import fsspec
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from gqr_contracts.job import JobResult
from gqr_serving.invalid import InvalidTrafficPolicy
from gqr_serving.logstore import joins
from gqr_serving.logstore.columnar import (
    BATCH_ROWS,
    COMPACTABLE,
    COMPACTED_NAME,
    Manifest,
    in_window,
    to_records,
)
from gqr_serving.logstore.layout import (
    SEGMENT_SUFFIX,
    Kind,
    Record,
    check_kind,
    day_in_window,
    event_time,
    parse_day,
)
from gqr_serving.logstore.parse import LineError, parse_line
from gqr_serving.logstore.problems import MAX_PROBLEMS_LOGGED, Problem, ProblemLog, ReaderStats
from gqr_serving.logstore.staging import is_url
from gqr_serving.logstore.window import check_window
from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord


@dataclass(frozen=True)
class DayFolder:
    """One ``<kind>/<day>`` folder: its JSONL segments (sorted) and its compacted file."""

    day: date
    path: str
    segments: list[str]
    compacted: str | None


class LogReader:
    """Reads a store written by ``LogWriter``: a local folder or an fsspec URL.

    ``stats`` and ``problems`` accumulate over every read made through this reader.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> None:
        self.root = str(root)
        if is_url(root):
            self.fs, path = fsspec.core.url_to_fs(self.root, **(storage_options or {}))
            self._base = path.rstrip("/")
        else:
            self.fs = LocalFileSystem()
            self._base = os.path.abspath(root)
        self._log = ProblemLog()

    @property
    def stats(self) -> ReaderStats:
        return self._log.stats

    @property
    def problems(self) -> list[Problem]:
        return self._log.problems

    @overload
    def read(
        self, kind: Literal["impression"], start: datetime | None = ..., end: datetime | None = ...
    ) -> Iterator[ImpressionRecord]: ...
    @overload
    def read(
        self, kind: Literal["click"], start: datetime | None = ..., end: datetime | None = ...
    ) -> Iterator[ClickRecord]: ...
    @overload
    def read(
        self, kind: Literal["query"], start: datetime | None = ..., end: datetime | None = ...
    ) -> Iterator[QueryLogRecord]: ...
    @overload
    def read(
        self, kind: Literal["job_result"], start: datetime | None = ..., end: datetime | None = ...
    ) -> Iterator[JobResult]: ...
    @overload
    def read(
        self, kind: Kind, start: datetime | None = ..., end: datetime | None = ...
    ) -> Iterator[Record]: ...

    def read(
        self, kind: Kind, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[Record]:
        """Records of ``kind`` with ``start <= ts < end`` (either bound may be None).

        Job results are filtered on ``finished`` (else ``started``); one with neither is
        kept when its day folder is in the window.
        """
        kind = check_kind(kind)
        start, end = check_window(start, end)
        return self._read(kind, start, end)

    def impressions_with_clicks(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        policy: InvalidTrafficPolicy | None = None,
    ) -> Iterator[tuple[ImpressionRecord, frozenset[int]]]:
        """Each impression in the window with the set of its clicked 0-based positions, each
        id once, invalid traffic left out (``gqr_serving.invalid``; counted in ``stats``).
        With the ``user_ctr`` rule on (the default policy), impressions are read twice: once
        to find the users over the click ceiling, once to join."""
        # A generator, so a bad window raises on the first next(), not at the call.
        policy = policy or InvalidTrafficPolicy()
        clicks = joins.collect_clicks(self.read("click", start, end), self._log.stats)
        drop: set[str] = set()
        if policy.user_max_ctr < 1.0:
            quiet = ProblemLog(_logged=MAX_PROBLEMS_LOGGED + 1)  # the join pass reports
            first = self._read("impression", *check_window(start, end), quiet)
            drop = joins.flag_users(clicks, first, policy)  # type: ignore[arg-type]
        yield from joins.impressions_with_clicks(
            clicks,
            self.read("impression", start, end),
            self._log.stats,
            policy=policy,
            drop_users=drop,
        )

    def sessions(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[tuple[str, list[QueryLogRecord]]]:
        """(session_id, its queries ordered by ts), sessions ordered by their first query."""
        yield from joins.sessions(self.read("query", start, end))

    def segment_files(
        self, kind: Kind, start: datetime | None = None, end: datetime | None = None
    ) -> list[str]:
        """The JSONL segment files of the window's day folders, in storage order (compacted
        days keep theirs: they stay the source of truth)."""
        return [p for d in self.day_folders(kind, start, end) for p in d.segments]

    def day_folders(
        self, kind: Kind, start: datetime | None = None, end: datetime | None = None
    ) -> list[DayFolder]:
        """The day folders a read of this window opens, in read order."""
        kind = check_kind(kind)
        start, end = check_window(start, end)
        days = []
        for entry in self._ls(f"{self._base}/{kind}"):
            day = parse_day(entry.rsplit("/", 1)[-1])
            if day is not None and day_in_window(day, start, end):
                days.append((day, entry))
        out = []
        for day, folder in sorted(days):
            names = [p for p in self._ls(folder) if not p.rsplit("/", 1)[-1].startswith(".")]
            compacted = f"{folder}/{COMPACTED_NAME}"
            out.append(
                DayFolder(
                    day,
                    folder,
                    sorted(p for p in names if p.endswith(SEGMENT_SUFFIX)),
                    compacted if kind in COMPACTABLE and compacted in names else None,
                )
            )
        return out

    def sources(
        self, kind: Kind, start: datetime | None, end: datetime | None, log: ProblemLog
    ) -> tuple[list[str], list[str]]:
        """(compacted files, JSONL segments not in one) of the window; the manifests of the
        compacted files are replayed into ``log`` (what reading their segments skipped)."""
        compacted: list[str] = []
        segments: list[str] = []
        for d in self.day_folders(kind, start, end):
            if d.compacted is not None:
                compacted.append(d.compacted)
            segments.extend(self._uncovered(d, log))
        return compacted, segments

    def _uncovered(self, d: DayFolder, log: ProblemLog) -> list[str]:
        """The day's JSONL segments its compacted file (if any) does not hold; that file's
        manifest is replayed into ``log`` (what reading its segments skipped)."""
        if d.compacted is None:
            return list(d.segments)
        manifest = self.manifest(d.compacted)
        manifest.replay(log)
        covered = set(manifest.segments)
        return [p for p in d.segments if p.rsplit("/", 1)[-1] not in covered]

    def manifest(self, path: str) -> Manifest:
        with self.fs.open(path, "rb") as f:
            return Manifest.decode(pq.ParquetFile(f).metadata.metadata, path)

    # -- internals --------------------------------------------------------------------------

    def _ls(self, path: str) -> list[str]:
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return [str(e).rstrip("/") for e in entries]

    def _read(
        self,
        kind: Kind,
        start: datetime | None,
        end: datetime | None,
        log: ProblemLog | None = None,
    ) -> Iterator[Record]:
        log = log or self._log
        for d in self.day_folders(kind, start, end):
            segments = self._uncovered(d, log)
            if d.compacted is not None:
                yield from self._read_compacted(kind, d.compacted, start, end)
            for path in segments:
                records = self._read_file(kind, path, log)
                if start is None and end is None:
                    yield from records
                    continue
                for record in records:
                    ts = event_time(record)
                    if ts is None or ((start is None or ts >= start) and (end is None or ts < end)):
                        yield record

    def _read_compacted(
        self, kind: Kind, path: str, start: datetime | None, end: datetime | None
    ) -> Iterator[Record]:
        with self.fs.open(path, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
                yield from to_records(kind, in_window(batch, start, end))

    def _read_file(self, kind: Kind, path: str, log: ProblemLog) -> Iterator[Record]:
        stats = log.stats
        stats.files += 1
        # One read per segment (a single GET on object storage; segments are bounded by
        # max_segment_bytes). Split on b"\n" only: str.splitlines would also split inside a
        # record on U+2028 and friends, which JSON leaves unescaped.
        with self.fs.open(path, "rb") as f:
            data: bytes = f.read()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, as every commit does
        for lineno, raw in enumerate(lines, start=1):
            try:
                record = parse_line(kind, raw)
            except LineError as e:
                log.report(e.counter, path, lineno, str(e))
                continue
            stats.records += 1
            yield record  # type: ignore[misc]
        if tail:
            log.report(
                "torn_lines",
                path,
                len(lines) + 1,
                "torn last line (no newline): a write cut short by a crash, never acknowledged",
            )
