"""Where records live: ``<root>/<kind>/<YYYY-MM-DD>/<writer_id>-<seq>.jsonl``.

A record is partitioned by the UTC day of its own timestamp (not the time it was written), so
a late or out-of-order record still lands where a day-window read will look for it.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from datetime import UTC, date, datetime
from typing import Literal, TypeAlias

from gqr_contracts.job import JobResult
from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord

Kind: TypeAlias = Literal["impression", "click", "query", "job_result"]
KINDS: tuple[Kind, ...] = ("impression", "click", "query", "job_result")
Record: TypeAlias = ImpressionRecord | ClickRecord | QueryLogRecord | JobResult
RECORD_TYPES = (ImpressionRecord, ClickRecord, QueryLogRecord, JobResult)

SEGMENT_SUFFIX = ".jsonl"
_WRITER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def check_writer_id(writer_id: str) -> str:
    # The id becomes part of a file name, so it must be safe on every filesystem and URL.
    if not _WRITER_ID.fullmatch(writer_id):
        raise ValueError(
            f"writer_id {writer_id!r} is not usable in a file name: use 1-100 characters "
            "from [A-Za-z0-9._-], starting with a letter or digit"
        )
    return writer_id


def default_writer_id() -> str:
    """host-pid-random: unique across hosts, processes and restarts of the same process id."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def event_time(record: Record) -> datetime | None:
    """The time a record is filed and filtered under (job results may carry none)."""
    if isinstance(record, JobResult):
        return record.finished or record.started
    return record.ts


def partition_of(record: Record, now: datetime | None = None) -> str:
    """``<kind>/<YYYY-MM-DD>`` for a record; time-less records go under the day written."""
    ts = event_time(record) or now or datetime.now(UTC)
    return f"{record.kind}/{ts.astimezone(UTC).date().isoformat()}"


def segment_name(writer_id: str, seq: int) -> str:
    return f"{writer_id}-{seq:08d}{SEGMENT_SUFFIX}"


def parse_day(name: str) -> date | None:
    """The day of a partition folder name, or None for anything else found there."""
    if not _DAY.fullmatch(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def day_in_window(day: date, start: datetime | None, end: datetime | None) -> bool:
    """Whether a day partition can hold records with ts in [start, end)."""
    if start is not None and day < start.date():
        return False
    return end is None or day <= end.date()
