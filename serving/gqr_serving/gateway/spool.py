"""The impression spool: append-only files on local disk, safe to crash in and to share.

Layout of the spool folder (one per replica, or shared by processes on one host)::

    spool-<token>.lock          flock held by the live process that owns <token>
    spool-<token>.jsonl         the file that process appends to now
    spool-<token>.jsonl.<ns>    files set aside for replay (its own, or adopted)

``<token>`` is ``<pid>-<random>``: unique per process start, so a restarted process never
appends to a file a crash left with a torn last line (readers skip that line; it was never
acknowledged). A process starting, and every replay, adopts the files of each token whose
lock is free (its process died): it renames them into its own ready files, then removes the
lock. Files of the layout before tokens (``spool-<pid>.jsonl`` without a lock) are adopted
too.

``append(line, sync=False)`` reaches the kernel (it survives the process being SIGKILLed or
OOM-killed); ``sync=True`` also fsyncs the file (and the folder when it created the file), so
the line survives the node losing power once the call returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from gqr_serving.logstore.segment import ensure_dir, fsync_dir
from gqr_serving.logstore.staging import try_flock

log = logging.getLogger("gqr_serving.gateway")
PREFIX = "spool-"
DATA = ".jsonl"
LOCK = ".lock"


class Spool:
    """The spool files of one process under ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._seq = 0

    @property
    def current(self) -> Path:
        return self.folder / f"{PREFIX}{self.token}{DATA}"

    def open(self) -> None:
        """Create the folder and take this process's lock (idempotent)."""
        with self._lock:
            if self._lock_fd is not None:
                return
            ensure_dir(self.folder)
            # Locked before its name appears: an adopter never sees our lock free.
            path = self.folder / f"{PREFIX}{self.token}{LOCK}"
            tmp = self.folder / f".{path.name}.new"
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(tmp, path)
            fsync_dir(self.folder)
            self._lock_fd = fd

    def close(self) -> None:
        """Close the current file and release the lock; an empty spool leaves no file."""
        with self._lock:
            self._close_current()
            if self.current.exists() and self.current.stat().st_size == 0:
                self.current.unlink()
            if self._lock_fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.folder / f"{PREFIX}{self.token}{LOCK}")
                os.close(self._lock_fd)
                self._lock_fd = None

    def size(self) -> int:
        """Bytes in this process's spool files (adopted ones included)."""
        total = 0
        for p in self.folder.glob(f"{PREFIX}{self.token}{DATA}*"):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def append(self, line: bytes, *, sync: bool = False) -> None:
        """Append one whole line (ending in a newline); OSError when the disk refuses.

        A failed append ends the current file (a later line never follows a partial one)."""
        with self._lock:
            created = self._fd is None
            if self._fd is None:
                self._fd = os.open(
                    self.current, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
                )
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                if sync:
                    os.fsync(self._fd)
                    if created:
                        fsync_dir(self.folder)
            except OSError:
                self._set_aside()
                raise

    def ready_files(self) -> list[Path]:
        """Set the current file aside, adopt dead processes' files; every file to replay,
        oldest first."""
        with self._lock:
            self._set_aside()
        self.adopt()
        mine = f"{PREFIX}{self.token}{DATA}."
        return sorted(
            (p for p in self.folder.glob(f"{mine}*") if p.name[len(mine) :].isdigit()),
            key=lambda p: int(p.name[len(mine) :]),
        )

    def adopt(self) -> int:
        """Take over the files of every token whose process is gone; how many were taken."""
        taken = 0
        for token in self._tokens() - {self.token}:
            lock = self.folder / f"{PREFIX}{token}{LOCK}"
            fd = try_flock(lock)
            if fd is None:
                continue  # its process is alive
            try:
                files = sorted(self.folder.glob(f"{PREFIX}{token}{DATA}*"))
                for p in files:
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(p, self._ready_name())
                        taken += 1
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                fsync_dir(self.folder)
            finally:
                os.close(fd)
        if taken:
            log.warning("impression spool: took over %d file(s) left by a stopped process", taken)
        return taken

    # -- internals ----------------------------------------------------------------------

    def _tokens(self) -> set[str]:
        tokens = set()
        for p in self.folder.glob(f"{PREFIX}*"):
            name = p.name[len(PREFIX) :]
            for suffix in (LOCK, DATA):
                if suffix in name:
                    tokens.add(name.split(suffix, 1)[0])
                    break
        return tokens

    def _ready_name(self) -> Path:
        self._seq += 1
        return self.folder / f"{PREFIX}{self.token}{DATA}.{time.time_ns() + self._seq}"

    def _close_current(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _set_aside(self) -> None:
        """Close the current file and rename it to a ready file (caller holds the lock)."""
        self._close_current()
        if self.current.exists():
            if self.current.stat().st_size == 0:
                self.current.unlink()
                return
            os.replace(self.current, self._ready_name())
            fsync_dir(self.folder)
