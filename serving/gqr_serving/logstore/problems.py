"""What a reader found wrong in the store: per-line problems and running counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("gqr_serving.logstore")

# Enough to diagnose a bad file without letting a corrupt store exhaust memory or the log.
MAX_PROBLEMS_KEPT = 10_000
MAX_PROBLEMS_LOGGED = 100


@dataclass(frozen=True)
class Problem:
    """One line the reader skipped, with where it is and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ReaderStats:
    """Counters accumulated over every read made through one ``LogReader``."""

    files: int = 0
    """Segment files opened."""
    records: int = 0
    """Records parsed successfully (before the time-window filter)."""
    torn_lines: int = 0
    """Last lines without a newline: a write cut short by a crash, never acknowledged."""
    bad_json: int = 0
    """Lines that are not JSON objects."""
    non_utf8: int = 0
    """Lines with bytes that are not UTF-8."""
    bad_schema: int = 0
    """Valid JSON that does not match the record schema of its partition."""
    unknown_schema_version: int = 0
    """Records written with a schema_version this reader does not know."""
    unmatched_clicks: int = 0
    """Clicks whose impression is outside the window or missing (ignored by the join)."""
    duplicate_clicks: int = 0
    """Repeated clicks on the same position of an impression (counted once)."""
    invalid_click_positions: int = 0
    """Clicks on a position the impression did not show (ignored by the join)."""
    duplicate_impressions: int = 0
    """Impression records whose id was read before (a replayed spool): joined once."""
    invalid_clicks: int = 0
    """Clicks on invalid-traffic impressions (``gqr_serving.invalid``), left out with them."""
    invalid_impressions: int = 0
    """Impressions with invalid clicks, or of a user over the click ceiling: left out."""
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    """Impressions left out as invalid traffic, per reason (``all_positions``, ``user_ctr``,
    ...)."""
    invalid_users: int = 0
    """Users whose every impression was left out (the ``user_ctr`` rule)."""

    @property
    def skipped_lines(self) -> int:
        return (
            self.torn_lines
            + self.bad_json
            + self.non_utf8
            + self.bad_schema
            + self.unknown_schema_version
        )


@dataclass
class ProblemLog:
    """Keeps, counts and logs skipped lines; the first few are logged at WARNING."""

    stats: ReaderStats = field(default_factory=ReaderStats)
    problems: list[Problem] = field(default_factory=list)
    _logged: int = 0

    def report(self, counter: str, file: str, line: int, reason: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        problem = Problem(file, line, reason)
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)
        self._logged += 1
        if self._logged <= MAX_PROBLEMS_LOGGED:
            log.warning("skipped %s", problem)
        elif self._logged == MAX_PROBLEMS_LOGGED + 1:
            log.warning("more skipped lines; further ones are only counted in reader.stats")
