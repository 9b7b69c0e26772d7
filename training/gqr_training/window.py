"""The log window and result-file flags every pipeline entrypoint shares (cor-build, ctr-train,
dpo-iterate, sft), so the operator's Jobs pass the same flags to each of them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULT_FILE_HELP = (
    "Also write the JobResult JSON line here (a Job's terminationMessagePath, e.g. "
    "/dev/termination-log)."
)


def add_window_args(p: argparse.ArgumentParser, default_days: int = 14) -> None:
    p.add_argument(
        "--window-days",
        type=int,
        default=default_days,
        help=f"Days of logs to read, ending at --end ({default_days}).",
    )
    p.add_argument(
        "--end",
        default="now",
        help="Window end: ISO date/time (UTC), 'now', or 'latest' (end of the newest log day).",
    )


def add_result_file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--result-file", type=Path, default=None, help=RESULT_FILE_HELP)


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


def resolve_window(args: argparse.Namespace, logs: str) -> tuple[datetime, datetime]:
    """``[end - window_days, end)`` from ``--window-days`` and ``--end``."""
    return days_before(resolve_end(args.end, logs), args.window_days)
