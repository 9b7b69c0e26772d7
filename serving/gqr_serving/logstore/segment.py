"""One open segment file on local disk: exclusive create, append whole lines, fsync, close.

Raw file descriptors (no Python buffering) so that a line reaches the kernel in the same
``write`` call that the commit counts, and an fsync covers exactly what was appended.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

# fdatasync still persists the file size (needed to read the data back) but skips mtime.
_sync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(path: Path) -> None:
    """Persist a directory entry (a new file or subfolder) so a crash cannot orphan it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """mkdir -p, fsyncing the parent of every folder created so the new entries survive."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:  # another writer made it first; its fsync covers it
            continue
        fsync_dir(d.parent)


class Segment:
    """An append-only segment this writer created and alone writes to."""

    def __init__(self, path: Path, partition: str, fd: int) -> None:
        self.path = path
        self.partition = partition
        self.size = 0
        self.opened_at = time.monotonic()
        self._fd = fd
        self.closed = False

    @classmethod
    def create(cls, path: Path, partition: str) -> Segment | None:
        """A new, durable empty file at path; None if the name is taken (pick another).

        The file stays flock'ed while open: retention never deletes a locked segment."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        for last in (False, True):
            ensure_dir(path.parent)
            try:
                fd = os.open(path, flags, 0o644)
                break
            except FileExistsError:
                return None
            except FileNotFoundError:
                if last:  # retention removed the (empty, old) folder just now: make it again
                    raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            fsync_dir(path.parent)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, partition, fd)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self.size += n
            view = view[n:]

    def sync(self) -> None:
        _sync(self._fd)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._fd)
