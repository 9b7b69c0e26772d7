"""Cron schedule of the update pipeline: is a run due, and when is the next one (UTC only).

Everything is evaluated in UTC, so there is no DST: a daily schedule fires every 24 h.
A schedule that does not parse is reported (a condition), never raised.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter


def schedule_error(schedule: str) -> str | None:
    """Why `schedule` is not a usable cron expression, or None when it is."""
    if len(schedule.split()) != 5 and not schedule.startswith("@"):
        return f"schedule {schedule!r} must have 5 fields like '0 3 * * 0' or be @daily/@weekly"
    try:
        croniter(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, KeyError) as err:
        return f"schedule {schedule!r} does not parse: {err}"
    return None


def next_fire(schedule: str, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (None for a bad schedule)."""
    if schedule_error(schedule):
        return None
    fire: datetime = croniter(schedule, after.astimezone(UTC)).get_next(datetime)
    return fire


def latest_fire(schedule: str, now: datetime) -> datetime | None:
    """The last fire time at or before `now` (None for a bad schedule)."""
    if schedule_error(schedule):
        return None
    # get_prev is strictly before its start; fire times are whole minutes, so starting at the
    # next whole minute finds a fire at exactly `now` too.
    start = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    fire: datetime = croniter(schedule, start).get_prev(datetime)
    return fire


def due(schedule: str, last_scheduled: datetime | None, now: datetime) -> bool:
    """True when a fire time lies in (last_scheduled, now]. Without a last time nothing is due:
    a new GQRDeployment waits for its first fire time instead of training at creation."""
    if last_scheduled is None:
        return False
    fire = next_fire(schedule, last_scheduled)
    return fire is not None and fire <= now
