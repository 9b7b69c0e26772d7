"""Training data from the log store: impressions joined with clicks in a day window, split
into training days and the held-out last day, flattened to one instance per shown query."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoggedImpression:
    """The parts of an impression the CTR predictor (and its evaluation) needs."""

    query: str
    queries: tuple[str, ...]
    clicked: frozenset[int]
    ts: datetime
    task: str = "suggestion"
    user_key: str = ""
    session_id: str = ""
    history: tuple[str, ...] = ()
    impression_id: str = ""

    @property
    def day(self) -> date:
        return self.ts.date()


@dataclass
class WindowData:
    """Impressions of a window split into training days and the held-out day."""

    train: list[LoggedImpression]
    test: list[LoggedImpression]
    start: datetime
    end: datetime
    held_out_day: date
    stats: dict[str, int] = field(default_factory=dict)


def read_window(
    root: str | Path,
    start: datetime,
    end: datetime,
    max_positions: int,
    *,
    columnar: bool = True,
) -> tuple[list[LoggedImpression], dict[str, int]]:
    """Every impression in [start, end) with its clicks; lists are cut to ``max_positions``.

    The join runs in the columnar engine (``gqr_serving.logstore.engine``); ``columnar=False``
    runs the record-at-a-time join (``LogReader.impressions_with_clicks``), same result."""
    from gqr_serving.logstore import LogReader

    reader = LogReader(root)
    out: list[LoggedImpression] = []
    cut = 0
    for imp in _joined(reader, start, end, columnar):
        queries = imp.queries
        if not queries:
            continue
        if len(queries) > max_positions:
            cut += 1
            queries = queries[:max_positions]
        out.append(
            dataclasses.replace(
                imp,
                queries=queries,
                clicked=frozenset(p for p in imp.clicked if p < len(queries)),
            )
        )
    counters = dataclasses.asdict(reader.stats)
    stats = {
        "impressions": len(out),
        "lists_cut_to_max_positions": cut,
        "skipped_lines": sum(
            counters.get(k, 0)
            for k in ("torn_lines", "bad_json", "non_utf8", "bad_schema", "unknown_schema_version")
        ),
        # Left out of training (gqr_serving.invalid), the same traffic /v1/stats leaves out.
        "invalid_impressions": counters.get("invalid_impressions", 0),
        "invalid_users": counters.get("invalid_users", 0),
        "duplicate_impressions": counters.get("duplicate_impressions", 0),
    }
    return out, stats


def _joined(
    reader: Any, start: datetime, end: datetime, columnar: bool
) -> Iterator[LoggedImpression]:
    if not columnar:
        for imp, clicked in reader.impressions_with_clicks(start, end):
            yield LoggedImpression(
                query=imp.query,
                queries=tuple(imp.queries),
                clicked=clicked,
                ts=imp.ts,
                task=imp.task,
                user_key=imp.user_key,
                session_id=imp.session_id,
                history=tuple(imp.side_info.history),
                impression_id=imp.impression_id,
            )
        return
    from gqr_serving.logstore.engine import ColumnarLogs

    columns = ["query", "queries", "clicked", "ts", "task", "user_key", "session_id"]
    for batch in ColumnarLogs(reader).impressions_with_clicks(start, end):
        history = batch.column("side_info").field("history").to_pylist()
        ids = batch.column("impression_id").to_pylist()
        for i, row in enumerate(batch.select(columns).to_pylist()):
            yield LoggedImpression(
                query=row["query"],
                queries=tuple(row["queries"]),
                clicked=frozenset(row["clicked"]),
                ts=row["ts"],
                task=row["task"],
                user_key=row["user_key"],
                session_id=row["session_id"],
                history=tuple(history[i] or ()),
                impression_id=ids[i],
            )


def split_held_out(
    impressions: Sequence[LoggedImpression], end: datetime
) -> tuple[list[LoggedImpression], list[LoggedImpression], date]:
    """Training = before the last 24 hours of the window; test = the last 24 hours."""
    cutoff = end - timedelta(days=1)
    train = [i for i in impressions if i.ts < cutoff]
    test = [i for i in impressions if i.ts >= cutoff]
    return train, test, cutoff.date()


def load_window(
    root: str | Path,
    start: datetime,
    end: datetime,
    max_positions: int,
    max_train_impressions: int | None = None,
) -> WindowData:
    """Read, split, and optionally keep only the latest ``max_train_impressions`` for training."""
    impressions, stats = read_window(root, start, end, max_positions)
    train, test, held_out = split_held_out(impressions, end)
    if max_train_impressions is not None and len(train) > max_train_impressions:
        train.sort(key=lambda i: i.ts)
        train = train[-max_train_impressions:]
    stats.update(train_impressions=len(train), test_impressions=len(test))
    return WindowData(train, test, start, end, held_out, stats)


Instance = tuple[int, int]
"""(index into the impression list, 0-based position k)."""


def instances(impressions: Sequence[LoggedImpression]) -> tuple[list[Instance], list[int]]:
    """One instance per shown query; label 1 when that position was clicked."""
    items: list[Instance] = []
    labels: list[int] = []
    for i, imp in enumerate(impressions):
        for k in range(len(imp.queries)):
            items.append((i, k))
            labels.append(int(k in imp.clicked))
    return items, labels


def all_texts(impressions: Iterable[LoggedImpression]) -> Iterable[str]:
    for imp in impressions:
        yield imp.query
        yield from imp.queries
