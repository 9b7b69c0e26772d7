"""Durable, append-only log store for impressions, clicks, queries and job results.

Writers acknowledge a record only once it is fsync'd; readers take a time window and skip
(and report) lines they cannot trust. See README.md in this folder for the layout and the
durability guarantee.
"""

from gqr_serving.logstore.layout import KINDS, Kind
from gqr_serving.logstore.problems import Problem, ReaderStats
from gqr_serving.logstore.reader import LogReader
from gqr_serving.logstore.window import last_days
from gqr_serving.logstore.writer import LogWriter, WriterFailedError

__all__ = [
    "KINDS",
    "Kind",
    "LogReader",
    "LogWriter",
    "Problem",
    "ReaderStats",
    "WriterFailedError",
    "last_days",
]
