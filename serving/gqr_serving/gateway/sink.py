"""Writing impressions and clicks to the log store without blocking requests, or losing clicks.

Impressions: ``submit`` never blocks. Records queue in memory (``max_pending``) and one
thread writes them in group-committed batches. When the store is slow or failing and the
queue is full, records spill to an append-only file under ``spool_dir`` (up to
``spool_max_bytes``; beyond that they are dropped and counted). Once the queue drains, the
thread replays the spool into the store. A failed writer is replaced after a backoff.

Clicks: ``ClickWriter.write`` returns only once the clicks are fsync'd in the store (so the
API acknowledges only durable clicks), or raises when that cannot happen within the budget.

Acknowledged impressions (``--impression-durability ack``): ``GroupCommit.write`` returns once
the records are fsync'd in the store, one ``write_many`` for every request waiting; when it
raises (late, failed, overloaded), ``ImpressionSink.spool_durably`` fsyncs the record in the
spool (``gateway.spool``), which the writer thread replays into the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from gqr_serving.gateway.spool import Spool
from gqr_serving.logstore import LogWriter
from gqr_serving.records import ClickRecord, ImpressionRecord

log = logging.getLogger("gqr_serving.gateway")
BATCH = 512


class Writer(Protocol):
    def write_many(self, records: Sequence[ImpressionRecord | ClickRecord]) -> None: ...
    def close(self) -> None: ...


WriterFactory = Callable[[str], Writer]


def log_writer_factory(root: str) -> WriterFactory:
    counter = itertools.count()

    def make(role: str) -> Writer:
        base = f"gw-{os.uname().nodename}-{os.getpid()}-{role}-{next(counter)}"
        return LogWriter(root, writer_id=base.replace(".", "-")[:100])

    return make


class ImpressionSink:
    """Non-blocking, bounded, disk-backed impression writer (see module docstring)."""

    def __init__(
        self,
        factory: WriterFactory,
        spool_dir: Path,
        *,
        max_pending: int = 20000,
        spool_max_bytes: int = 256 << 20,
        on_error: Callable[[], None] | None = None,
        on_spill: Callable[[], None] | None = None,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.factory, self.spool_dir = factory, spool_dir
        self.max_pending, self.spool_max_bytes = max_pending, spool_max_bytes
        self._on_error = on_error or (lambda: None)
        self._on_spill = on_spill or (lambda: None)
        self._on_drop = on_drop or (lambda: None)
        self._queue: deque[tuple[float, ImpressionRecord]] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._writer: Writer | None = None
        self._spool = Spool(spool_dir)
        self._spooled = 0
        self._spool_since: float | None = None
        self.written = 0
        self.dropped = 0
        self._thread: threading.Thread | None = None

    # -- request side ------------------------------------------------------------------

    def start(self) -> None:
        self._spool.open()
        self._spool.adopt()  # what a crashed or stopped process left: replayed first
        self._spooled = self._spool.size()
        if self._spooled:
            self._spool_since = time.monotonic()
        if self._thread is None or not self._thread.is_alive():  # restartable (tests' lifespans)
            self._stop = False
            self._thread = threading.Thread(
                target=self._run, name="gqr-impression-sink", daemon=True
            )
            self._thread.start()

    def submit(self, record: ImpressionRecord) -> None:
        """Queue, spill or (when both buffers are full) drop; never blocks on the store."""
        with self._cond:
            if len(self._queue) < self.max_pending:
                self._queue.append((time.monotonic(), record))
                self._cond.notify()
                return
            if self._to_spool(record, sync=False):
                self._on_spill()
                return
            self.dropped += 1
            self._on_drop()

    def spool_durably(self, record: ImpressionRecord) -> bool:
        """Append ``record`` to the spool and fsync it (blocks: call from a thread); False
        when the spool is full or not writable. The writer thread replays it into the store."""
        with self._cond:
            ok = self._to_spool(record, sync=True)
            self._cond.notify()
        return ok

    def _to_spool(self, record: ImpressionRecord, *, sync: bool) -> bool:
        """Append to the spool under the cap (caller holds ``self._cond``)."""
        line = record.model_dump_json().encode() + b"\n"
        if self._spooled + len(line) > self.spool_max_bytes:
            return False
        try:
            self._spool.append(line, sync=sync)
        except OSError as exc:
            log.error("impression spool %s not writable: %s", self.spool_dir, exc)
            return False
        self._spooled += len(line)
        self._spool_since = self._spool_since or time.monotonic()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def spooled_bytes(self) -> int:
        return self._spooled

    def lag_s(self) -> float:
        now = time.monotonic()
        oldest = [t for t in (self._queue[0][0] if self._queue else None, self._spool_since) if t]
        return now - min(oldest) if oldest else 0.0

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued and spooled is in the store; False on timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if not self._queue and not self._spooled and not self._busy:
                return True
            time.sleep(0.005)
        return False

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)
        self._drop_writer(OSError, "closing the impression writer failed")
        self._spool.close()  # what is left stays for the next process on this folder

    # -- writer thread -----------------------------------------------------------------

    _busy = False

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._cond:
                while not self._queue and not self._spooled and not self._stop:
                    self._cond.wait(1.0)
                if self._stop and not self._queue:
                    return
                batch = [r for _, r in itertools.islice(self._queue, BATCH)]
                self._busy = True
            try:
                if batch:
                    self._write(batch)
                    with self._cond:
                        for _ in batch:
                            self._queue.popleft()
                    self.written += len(batch)
                else:
                    self._replay_spool()
                backoff = 0.05
            except Exception as exc:  # keep the records; retry with a fresh writer
                self._on_error()
                log.error("log store write failed (%d pending): %s", len(self._queue), exc)
                self._drop_writer(Exception, "closing a failed writer")
                with self._cond:
                    self._cond.wait_for(lambda: self._stop, timeout=backoff)
                    if self._stop:
                        self._busy = False
                        return
                backoff = min(backoff * 2, 5.0)
            finally:
                self._busy = False

    def _write(self, records: Sequence[ImpressionRecord]) -> None:
        if self._writer is None:
            self._writer = self.factory("imp")
        self._writer.write_many(records)

    def _drop_writer(self, tolerated: type[Exception], what: str) -> None:
        """Close the writer (the next write opens a fresh one); a `tolerated` error closing it
        is logged as `what`."""
        if self._writer is not None:
            try:
                self._writer.close()
            except tolerated as exc:
                log.warning("%s: %s", what, exc)
            self._writer = None

    def _replay_spool(self) -> None:
        """Move spooled impressions into the store, one spool file at a time.

        A crash between a file's write and its removal replays it again: the store then holds
        those impressions twice, and every reader counts each impression id once."""
        with self._cond:
            ready = self._spool.ready_files()
        for path in ready:
            records = []
            for ln in path.read_bytes().split(b"\n"):
                if not ln.strip():
                    continue
                try:
                    records.append(ImpressionRecord.model_validate_json(ln))
                except ValueError:
                    log.warning("skipping a torn spool line in %s", path)
            for i in range(0, len(records), BATCH):
                self._write(records[i : i + BATCH])
            size = path.stat().st_size
            path.unlink()
            with self._cond:
                self._spooled = max(0, self._spooled - size)
                self.written += len(records)
        with self._cond:
            if not self._spool.current.exists():
                self._spooled = 0
                self._spool_since = None


class ClickWriter:
    """Durable click writes under a time budget, deduplicated per process (LRU)."""

    def __init__(self, factory: WriterFactory, *, timeout_s: float = 2.0, remember: int = 100_000):
        self.factory, self.timeout_s, self.remember = factory, timeout_s, remember
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    def is_known(self, iid: str, position: int) -> bool:
        return (iid, position) in self._seen

    async def write(self, clicks: list[ClickRecord]) -> None:
        """Returns once ``clicks`` are durable; raises TimeoutError or OSError otherwise."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.run_in_executor(self._pool, self._write, clicks), self.timeout_s
        )

    def _write(self, clicks: list[ClickRecord]) -> None:
        with self._lock:
            writer = self._writer = self._writer or self.factory("clk")
        try:
            writer.write_many(clicks)
        except Exception:
            with self._lock:
                if self._writer is writer:
                    self._writer = None
            try:
                writer.close()
            except Exception as exc:
                log.warning("closing a failed click writer: %s", exc)
            raise
        with self._lock:
            for c in clicks:
                self._seen[(c.impression_id, c.position)] = None
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


