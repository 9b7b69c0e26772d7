"""Object-storage support: stage segments on local disk, upload each closed one whole.

Object stores cannot append, so a writer appends and fsyncs under
``<staging_dir>/<writer_id>/<kind>/<day>/`` and a background thread uploads every closed
segment to the same relative path under the root URL, deleting the local copy only after the
upload succeeded. Each writer holds an flock on ``<staging_dir>/<writer_id>/.lock``; a writer
starting up uploads the leftovers of any folder whose lock is free (its owner crashed).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from gqr_serving.logstore.layout import SEGMENT_SUFFIX
from gqr_serving.logstore.problems import log
from gqr_serving.logstore.segment import ensure_dir, fsync_dir

STAGING_ENV = "GQR_LOG_STAGING_DIR"
_RETRY_S = (0.2, 1.0, 5.0)


def is_url(root: str | os.PathLike[str]) -> bool:
    return "://" in str(root)


def default_staging_dir(root: str) -> Path:
    """``$GQR_LOG_STAGING_DIR`` or a per-root folder under the temp dir (set it in pods!)."""
    base = os.environ.get(STAGING_ENV) or os.path.join(tempfile.gettempdir(), "gqr-logstore")
    return Path(base) / hashlib.sha1(root.encode()).hexdigest()[:16]


def truncate_torn_tail(path: Path) -> None:
    """Drop a partial last line left by a crash; it was never acknowledged."""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos - step + nl + 1
                break
            pos -= step
        else:
            keep = 0
        if keep < size:
            log.warning("%s: dropping a torn last line (%d bytes) before upload", path, size - keep)
            f.truncate(keep)
            os.fsync(f.fileno())


class Staging:
    """The local staging folder of one writer and the thread that uploads from it."""

    def __init__(
        self,
        root: str,
        writer_id: str,
        *,
        staging_dir: str | os.PathLike[str] | None,
        storage_options: dict[str, Any] | None,
        on_idle: Callable[[], None],
        idle_s: float,
    ) -> None:
        self.fs, path = fsspec.core.url_to_fs(root, **(storage_options or {}))
        self.remote_root = path.rstrip("/")
        self.base = Path(staging_dir) if staging_dir else default_staging_dir(root)
        self.local_dir = self.base / writer_id
        self._lock_fd: int | None = None
        for pause in (0.2, 0.5, None):
            # Retried: another writer may be recovering a crashed writer's folder of this id.
            ensure_dir(self.local_dir)
            self._lock_fd = _try_lock(self.local_dir)
            if self._lock_fd is not None or pause is None:
                break
            time.sleep(pause)
        if self._lock_fd is None:
            raise RuntimeError(
                f"staging folder {self.local_dir} is in use by another live writer with "
                f"writer_id {writer_id!r}; give each writer process its own writer_id"
            )
        self._on_idle = on_idle
        self._idle_s = idle_s
        self._queue: queue.Queue[tuple[Path, Path] | None] = queue.Queue()
        # Our own leftovers first (a restart reusing this writer_id), then crashed writers'.
        for path_ in sorted(self.local_dir.rglob(f"*{SEGMENT_SUFFIX}")):
            truncate_torn_tail(path_)
            self._queue.put((path_, self.local_dir))
        self._thread = threading.Thread(
            target=self._run, name=f"logstore-upload-{writer_id}", daemon=True
        )
        self._thread.start()

    def remote_exists(self, rel: str) -> bool:
        return bool(self.fs.exists(f"{self.remote_root}/{rel}"))

    def submit(self, path: Path) -> None:
        self._queue.put((path, self.local_dir))

    def close(self) -> None:
        """Upload everything queued, stop the thread, release the lock."""
        self._queue.put(None)
        self._thread.join()
        left = sorted(self.local_dir.rglob(f"*{SEGMENT_SUFFIX}"))
        if left:
            log.error(
                "%d staged segment(s) of %s could not be uploaded; they stay in %s and the "
                "next writer using this staging folder uploads them",
                len(left),
                self.remote_root,
                self.local_dir,
            )
        else:
            shutil.rmtree(self.local_dir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the upload thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._recover_crashed()
        except Exception:
            log.exception("recovering crashed writers' staged segments failed")
        while True:
            try:
                item = self._queue.get(timeout=self._idle_s)
            except queue.Empty:
                try:
                    self._on_idle()
                except Exception:
                    log.exception("rotating aged segments failed")
                continue
            if item is None:
                return
            self._upload_with_retries(*item)

    def _recover_crashed(self) -> None:
        for other in sorted(p for p in self.base.iterdir() if p.is_dir()):
            if other == self.local_dir:
                continue
            fd = _try_lock(other)
            if fd is None:
                continue  # a live writer owns it
            try:
                files = sorted(other.rglob(f"*{SEGMENT_SUFFIX}"))
                if files:
                    log.warning("uploading %d segment(s) of crashed writer %s", len(files), other)
                ok = True
                for f in files:
                    truncate_torn_tail(f)
                    ok = self._upload_with_retries(f, other) and ok
                if ok:
                    shutil.rmtree(other, ignore_errors=True)
            finally:
                os.close(fd)

    def _upload_with_retries(self, path: Path, base: Path) -> bool:
        rel = path.relative_to(base).as_posix()
        for attempt, pause in enumerate((*_RETRY_S, None)):
            try:
                self._upload(path, f"{self.remote_root}/{rel}")
            except Exception as e:
                if pause is None:
                    log.error("uploading %s failed %d times; kept: %s", path, attempt + 1, e)
                    return False
                log.warning("uploading %s failed (%s); retrying in %.1fs", path, e, pause)
                time.sleep(pause)
                continue
            path.unlink()
            return True
        return False

    def _upload(self, path: Path, remote: str) -> None:
        parent = remote.rsplit("/", 1)[0]
        if isinstance(self.fs, LocalFileSystem):
            # A plain copy is neither atomic nor durable: copy, fsync, then rename into place.
            ensure_dir(Path(parent))
            tmp = Path(f"{parent}/.{path.name}.uploading")
            with path.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, remote)
            fsync_dir(Path(parent))
        else:
            # One PUT: an object store shows the whole object or none of it.
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.put_file(str(path), remote)


def _try_lock(folder: Path) -> int | None:
    """An flock on ``folder/.lock`` held until the fd closes (or the process dies)."""
    return try_flock(folder / ".lock")


def try_flock(path: Path) -> int | None:
    """An exclusive flock on ``path`` (created if missing) held until the fd closes or the
    process dies; None while another holds it, or when its folder is gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
