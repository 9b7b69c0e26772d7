"""``/v1/stats``: impressions and clicks per arm and model version, read from the log store.

The log store is the source of truth, so every replica sharing a root gives the same counts,
and a restart loses nothing. Reading is incremental: each segment file is read from where the
last refresh stopped, up to its last complete line (a torn or still-growing tail waits).
Impressions are bucketed by minute and counted once per impression id (a record written
twice, e.g. a spool replayed after a crash, counts once); a click counts for the impression it
is on (attributed from the impression id), once per (impression, position) however often it was
sent. Invalid traffic (``gqr_serving.invalid``: clicks flagged at feedback, every position of
an impression clicked) is left out of ``impressions`` and ``clicks`` and counted apart.
A query covers whole minutes: the last ``window`` seconds (its first, partial minute
included), or from ``since`` on, rounded up to the next whole minute so that no impression
shown before ``since`` is counted (a canary step asks from its start: traffic at the
previous split must not enter its analysis).

An object-store root (or ``columnar=True``) is not read incrementally: each refresh runs the
count over the window in the columnar engine (``logstore.engine``), compacted days from
Parquet, the rest from JSONL, in bounded memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
from array import array
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gqr_serving.gateway.ids import peek_impression_id
from gqr_serving.invalid import InvalidTrafficPolicy, impression_verdict

log = logging.getLogger("gqr_serving.gateway")
Key = tuple[str, str]  # (arm, model_version)
PACK_AFTER_S = 600  # a minute's impression ids are packed once it is this old


def id_hash(iid: str) -> int:
    """64 bits of an impression id: what dedup keeps (collisions are ~n^2/2^65)."""
    return int.from_bytes(hashlib.blake2b(iid.encode(), digest_size=8).digest(), "big")


class SeenIds:
    """The impression ids of one minute, as 64-bit hashes: a set while the minute is recent,
    then a sorted array (8 bytes an id) once :meth:`pack` is called."""

    __slots__ = ("packed", "recent")

    def __init__(self) -> None:
        self.recent: set[int] = set()
        self.packed = array("Q")

    def __contains__(self, h: int) -> bool:
        if h in self.recent:
            return True
        i = bisect_left(self.packed, h)
        return i < len(self.packed) and self.packed[i] == h

    def add(self, h: int) -> bool:
        """Adds ``h``; False when it was there already."""
        if h in self:
            return False
        self.recent.add(h)
        return True

    def pack(self) -> None:
        if self.recent:
            self.packed = array("Q", sorted([*self.packed, *self.recent]))
            self.recent = set()


@dataclass
class ArmCounter:
    """Mutable counts of one (arm, model version) while a query adds them up."""

    arm: str
    model_version: str
    impressions: int = 0
    clicks: int = 0
    clicked_impressions: int = 0
    fallbacks: int = 0
    invalid_clicks: int = 0
    invalid_impressions: int = 0


class LogStats:
    """Incremental, cached aggregation of the impression and click logs under ``root``."""

    def __init__(
        self,
        root: str,
        *,
        refresh_s: float = 1.0,
        max_window_s: float = 14 * 86400,
        policy: InvalidTrafficPolicy | None = None,
        columnar: bool | None = None,
    ):
        self.root, self.refresh_s, self.max_window_s = root, refresh_s, max_window_s
        # Object stores: every refresh scans the window in the columnar engine (bounded
        # memory); a local root is read incrementally unless ``columnar`` says otherwise.
        self.columnar = "://" in root if columnar is None else columnar
        self._cached: tuple[tuple[int, int], list[ArmCounter]] | None = None
        self.policy = policy or InvalidTrafficPolicy()
        self._offsets: dict[Path, int] = {}
        self._imps: dict[int, dict[Key, list[int]]] = defaultdict(dict)  # minute -> [imps, fb]
        self._seen: dict[int, SeenIds] = defaultdict(SeenIds)  # minute -> impression ids
        # minute -> iid -> position -> the invalid-traffic verdict on the click (None: valid)
        self._clicked: dict[int, dict[str, dict[int, str | None]]] = defaultdict(dict)
        self._lock = threading.Lock()
        self._last = 0.0
        self.bad_lines = 0
        self.duplicate_impressions = 0
        self.refreshed_at: float | None = None

    def query(
        self, window_s: float, *, since: float | None = None, fresh: bool = False
    ) -> tuple[float, list[ArmCounter]]:
        """Counts for impressions shown in the last ``window_s`` seconds and, with ``since``
        (Unix time), not before it; and their clicks. Returns the Unix time of the first
        minute counted (the later of the two bounds and of what is kept) and the rows."""
        with self._lock:
            stale = fresh or time.monotonic() - self._last >= self.refresh_s
            if stale and not self.columnar:
                self._refresh()
            now = time.time()
            now_min = int(now // 60)
            first = max(int((now - window_s) // 60), now_min - int(self.max_window_s // 60))
            if since is not None:
                first = max(first, math.ceil(since / 60))
            if self.columnar:
                return first * 60.0, self._query_columnar(first, now_min + 1, stale)
            out: dict[Key, ArmCounter] = {}
            for minute in range(first, now_min + 2):
                for key, (n, fb) in self._imps.get(minute, {}).items():
                    s = out.setdefault(key, ArmCounter(*key))
                    s.impressions += n
                    s.fallbacks += fb
                self._count_clicks(minute, out)
            return first * 60.0, sorted(out.values(), key=lambda s: (s.arm, s.model_version))

    def _query_columnar(self, first: int, last: int, stale: bool) -> list[ArmCounter]:
        """The rows from the columnar engine over the whole window, cached per first minute
        until the next refresh."""
        if stale or self._cached is None or self._cached[0] != (first, last):
            from gqr_serving.logstore import LogReader
            from gqr_serving.logstore.engine import ColumnarLogs

            self._last = time.monotonic()
            self.refreshed_at = time.time()
            rows = ColumnarLogs(LogReader(self.root)).arm_stats(first, last, _ref, self.policy)
            self._cached = ((first, last), [ArmCounter(**row) for row in rows])
        return [dataclasses.replace(row) for row in self._cached[1]]

    def _count_clicks(self, minute: int, out: dict[Key, ArmCounter]) -> None:
        """Adds the clicks on the impressions of ``minute``; an impression with invalid
        traffic moves, clicks and all, to the invalid counts."""
        seen = self._seen.get(minute)
        for iid, clicks in self._clicked.get(minute, {}).items():
            ref = peek_impression_id(iid)
            if ref is None:
                continue
            key = (ref.arm, ref.model_version)
            s = out.setdefault(key, ArmCounter(*key))
            if impression_verdict(clicks, ref.n, self.policy) is None:
                s.clicks += len(clicks)
                s.clicked_impressions += 1
                continue
            s.invalid_clicks += len(clicks)
            if seen is not None and id_hash(iid) in seen:
                s.invalid_impressions += 1
                s.impressions -= 1

    # -- reading -----------------------------------------------------------------------

    def _refresh(self) -> None:
        self._last = time.monotonic()
        self.refreshed_at = time.time()
        now = datetime.now(UTC)
        first_day = (now - timedelta(seconds=self.max_window_s)).date()
        for kind, handle in (("impression", self._on_impression), ("click", self._on_click)):
            base = Path(self.root) / kind
            try:
                days = sorted(d for d in os.listdir(base) if not d.startswith("."))
            except FileNotFoundError:
                continue
            for day in days:
                try:
                    if datetime.strptime(day, "%Y-%m-%d").date() < first_day:
                        continue
                    names = sorted(os.listdir(base / day))
                except (ValueError, OSError):
                    continue
                for name in names:
                    if name.startswith(".") or not name.endswith(".jsonl"):
                        continue
                    self._read_new(base / day / name, handle)
        self._prune()

    def _read_new(self, path: Path, handle: object) -> None:
        start = self._offsets.get(path, 0)
        try:
            size = path.stat().st_size
            if size <= start:
                return
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(size - start)
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._offsets[path] = start + end + 1
        for line in data[: end + 1].split(b"\n"):
            if not line:
                continue
            try:
                rec = json.loads(line)
                handle(rec)  # type: ignore[operator]
            except (ValueError, KeyError, TypeError):
                self.bad_lines += 1

    def _on_impression(self, rec: dict[str, object]) -> None:
        ts = datetime.fromisoformat(str(rec["ts"]).replace("Z", "+00:00")).timestamp()
        minute = int(ts // 60)
        iid = rec.get("impression_id")
        if iid is not None and not self._seen[minute].add(id_hash(str(iid))):
            self.duplicate_impressions += 1
            return
        bucket = self._imps[minute]
        entry = bucket.setdefault((str(rec["arm"]), str(rec["model_version"])), [0, 0])
        entry[0] += 1
        entry[1] += 1 if rec.get("fallback") else 0

    def _on_click(self, rec: dict[str, object]) -> None:
        iid, pos = str(rec["impression_id"]), int(rec["position"])  # type: ignore[call-overload]
        ref = peek_impression_id(iid)
        if ref is None or not 0 <= pos < ref.n:
            self.bad_lines += 1
            return
        minute = ref.ts_ms // 60000
        positions = self._clicked[minute].setdefault(iid, {})
        if pos in positions:
            return  # a retried click: counted once
        invalid = rec.get("invalid")
        positions[pos] = str(invalid) if invalid else None

    def _prune(self) -> None:
        now = time.time()
        oldest = int((now - self.max_window_s) // 60) - 1
        for table in (self._imps, self._seen, self._clicked):
            for minute in [m for m in table if m < oldest]:
                del table[minute]
        settled = int((now - PACK_AFTER_S) // 60)
        for minute, ids in self._seen.items():
            if minute < settled:
                ids.pack()


def _ref(iid: str) -> tuple[int, int, str, str] | None:
    """What the columnar engine needs of an impression id (``peek_impression_id``)."""
    ref = peek_impression_id(iid)
    return None if ref is None else (ref.ts_ms // 60000, ref.n, ref.arm, ref.model_version)


def parse_window(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d`` -> seconds; ValueError names the format."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value:
        raise ValueError(f"window={text!r}: expected a positive duration like 900, 15m, 2h, 7d")
    return value


def parse_since(text: str) -> float:
    """ISO 8601 (UTC unless it has an offset) or Unix seconds -> Unix seconds; ValueError
    names the format."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        try:
            ts = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            value = math.nan
        else:
            value = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise ValueError(
            f"since={text!r}: expected a time like 2025-03-01T12:00:00Z or Unix seconds"
        )
    return value
