"""The log window and result-file fields the pipeline entrypoints' configs share (ctr-train and
dpo-iterate read a window; cor-build, ctr-train, dpo-iterate and sft write a result file), so
the operator's Jobs pass the same flags to each of them."""

from __future__ import annotations

from dataclasses import field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

RESULT_FILE_HELP = (
    "Also write the JobResult JSON line here (a Job's terminationMessagePath, e.g. "
    "/dev/termination-log)."
)


def window_days_field(default_days: int = 14) -> Any:
    """``--window-days``: days of logs read, ending at ``--end``."""
    return field(
        default=default_days,
        metadata={"help": f"Days of logs to read, ending at --end ({default_days})."},
    )


def end_field() -> Any:
    """``--end``: the window's end (``now``, ``latest`` or an ISO time)."""
    return field(
        default="now",
        metadata={
            "help": "Window end: ISO date/time (UTC), 'now', or 'latest' (end of the newest log "
            "day)."
        },
    )


def resolve_end(value: str, logs: str) -> datetime:
    """``now``, ``latest`` (midnight after the newest impression day) or an ISO time (UTC)."""
    if value == "now":
        return datetime.now(UTC)
    if value == "latest":
        from gqr_serving.logstore import LogReader
        from gqr_serving.logstore.layout import parse_day

        days = [
            parse_day(f.rsplit("/", 2)[-2]) for f in LogReader(logs).segment_files("impression")
        ]
        found = [d for d in days if d is not None]
        if not found:
            raise ValueError(f"--end latest: no impression segments under {logs}")
        newest = max(found)
        return datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--end {value!r} is not 'now', 'latest' or an ISO date/time (e.g. 2025-01-15)"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def days_before(end: datetime, days: int) -> tuple[datetime, datetime]:
    """``[end - days, end)``; ``days`` (``--window-days``) must be at least 1."""
    if days < 1:
        raise ValueError(f"--window-days {days}: must be at least 1")
    return end - timedelta(days=days), end


class Window(Protocol):
    """A command's config with the window fields."""

    window_days: int
    end: str


def resolve_window(config: Window, logs: str) -> tuple[datetime, datetime]:
    """``[end - window_days, end)`` from ``--window-days`` and ``--end``."""
    return days_before(resolve_end(config.end, logs), config.window_days)
