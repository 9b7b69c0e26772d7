"""Session sources for ``cor-build``: the log store, a TSV file, and TREC Session Track XML."""

from __future__ import annotations

import csv
import gzip
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, cast

from gqr_training.cor.extract import Event, ExtractConfig, ExtractStats, Session

TSV_COLUMNS = ("session_id", "time", "query")


def logstore_sessions(
    root: str | os.PathLike[str], start: datetime | None = None, end: datetime | None = None
) -> Iterator[Session]:
    """Query-log sessions from the log store in [start, end)."""
    from gqr_serving.logstore import LogReader

    for sid, records in LogReader(root).sessions(start, end):
        yield sid, [(r.ts.timestamp(), r.query) for r in records]


def logstore_transitions(
    root: str | os.PathLike[str],
    start: datetime | None,
    end: datetime | None,
    config: ExtractConfig,
    stats: ExtractStats,
) -> Counter[tuple[str, str]]:
    """``extract.count_transitions`` over the log store's query log in [start, end), counted
    in the columnar engine (``gqr_serving.logstore.engine``); fills ``stats`` the same way."""
    from gqr_serving.logstore import LogReader
    from gqr_serving.logstore.engine import ColumnarLogs

    engine = ColumnarLogs(LogReader(root))
    counts, found = engine.transition_counts(start, end, config.max_gap_s)
    for name, value in found.items():
        setattr(stats, name, value)
    stats.empty_queries = stats.events - sum(stats.query_counts.values())
    return counts


def parse_time(text: str) -> float | None:
    """Epoch seconds, ISO 8601 (naive means UTC), or empty -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"time {text!r} is neither epoch seconds nor ISO 8601") from exc
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC).timestamp()
    return ts.timestamp()


def tsv_sessions(path: str | os.PathLike[str]) -> Iterator[Session]:
    """Rows ``session_id<TAB>time<TAB>query`` (header optional; .gz read transparently).

    Rows are grouped by session in first-seen order; within a session they keep file order
    unless every row has a time, in which case they are sorted by it (stably).
    """
    grouped: dict[str, list[Event]] = {}
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for lineno, row in enumerate(reader, start=1):
            if not row or (lineno == 1 and tuple(c.strip().lower() for c in row) == TSV_COLUMNS):
                continue
            if len(row) != 3:
                raise ValueError(
                    f"{path}:{lineno}: expected 3 tab-separated columns {TSV_COLUMNS}, "
                    f"got {len(row)}"
                )
            sid, when, query = row
            try:
                ts = parse_time(when)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            grouped.setdefault(sid, []).append((ts, query))
    for sid, events in grouped.items():
        if all(ts is not None for ts, _ in events):
            events.sort(key=lambda e: e[0] or 0.0)
        yield sid, events


def trec_sessions(path: str | os.PathLike[str]) -> Iterator[Session]:
    """TREC Session Track XML: each <interaction>'s <query>, then the <currentquery>.

    Times are clock times (HH:MM:SS.ffffff) without a date; a clock going backwards is read
    as passing midnight.
    """
    import xml.etree.ElementTree as ET

    with _open_binary(path) as fh:
        for _, elem in ET.iterparse(fh, events=("end",)):
            if elem.tag != "session":
                continue
            events: list[Event] = []
            day = 0.0
            last: float | None = None
            for child in elem:
                if child.tag not in ("interaction", "currentquery"):
                    continue
                text = child.findtext("query")
                clock = _clock_seconds(child.get("starttime", ""))
                if clock is not None:
                    if last is not None and clock + day < last:
                        day += 86400.0
                    clock += day
                    last = clock
                if text is not None:
                    events.append((clock, text))
            yield elem.get("num", str(len(events))), events
            elem.clear()


def trec_sessions_unless_missing(path: Path, what: str) -> list[Session] | None:
    """All sessions of the TREC Session file ``path``; None when it is not there, after saying
    that ``what`` is skipped on stderr and, as the command's JSON answer, on stdout (a
    command that needs the data set is a clean no-op without it)."""
    if not path.exists():
        print(f"skipping {what}: {path} not found", file=sys.stderr)
        print(json.dumps({"skipped": f"{path} not found"}))
        return None
    return list(trec_sessions(path))


def _clock_seconds(text: str) -> float | None:
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def _open_text(path: str | os.PathLike[str]) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return Path(path).open(encoding="utf-8", newline="")


def _open_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    if str(path).endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return Path(path).open("rb")
