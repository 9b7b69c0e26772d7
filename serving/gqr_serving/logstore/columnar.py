"""The columnar form of a day of records: one Parquet file per ``<kind>/<day>`` folder.

``compacted.parquet`` holds every record of the day's segments it lists (in storage order:
segment name, then line), typed columns plus two the engine needs: ``_ord`` (the storage
order, for "the first record wins" in dedup) and, for queries, ``_qnorm`` (the query under
``gqr_serving.cor.normalize``, computed once). Its key-value metadata ``gqr.logstore`` is the
manifest: the segments it covers and what reading them skipped (counters and problems), so a
reader of the Parquet reports exactly what a reader of the JSONL would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from gqr_serving.cor.normalize import normalize_query
from gqr_serving.logstore.layout import Kind, Record
from gqr_serving.logstore.problems import MAX_PROBLEMS_KEPT, ProblemLog
from gqr_serving.records import SCHEMAS

COMPACTED_NAME = "compacted.parquet"
MANIFEST_KEY = b"gqr.logstore"
FORMAT = 1
BATCH_ROWS = 65_536

_TS = pa.timestamp("us", tz="UTC")
_STRS = pa.list_(pa.string())
SCHEMA: dict[str, pa.Schema] = {
    "impression": pa.schema(
        [
            ("_ord", pa.int64()),
            ("schema_version", pa.int32()),
            ("impression_id", pa.string()),
            ("ts", _TS),
            ("deployment", pa.string()),
            ("task", pa.string()),
            ("arm", pa.string()),
            ("model_version", pa.string()),
            ("session_id", pa.string()),
            ("user_key", pa.string()),
            ("query", pa.string()),
            (
                "side_info",
                pa.struct(
                    [
                        ("history", _STRS),
                        ("ai_response", pa.string()),
                        ("cooccurring", _STRS),
                        ("documents", _STRS),
                        ("prefix", pa.string()),
                    ]
                ),
            ),
            ("aux_texts", pa.map_(pa.string(), pa.string())),
            ("queries", _STRS),
            ("fallback", pa.bool_()),
        ]
    ),
    "click": pa.schema(
        [
            ("_ord", pa.int64()),
            ("schema_version", pa.int32()),
            ("impression_id", pa.string()),
            ("position", pa.int32()),
            ("ts", _TS),
            ("invalid", pa.string()),
        ]
    ),
    "query": pa.schema(
        [
            ("_ord", pa.int64()),
            ("schema_version", pa.int32()),
            ("session_id", pa.string()),
            ("ts", _TS),
            ("query", pa.string()),
            ("user_key", pa.string()),
            ("_qnorm", pa.string()),
        ]
    ),
}
COMPACTABLE: tuple[Kind, ...] = ("impression", "click", "query")
"""Job results stay JSONL: a handful a day, and their schema is the contracts' to change."""


def ord_base(day: date) -> int:
    """``_ord`` of a day's first record: the day above, the record's place in the day below."""
    return day.toordinal() << 32


def to_batch(kind: Kind, records: Iterable[Record], first_ord: int) -> pa.RecordBatch:
    """Records as a batch of ``SCHEMA[kind]``, ``_ord`` counting up from ``first_ord``."""
    rows = [r.model_dump() for r in records]
    for i, row in enumerate(rows):
        row["_ord"] = first_ord + i
        if kind == "query":
            row["_qnorm"] = normalize_query(row["query"])
    return pa.RecordBatch.from_pylist(rows, schema=SCHEMA[kind])


def to_records(kind: Kind, batch: pa.RecordBatch | pa.Table) -> Iterator[Record]:
    """The records of a batch of ``SCHEMA[kind]``, validated as the JSONL reader would."""
    model = SCHEMAS[kind]
    names = [n for n in batch.schema.names if not n.startswith("_")]
    for row in batch.select(names).to_pylist():
        if "aux_texts" in row:
            row["aux_texts"] = dict(row["aux_texts"] or ())
        yield model.model_validate(row)  # type: ignore[misc]


def in_window(batch: pa.RecordBatch, start: Any, end: Any) -> pa.RecordBatch:
    """The rows with ``start <= ts < end`` (either bound may be None)."""
    mask = None
    if start is not None:
        mask = pc.greater_equal(batch["ts"], pa.scalar(start, _TS))
    if end is not None:
        upper = pc.less(batch["ts"], pa.scalar(end, _TS))
        mask = upper if mask is None else pc.and_(mask, upper)
    return batch if mask is None else batch.filter(mask)


@dataclass
class Manifest:
    """What a compacted file covers and what reading its segments skipped."""

    kind: str
    day: str
    segments: list[str]
    files: int = 0
    records: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str, int, str]] = field(default_factory=list)

    @classmethod
    def of(cls, kind: str, day: str, segments: list[str], log: RecordingLog) -> Manifest:
        s = log.stats
        return cls(kind, day, segments, s.files, s.records, log.counters, log.kept)

    def encode(self) -> dict[bytes, bytes]:
        body = {"format": FORMAT, **self.__dict__}
        return {MANIFEST_KEY: json.dumps(body, separators=(",", ":")).encode()}

    @classmethod
    def decode(cls, metadata: dict[bytes, bytes] | None, where: str) -> Manifest:
        raw = (metadata or {}).get(MANIFEST_KEY)
        if raw is None:
            raise ValueError(f"{where}: no {MANIFEST_KEY.decode()} manifest; not a compacted day")
        body = json.loads(raw)
        if body.pop("format", None) != FORMAT:
            raise ValueError(f"{where}: manifest format {body.get('format')!r} is unknown")
        body["problems"] = [tuple(p) for p in body.get("problems", [])]
        return cls(**body)

    def replay(self, log: ProblemLog) -> None:
        """Report to ``log`` what a JSONL read of the covered segments would have reported."""
        log.stats.files += self.files
        log.stats.records += self.records
        left = dict(self.counters)
        for counter, file, line, reason in self.problems:
            log.report(counter, file, line, reason)
            left[counter] -= 1
        for counter, n in left.items():
            setattr(log.stats, counter, getattr(log.stats, counter) + n)


class RecordingLog(ProblemLog):
    """A ProblemLog that also keeps each problem's counter, for the manifest."""

    def __init__(self) -> None:
        super().__init__()
        self.counters: dict[str, int] = {}
        self.kept: list[tuple[str, str, int, str]] = []

    def report(self, counter: str, file: str, line: int, reason: str) -> None:
        super().report(counter, file, line, reason)
        self.counters[counter] = self.counters.get(counter, 0) + 1
        if len(self.kept) < MAX_PROBLEMS_KEPT:
            self.kept.append((counter, file, line, reason))
