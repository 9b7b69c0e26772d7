"""Time windows for reads: validating [start, end) and computing "the last n days"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def check_window(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """Both bounds as UTC; naive datetimes are refused because their zone is a guess."""
    out = []
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise ValueError(
                f"{name}={value.isoformat()} has no timezone; pass an aware datetime, "
                "e.g. datetime(..., tzinfo=UTC)"
            )
        out.append(None if value is None else value.astimezone(UTC))
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise ValueError(f"start {out[0].isoformat()} is after end {out[1].isoformat()}")
    return out[0], out[1]


def last_days(n: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC window ``[now - n days, now)``: n whole 24-hour days ending at ``now``."""
    if n < 0:
        raise ValueError(f"n={n} days: expected 0 or more")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} has no timezone; pass an aware datetime")
    end = now.astimezone(UTC)
    return end - timedelta(days=n), end
