"""Retention: delete the day folders of a log store that are older than the retention window.

``prune(root, days)`` removes, for every record kind, the segments of each day folder whose
whole day ends before ``now - days`` (a folder for day D holds records with ts in
[D, D + 1 day)), then the folder once it is empty. It never deletes:

* anything inside the window (a day folder is kept while any of its day is inside it);
* an open segment, one a writer may still append to. On a local root a writer holds an flock
  on each segment it has open (``segment.Segment``), and a segment modified within
  ``open_guard_s`` (default: a writer's ``max_segment_seconds`` plus 5 minutes) counts as open
  too: a writer never appends to a segment older than that. On an object store segments are
  uploaded only once closed (open ones sit in the writers' local staging folders), so every
  object found is closed; one uploaded after the listing is left for the next prune.

Deletes are idempotent: several processes may prune one root at once.

    python -m gqr_serving.logstore.retention --root s3://bucket/logs --days 30 [--dry-run]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec

from gqr_serving.logstore.columnar import COMPACTED_NAME
from gqr_serving.logstore.layout import KINDS, SEGMENT_SUFFIX, parse_day
from gqr_serving.logstore.problems import log
from gqr_serving.logstore.segment import fsync_dir
from gqr_serving.logstore.staging import is_url

OPEN_GUARD_S = 3600.0 + 300.0  # LogWriter's default max_segment_seconds, plus slack


@dataclass
class PruneResult:
    """What one prune did: per kind, the segment files deleted and the day folders emptied;
    the files kept because they are (or may be) open."""

    cutoff: date
    deleted_files: dict[str, int] = field(default_factory=dict)
    deleted_days: list[str] = field(default_factory=list)
    kept_open: list[str] = field(default_factory=list)


def cutoff_day(days: int, now: datetime | None = None) -> date:
    """Day folders before this day are entirely older than ``days`` days before ``now``."""
    if days < 1:
        raise ValueError(f"days={days}: expected a whole number of days >= 1")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()}: expected an aware datetime (UTC)")
    return (now.astimezone(UTC) - timedelta(days=days)).date()


def prune(
    root: str | os.PathLike[str],
    days: int,
    *,
    now: datetime | None = None,
    storage_options: dict[str, Any] | None = None,
    open_guard_s: float = OPEN_GUARD_S,
    dry_run: bool = False,
) -> PruneResult:
    """Delete what is older than ``days`` days under ``root`` (a folder or an fsspec URL)."""
    result = PruneResult(cutoff=cutoff_day(days, now))
    if is_url(root):
        fs, base = fsspec.core.url_to_fs(str(root), **(storage_options or {}))
        fs.invalidate_cache()  # a cached instance may hold an old listing
        for kind in KINDS:
            _prune_remote(fs, f"{base.rstrip('/')}/{kind}", kind, result, dry_run)
    else:
        for kind in KINDS:
            _prune_local(os.path.join(root, kind), kind, result, open_guard_s, dry_run)
    n = sum(result.deleted_files.values())
    if n or result.kept_open:
        log.info(
            "retention %dd on %s: %d segment(s) before %s deleted%s, %d open one(s) kept",
            days,
            root,
            n,
            result.cutoff,
            " (dry run)" if dry_run else "",
            len(result.kept_open),
        )
    return result


def _old_days(names: Sequence[str], cutoff: date) -> list[str]:
    return sorted(n for n in names if (d := parse_day(n)) is not None and d < cutoff)


def _prune_local(
    base: str, kind: str, result: PruneResult, open_guard_s: float, dry_run: bool
) -> None:
    try:
        days = _old_days(os.listdir(base), result.cutoff)
    except FileNotFoundError:
        return
    for day in days:
        folder = os.path.join(base, day)
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            continue
        if COMPACTED_NAME in names and not dry_run:
            # First: a reader must never take the columnar copy of segments already gone.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, COMPACTED_NAME))
        for name in names:
            if name.startswith(".") or not name.endswith(SEGMENT_SUFFIX):
                continue  # not a segment (an upload in progress, foreign files): kept
            path = os.path.join(folder, name)
            if _delete_if_closed(path, open_guard_s, dry_run):
                result.deleted_files[kind] = result.deleted_files.get(kind, 0) + 1
            elif os.path.exists(path):
                result.kept_open.append(path)
        if dry_run:
            continue
        try:
            os.rmdir(folder)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
            continue
        result.deleted_days.append(f"{kind}/{day}")
        fsync_dir_quietly(base)


def _delete_if_closed(path: str, open_guard_s: float, dry_run: bool) -> bool:
    """Unlink ``path`` unless a writer holds it open or wrote it within ``open_guard_s``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if not _closed(fd, open_guard_s):
            return False
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False  # another pruner was first
        return True
    finally:
        os.close(fd)


def is_closed(path: str, open_guard_s: float = OPEN_GUARD_S) -> bool:
    """Whether no writer may still append to the local segment ``path`` (gone: True)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        return _closed(fd, open_guard_s)
    finally:
        os.close(fd)


def _closed(fd: int, open_guard_s: float) -> bool:
    """Not written within ``open_guard_s`` and not flock'ed by its writer; the lock taken to
    find out is held until ``fd`` is closed."""
    if time.time() - os.fstat(fd).st_mtime < open_guard_s:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its writer has it open
    return True


def fsync_dir_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        fsync_dir(Path(path))


def _prune_remote(fs: Any, base: str, kind: str, result: PruneResult, dry_run: bool) -> None:
    try:
        entries = [str(e).rstrip("/") for e in fs.ls(base, detail=False)]
    except FileNotFoundError:
        return
    by_name = {e.rsplit("/", 1)[-1]: e for e in entries}
    for day in _old_days(list(by_name), result.cutoff):
        folder = by_name[day]
        try:
            files = [str(f) for f in fs.find(folder)]
        except FileNotFoundError:
            continue
        compacted = [f for f in files if f.rsplit("/", 1)[-1] == COMPACTED_NAME]
        if compacted and not dry_run:
            fs.rm(compacted)  # first: never a columnar copy of segments already gone
        segments = [f for f in files if f.endswith(SEGMENT_SUFFIX)]
        if segments and not dry_run:
            fs.rm(segments)  # one batched DELETE on S3; missing objects are not an error
        if segments:
            result.deleted_files[kind] = result.deleted_files.get(kind, 0) + len(segments)
        if not dry_run and len(segments) + len(compacted) == len(files):
            with contextlib.suppress(FileNotFoundError, OSError):
                fs.rmdir(folder)  # object stores have no folders; a local one does
            result.deleted_days.append(f"{kind}/{day}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gqr_serving.logstore.retention",
        description="Delete log store day folders older than --days (never an open segment).",
    )
    p.add_argument("--root", required=True, help="Log store root: a folder or an fsspec URL.")
    p.add_argument("--days", required=True, type=int, help="Days of logs kept (>= 1).")
    p.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
    args = p.parse_args(argv)
    try:
        result = prune(args.root, args.days, dry_run=args.dry_run)
    except ValueError as exc:
        p.error(str(exc))
    total = sum(result.deleted_files.values())
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {total} segment(s) dated before {result.cutoff} "
        f"({', '.join(f'{k}: {n}' for k, n in sorted(result.deleted_files.items())) or 'none'}); "
        f"{len(result.kept_open)} open segment(s) kept"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
