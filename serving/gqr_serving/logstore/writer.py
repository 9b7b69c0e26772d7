"""LogWriter: append records to this writer's own segments and acknowledge them once fsync'd.

Group commit: every caller appends its lines under a lock, then waits for a ticket to become
durable. The first waiter that finds no fsync in progress becomes the leader and fsyncs every
dirty segment for everyone queued behind it, so N concurrent writers cost about one fsync.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Any

from gqr_serving.logstore.layout import (
    RECORD_TYPES,
    Record,
    check_writer_id,
    default_writer_id,
    event_time,
    partition_of,
    segment_name,
)
from gqr_serving.logstore.problems import log
from gqr_serving.logstore.segment import Segment
from gqr_serving.logstore.staging import Staging, is_url


class WriterFailedError(OSError):
    """A write or fsync failed; records not acknowledged before it may be lost or partial."""


class LogWriter:
    """Thread-safe writer; ``write`` returns only once the record is durable on disk.

    ``root`` is a local folder (segments are written in place) or an fsspec URL such as
    ``s3://bucket/logs`` (segments are staged under ``staging_dir`` on local disk and each
    closed segment is uploaded whole). Acknowledged means fsync'd on the local disk.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        writer_id: str | None = None,
        *,
        max_segment_bytes: int = 64 << 20,
        max_segment_seconds: float = 3600.0,
        fsync_interval_s: float = 0.005,
        staging_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        max_open_segments: int = 16,
    ) -> None:
        if max_segment_bytes <= 0:
            raise ValueError(f"max_segment_bytes={max_segment_bytes}: expected > 0")
        if max_segment_seconds <= 0:
            raise ValueError(f"max_segment_seconds={max_segment_seconds}: expected > 0")
        if fsync_interval_s < 0:
            raise ValueError(f"fsync_interval_s={fsync_interval_s}: expected >= 0")
        if max_open_segments < 1:
            raise ValueError(f"max_open_segments={max_open_segments}: expected >= 1")
        self.writer_id = check_writer_id(writer_id or default_writer_id())
        self.max_segment_bytes = max_segment_bytes
        self.max_segment_seconds = max_segment_seconds
        self.fsync_interval_s = fsync_interval_s
        self.max_open_segments = max_open_segments

        self._cond = threading.Condition(threading.Lock())
        self._active: OrderedDict[str, Segment] = OrderedDict()  # partition -> segment, LRU
        self._dirty: dict[Segment, None] = {}  # appended to since the last fsync snapshot
        self._retired: list[Segment] = []  # rotated out; closed by the next leader after fsync
        self._written = 0  # last ticket handed out
        self._durable = 0  # every ticket <= this is fsync'd
        self._syncing = False
        self._arriving = 0  # callers encoding a batch that the next fsync should wait for
        self._failed: BaseException | None = None
        self._closed = False
        self._seq = 0
        self._pool: ThreadPoolExecutor | None = None  # parallel fsyncs; only the leader uses it

        self._staging: Staging | None = None
        if is_url(root):
            self._staging = Staging(
                str(root),
                self.writer_id,
                staging_dir=staging_dir,
                storage_options=storage_options,
                on_idle=self._rotate_aged,
                idle_s=min(max_segment_seconds, 60.0),
            )
            self._dir = self._staging.local_dir
        else:
            self._dir = Path(root)
        self.root = str(root)

    # -- public API -------------------------------------------------------------------------

    def write(self, record: Record) -> None:
        """Append one record; returns once it is durable (acknowledged)."""
        self.write_many((record,))

    def write_many(self, records: Iterable[Record]) -> None:
        """Append a batch in one group commit; returns once every record is durable."""
        with self._cond:
            self._check_usable()
            self._arriving += 1
        try:
            batches = _encode(records)
            with self._cond:
                self._check_usable()
                for part, data in batches.items():
                    self._append(part, data)
                self._written += 1
                ticket = self._written
        finally:
            with self._cond:
                self._arriving -= 1
                if self._arriving == 0:
                    self._cond.notify_all()
        if batches:
            self._wait_durable(ticket)

    def flush(self) -> None:
        """Make everything written so far durable (``write`` already does; this is cheap)."""
        with self._cond:
            self._check_usable()
            ticket = self._written
        self._wait_durable(ticket)

    def rotate(self) -> None:
        """Close every open segment now (and, for object storage, queue them for upload)."""
        with self._cond:
            self._check_usable()
            for seg in list(self._active.values()):
                self._retire(seg)
            self._written += 1
            ticket = self._written
        self._wait_durable(ticket)

    def close(self) -> None:
        """Rotate, upload what is staged, release resources. Idempotent."""
        with self._cond:
            if self._closed:
                return
            usable = self._failed is None
        try:
            if usable:
                self.rotate()
        finally:
            with self._cond:
                self._closed = True
                while self._syncing:
                    self._cond.wait()
                for seg in [*self._active.values(), *self._retired, *self._dirty]:
                    seg.close()
                self._active.clear()
                self._retired.clear()
                self._dirty.clear()
            if self._pool is not None:
                self._pool.shutdown()
            if self._staging is not None:
                self._staging.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals (callers hold self._cond unless stated) -------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError(f"LogWriter {self.writer_id} is closed")
        if self._failed is not None:
            raise WriterFailedError(
                f"LogWriter {self.writer_id} failed earlier ({self._failed}); "
                "create a new writer (it starts new segments)"
            ) from self._failed

    def _append(self, part: str, data: bytes) -> None:
        seg = self._active.get(part)
        now = time.monotonic()
        if seg is not None and (
            (seg.size and seg.size + len(data) > self.max_segment_bytes)
            or now - seg.opened_at >= self.max_segment_seconds
        ):
            self._retire(seg)
            seg = None
        if seg is None:
            while len(self._active) >= self.max_open_segments:
                self._retire(next(iter(self._active.values())))
            seg = self._new_segment(part)
            self._active[part] = seg
        self._active.move_to_end(part)
        self._dirty[seg] = None
        try:
            seg.append(data)
        except OSError as e:
            # A short write leaves a partial line: end the segment there so that line stays
            # the last one (a torn tail readers skip) rather than corrupting later lines.
            self._retire(seg)
            raise WriterFailedError(f"appending to {seg.path} failed: {e}") from e

    def _new_segment(self, part: str) -> Segment:
        while True:
            self._seq += 1
            name = segment_name(self.writer_id, self._seq)
            # A reused writer_id (e.g. a restarted pod) must not overwrite its old segments.
            if self._staging is not None and self._staging.remote_exists(f"{part}/{name}"):
                continue
            seg = Segment.create(self._dir / part / name, part)
            if seg is not None:
                return seg

    def _retire(self, seg: Segment) -> None:
        if self._active.get(seg.partition) is seg:
            del self._active[seg.partition]
        self._retired.append(seg)
        self._dirty[seg] = None

    def _wait_durable(self, ticket: int) -> None:
        """Block until ``ticket`` is fsync'd, leading the fsync if nobody else is."""
        with self._cond:
            while self._durable < ticket:
                if self._failed is not None:
                    self._check_usable()
                if self._syncing:
                    self._cond.wait()
                    continue
                self._lead_sync()

    def _lead_sync(self) -> None:
        self._syncing = True
        if self.fsync_interval_s and self._arriving:
            # Bounded wait for callers already encoding a batch: one fsync then covers them.
            self._cond.wait_for(lambda: not self._arriving, timeout=self.fsync_interval_s)
        target = self._written
        dirty = list(self._dirty)
        self._dirty.clear()
        closing, self._retired = self._retired, []
        error: BaseException | None = None
        self._cond.release()
        try:
            self._sync_all(dirty)
        except BaseException as e:
            error = e
        finally:
            self._cond.acquire()
        closed = self._close_all(closing) if error is None else []
        self._syncing = False
        if error is not None:
            # After a failed fsync the page cache state is unknown: never acknowledge again.
            self._failed = error
            for seg in closing:
                seg.close()
            log.error("log writer %s: fsync failed: %s", self.writer_id, error)
        else:
            self._durable = max(self._durable, target)
        self._cond.notify_all()
        if self._staging is not None:
            for seg in closed:
                self._staging.submit(seg.path)
        if error is not None:
            self._check_usable()

    def _sync_all(self, segments: list[Segment]) -> None:
        # Segments of several partitions are fsync'd in parallel: the filesystem merges them
        # into fewer journal commits (about 2x faster for 3 files on ext4).
        if len(segments) <= 1:
            for seg in segments:
                seg.sync()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                4, thread_name_prefix=f"logstore-fsync-{self.writer_id}"
            )
        for future in [self._pool.submit(seg.sync) for seg in segments]:
            future.result()

    def _close_all(self, segments: list[Segment]) -> list[Segment]:
        closed = []
        for seg in segments:
            try:
                seg.close()
                closed.append(seg)
            except OSError as e:  # data is already fsync'd; only the descriptor leaks
                log.warning("closing %s failed: %s", seg.path, e)
        return closed

    def _rotate_aged(self) -> None:
        """Called from the staging thread when idle, so old segments get uploaded anyway."""
        with self._cond:
            if self._closed or self._failed is not None:
                return
            now = time.monotonic()
            aged = [
                s for s in self._active.values() if now - s.opened_at >= self.max_segment_seconds
            ]
            if not aged:
                return
            for seg in aged:
                self._retire(seg)
            self._written += 1
            ticket = self._written
        self._wait_durable(ticket)


def _encode(records: Iterable[Record]) -> dict[str, bytes]:
    """Compact JSON lines grouped by partition (``<kind>/<day>``)."""
    parts: dict[str, list[bytes]] = {}
    names: dict[tuple[str, int], str] = {}  # partition names by (kind, UTC day ordinal)
    for rec in records:
        if not isinstance(rec, RECORD_TYPES):
            raise TypeError(
                f"cannot log a {type(rec).__name__}; expected one of "
                + ", ".join(t.__name__ for t in RECORD_TYPES)
            )
        line = rec.__pydantic_serializer__.to_json(rec)
        ts = event_time(rec)
        key = (rec.kind, ts.astimezone(UTC).toordinal() if ts is not None else 0)
        part = names.get(key)
        if part is None:
            part = names[key] = partition_of(rec)
        parts.setdefault(part, []).append(line)
    return {part: b"\n".join(lines) + b"\n" for part, lines in parts.items()}