class Overloaded(OSError):
    """Too many records already wait for the group commit; the caller falls back."""


class GroupCommit:
    """Durable writes for concurrent requests, shared: one thread takes every record waiting
    and writes them in one ``write_many`` (one fsync), while the next ones gather behind it.
    ``write`` returns once its records are durable in the store, or raises ``TimeoutError``
    past ``timeout_s``, ``OSError`` when the store failed, :class:`Overloaded` when
    ``max_waiting`` requests already wait. Records whose caller gave up before their batch was
    taken are not written; ones already taken may still land (the caller's fallback then
    duplicates them, and readers count each id once)."""

    def __init__(
        self,
        factory: WriterFactory,
        role: str,
        *,
        timeout_s: float,
        max_waiting: int = 10_000,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self.factory, self.role = factory, role
        self.timeout_s, self.max_waiting = timeout_s, max_waiting
        self._on_commit = on_commit or (lambda n, s: None)
        self._cond = threading.Condition()
        self._waiting: list[tuple[Sequence[ImpressionRecord], asyncio.Future[None]]] = []
        self._writer: Writer | None = None
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(
                target=self._run, name=f"gqr-group-commit-{self.role}", daemon=True
            )
            self._thread.start()

    async def write(self, records: Sequence[ImpressionRecord]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._stop:
                raise OSError("the group commit is stopped")
            if len(self._waiting) >= self.max_waiting:
                raise Overloaded(f"{len(self._waiting)} requests already wait for the store")
            self._waiting.append((records, fut))
            self._cond.notify()
        await asyncio.wait_for(fut, self.timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what waits, stop the thread, close the writer."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout_s)
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:
                log.warning("closing the %s writer failed: %s", self.role, exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stop:
                    self._cond.wait()
                if self._stop and not self._waiting:
                    return
                taken, self._waiting = self._waiting, []
            batch = [(r, f) for r, f in taken if not f.done()]  # done: timed out, gave up
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[Sequence[ImpressionRecord], asyncio.Future[None]]]) -> None:
        start = time.monotonic()
        error: BaseException | None = None
        try:
            self._writer = self._writer or self.factory(self.role)
            self._writer.write_many([rec for records, _ in batch for rec in records])
        except Exception as exc:  # every caller of this batch falls back; a new writer next
            error = exc
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    writer.close()
                except Exception as close_exc:
                    log.warning("closing a failed %s writer: %s", self.role, close_exc)
            log.error("group commit of %d %s record(s) failed: %s", len(batch), self.role, exc)
        self._on_commit(len(batch), time.monotonic() - start)
        for _, fut in batch:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                fut.get_loop().call_soon_threadsafe(_settle, fut, error)


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(OSError(f"log store write failed: {error}"))
