"""The log reads that scan whole windows, run in DuckDB over the columnar store.

``ColumnarLogs(reader)`` gives the training join (:meth:`impressions_with_clicks`, as Arrow
batches) and COR's transition counts (:meth:`transition_counts`) with exactly the results of
the record-at-a-time path (``logstore.joins``, ``gqr_training.cor.extract``): the same rows,
the same invalid-traffic verdicts (``gqr_serving.invalid``), the same dedup (the first record
in storage order wins) and the same counters in ``reader.stats``.

Compacted days are scanned from their Parquet files (only the columns a query needs, streamed);
the JSONL segments of days not compacted yet are parsed into Arrow and scanned with them.
DuckDB runs under ``memory_limit`` and spills to ``temp_dir`` past it, so peak memory stays
bounded whatever the window's size. Why DuckDB: docs/benchmarks.md ("Columnar logs").
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from gqr_serving.invalid import InvalidTrafficPolicy
from gqr_serving.logstore.columnar import SCHEMA, ord_base, to_batch
from gqr_serving.logstore.layout import Kind, Record, parse_day
from gqr_serving.logstore.reader import LogReader
from gqr_serving.logstore.window import check_window

Ref = tuple[int, int, str, str]
"""What an impression id says: (Unix minute, queries shown, arm, model version)."""
_REFS = pa.schema(
    [
        ("iid", pa.string()),
        ("minute", pa.int64()),
        ("n", pa.int64()),
        ("arm", pa.string()),
        ("mv", pa.string()),
    ]
)
LATE = 1 << 31
"""``_ord`` offset of a JSONL segment's rows within its day: after the compacted rows."""


@dataclass(frozen=True)
class EngineConfig:
    memory_limit: str = "1GB"
    """DuckDB's memory ceiling; past it, joins, aggregates and sorts spill to ``temp_dir``."""
    threads: int | None = None
    """Worker threads (None: one per core)."""
    temp_dir: str | None = None
    """Where spills go (None: a folder under the system temp dir)."""


class ColumnarLogs:
    """Window scans of the store ``reader`` reads; counters go to ``reader.stats``."""

    def __init__(self, reader: LogReader, config: EngineConfig | None = None) -> None:
        self.reader = reader
        self.config = config or EngineConfig()
        local = reader.fs.protocol in ("file", "local") or "file" in reader.fs.protocol
        self._pafs = (
            pafs.LocalFileSystem() if local else pafs.PyFileSystem(pafs.FSSpecHandler(reader.fs))
        )

    # -- the training join -----------------------------------------------------------------

    def impressions_with_clicks(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        policy: InvalidTrafficPolicy | None = None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """``LogReader.impressions_with_clicks`` as batches: the impression columns plus
        ``clicked`` (its valid clicked positions, in first-click order), in storage order.
        ``reader.stats`` holds the join's counters once the first batch is out."""
        policy = policy or InvalidTrafficPolicy()
        start, end = check_window(start, end)
        con = self._connect()
        try:
            self._register(con, "imps", "impression", start, end)
            self._register(con, "clicks", "click", start, end)
            con.execute(_JOIN_TABLES)
            flag = policy.user_max_ctr < 1.0
            con.execute(
                _FLAGGED,
                [policy.user_min_impressions, policy.user_max_ctr if flag else 2.0],
            )
            self._join_stats(con, policy)
            # One day at a time: the storage-order sort holds a day's rows, not the window's.
            days = con.execute("SELECT DISTINCT _ord >> 32 AS d FROM imps ORDER BY d").fetchall()
            for (day,) in days:
                lo, hi = day << 32, (day + 1) << 32
                params = [policy.all_positions_n, lo, hi]
                yield from con.sql(_JOINED, params=params).to_arrow_reader(batch_rows)
        finally:
            con.close()

    def _join_stats(self, con: Any, policy: InvalidTrafficPolicy) -> None:
        s = self.reader.stats
        s.duplicate_impressions += _one(con, "SELECT coalesce(sum(n - 1), 0) FROM dup")[0]
        dup_clicks, unmatched = _one(
            con,
            "SELECT coalesce(sum(n - 1), 0), count(*) FILTER (WHERE NOT EXISTS "
            "(SELECT 1 FROM ids WHERE ids.iid = cp.iid)) FROM cp",
        )
        s.duplicate_clicks += dup_clicks
        s.unmatched_clicks += unmatched
        s.invalid_click_positions += _one(con, "SELECT coalesce(sum(bad), 0) FROM ci")[0]
        for reason, n, clicks in con.execute(_INVALID, [policy.all_positions_n]).fetchall():
            s.invalid_impressions += n
            s.invalid_clicks += clicks
            s.invalid_by_reason[reason] = s.invalid_by_reason.get(reason, 0) + n
        s.invalid_users += _one(con, "SELECT count(*) FROM flagged")[0]

    # -- /v1/stats --------------------------------------------------------------------------

    def arm_stats(
        self,
        first_minute: int,
        last_minute: int,
        peek: Callable[[str], Ref | None],
        policy: InvalidTrafficPolicy | None = None,
    ) -> list[dict[str, Any]]:
        """``gateway.stats.LogStats.query`` over the impressions of minutes
        ``[first_minute, last_minute]`` (Unix minutes): one dict of ArmCounter fields per
        (arm, model_version), sorted. Impressions count once per (minute, id); a click counts
        for the impression its id names (``peek``: the id's minute, n, arm and model version;
        None: not counted), once per (impression, position); an impression with invalid
        traffic moves to the invalid counts. Clicks are read from the first minute's day on."""
        policy = policy or InvalidTrafficPolicy()
        start = datetime.fromtimestamp(first_minute * 60, UTC)
        end = datetime.fromtimestamp((last_minute + 1) * 60, UTC)
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)
        con = self._connect()
        try:
            self._register(con, "imps", "impression", start, end)
            self._register(con, "clicks", "click", day, None)
            refs: dict[str, list[Any]] = {"iid": [], "minute": [], "n": [], "arm": [], "mv": []}
            for (iid,) in con.execute("SELECT DISTINCT impression_id FROM clicks").fetchall():
                ref = peek(iid)
                if ref is None:
                    continue
                minute, n, arm, mv = ref
                if first_minute <= minute <= last_minute:
                    for key, value in zip(refs, (iid, minute, n, arm, mv), strict=True):
                        refs[key].append(value)
            con.register("refs", pa.table(refs, schema=_REFS))
            rows = con.execute(
                _ARM_STATS,
                [policy.all_positions_n],
            ).fetchall()
            names = (
                "arm",
                "model_version",
                "impressions",
                "clicks",
                "clicked_impressions",
                "fallbacks",
                "invalid_clicks",
                "invalid_impressions",
            )
            return [dict(zip(names, row, strict=True)) for row in rows]
        finally:
            con.close()

    # -- COR -------------------------------------------------------------------------------

    def transition_counts(
        self, start: datetime | None, end: datetime | None, max_gap_s: float | None
    ) -> tuple[Counter[tuple[str, str]], dict[str, Any]]:
        """``cor.extract.count_transitions`` over the query log of the window: the counts of
        consecutive (q, q_next) and the stats fields (``query_counts`` a Counter)."""
        start, end = check_window(start, end)
        con = self._connect()
        try:
            self._register(con, "queries", "query", start, end)
            gap = -1.0 if max_gap_s is None else float(max_gap_s)
            seg, pairs = _SEGMENTED.split(";", 1)
            con.execute(seg, [gap])
            con.execute(pairs)
            counts: Counter[tuple[str, str]] = Counter()
            for prev, q, n in con.execute(_TRANSITIONS).fetchall():
                counts[(prev, q)] = n
            query_counts: Counter[str] = Counter(
                dict(con.execute("SELECT q, count(*) FROM seg WHERE q <> '' GROUP BY q").fetchall())
            )
            sessions, events, segments, selfs = _one(con, _COR_STATS)
            stats = {
                "sessions": sessions,
                "events": events,
                "segments": segments,
                "self_transitions": selfs,
                "transitions": sum(counts.values()),
                "query_counts": query_counts,
            }
            return counts, stats
        finally:
            con.close()

    # -- internals -------------------------------------------------------------------------

    def _connect(self) -> Any:
        import duckdb

        c = self.config
        temp = c.temp_dir or os.path.join(tempfile.gettempdir(), "gqr-logstore-duckdb")
        config: dict[str, Any] = {"memory_limit": c.memory_limit, "temp_directory": temp}
        if c.threads:
            config["threads"] = c.threads
        con = duckdb.connect(":memory:", config=config)
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")  # timestamps come back in UTC, as records have them
        return con

    def _register(
        self, con: Any, name: str, kind: Kind, start: datetime | None, end: datetime | None
    ) -> None:
        """View ``name``: the kind's rows with ``start <= ts < end``, compacted or not."""
        compacted, segments = self.reader.sources(kind, start, end, self.reader._log)
        schema = SCHEMA[kind]
        con.register(
            f"{name}_pq",
            ds.dataset(compacted, schema=schema, format="parquet", filesystem=self._pafs),
        )
        con.register(f"{name}_js", self._parse(kind, segments))
        where = []
        params = []
        if start is not None:
            where.append("ts >= ?")
            params.append(start)
        if end is not None:
            where.append("ts < ?")
            params.append(end)
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        # A view with parameters is not allowed; the bounds are inlined as timestamps.
        for p in params:
            cond = cond.replace("?", f"TIMESTAMPTZ '{p.isoformat()}'", 1)
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT * FROM {name}_pq {cond} "
            f"UNION ALL SELECT * FROM {name}_js {cond}"
        )

    def _parse(self, kind: Kind, segments: list[str]) -> pa.Table:
        """The JSONL segments' records as one table of ``SCHEMA[kind]``."""
        batches = []
        by_day: dict[str, int] = {}
        for path in segments:
            folder = path.rsplit("/", 2)[-2]
            day = parse_day(folder)
            first = (ord_base(day) if day else 0) + LATE + by_day.get(folder, 0)
            records: list[Record] = list(self.reader._read_file(kind, path, self.reader._log))
            by_day[folder] = by_day.get(folder, 0) + len(records)
            batches.append(to_batch(kind, records, first))
        return pa.Table.from_batches(batches, schema=SCHEMA[kind])


def _one(con: Any, sql: str) -> tuple[Any, ...]:
    """The one row of ``sql``, fetched to the end (DuckDB keeps a result open until then)."""
    rows = con.execute(sql).fetchall()
    return tuple(rows[0])


# The join, step by step (each a temp table DuckDB may spill):
# cp: each (impression, position) clicked in the window, the verdict of its first click.
# dup: impression ids seen more than once, with the storage place of the first.
# ids: the distinct impression ids of the window (what a click can match).
# ci: per impression id kept, its clicks: bad positions, valid ones in first-click order,
#     the first recorded verdict among the valid ones.
_JOIN_TABLES = """
CREATE TEMP TABLE cp AS
  SELECT impression_id AS iid, position AS pos, first(invalid ORDER BY _ord) AS invalid,
         min(_ord) AS o, count(*) AS n
  FROM clicks GROUP BY 1, 2;
CREATE TEMP TABLE dup AS
  SELECT impression_id AS iid, min(_ord) AS keep, count(*) AS n
  FROM imps GROUP BY 1 HAVING count(*) > 1;
CREATE TEMP VIEW kept AS
  SELECT i.* FROM imps i LEFT JOIN dup d ON d.iid = i.impression_id
  WHERE d.keep IS NULL OR d.keep = i._ord;
CREATE TEMP VIEW ids AS SELECT DISTINCT impression_id AS iid FROM imps;
CREATE TEMP TABLE ci AS
  SELECT k.impression_id AS iid,
         count(*) FILTER (WHERE cp.pos >= len(k.queries)) AS bad,
         list(cp.pos ORDER BY cp.o) FILTER (WHERE cp.pos < len(k.queries)) AS valid,
         first(cp.invalid ORDER BY cp.o) FILTER (
           WHERE cp.pos < len(k.queries) AND cp.invalid IS NOT NULL) AS reason,
         len(any_value(k.queries)) AS shown
  FROM kept k JOIN cp ON cp.iid = k.impression_id GROUP BY 1;
"""
# flagged: users over the click ceiling (the user_ctr rule; a ceiling of 2 flags nobody).
_FLAGGED = """
CREATE TEMP TABLE flagged AS
  SELECT k.user_key FROM kept k LEFT JOIN (SELECT DISTINCT iid FROM cp) c
    ON c.iid = k.impression_id
  WHERE k.user_key <> ''
  GROUP BY 1
  HAVING count(*) >= ? AND count(c.iid) > ? * count(*);
"""
# The reason an impression is left out: its user is flagged, else impression_verdict.
_REASON = """
  CASE WHEN f.user_key IS NOT NULL THEN 'user_ctr'
       WHEN ci.reason IS NOT NULL THEN ci.reason
       WHEN $1 > 0 AND ci.shown >= $1 AND len(ci.valid) = ci.shown THEN 'all_positions'
  END
"""
_INVALID = f"""
SELECT reason, count(*), sum(clicks) FROM (
  SELECT {_REASON} AS reason, coalesce(len(ci.valid), 0) AS clicks
  FROM kept k LEFT JOIN ci ON ci.iid = k.impression_id
  LEFT JOIN flagged f ON f.user_key = k.user_key
  WHERE ci.iid IS NOT NULL OR f.user_key IS NOT NULL
) WHERE reason IS NOT NULL GROUP BY 1 ORDER BY 1
"""
_JOINED = f"""
SELECT k.* EXCLUDE (_ord), coalesce(ci.valid, []::INTEGER[]) AS clicked
FROM kept k LEFT JOIN ci ON ci.iid = k.impression_id
LEFT JOIN flagged f ON f.user_key = k.user_key
WHERE ({_REASON}) IS NULL AND k._ord >= $2 AND k._ord < $3
ORDER BY k._ord
"""
# /v1/stats. im: impressions once per (minute, id), the first record's arm. cl: per clicked
# impression (minute, arm and version from its id), its positions shown, the first verdict
# of each, and whether the impression record was read.
_ARM_STATS = """
WITH im AS (
  SELECT minute, impression_id, first(arm ORDER BY _ord) AS arm,
         first(model_version ORDER BY _ord) AS mv, first(fallback ORDER BY _ord) AS fb
  FROM (SELECT *, epoch_ms(ts) // 60000 AS minute FROM imps) GROUP BY 1, 2
),
cp AS (
  SELECT r.iid, any_value(r.minute) AS minute, any_value(r.n) AS n,
         any_value(r.arm) AS arm, any_value(r.mv) AS mv, c.position AS pos,
         first(c.invalid ORDER BY c._ord) AS invalid, min(c._ord) AS o
  FROM clicks c JOIN refs r ON r.iid = c.impression_id
  WHERE c.position >= 0 AND c.position < r.n
  GROUP BY r.iid, c.position
),
cl AS (
  SELECT iid, any_value(minute) AS minute, any_value(arm) AS arm, any_value(mv) AS mv,
         count(*) AS clicks,
         first(invalid ORDER BY o) FILTER (WHERE invalid IS NOT NULL) IS NOT NULL
           OR ($1 > 0 AND any_value(n) >= $1 AND count(*) = any_value(n)) AS bad
  FROM cp GROUP BY iid
),
cl_seen AS (
  SELECT cl.*, EXISTS (SELECT 1 FROM im WHERE im.minute = cl.minute
                       AND im.impression_id = cl.iid) AS seen
  FROM cl
),
rows AS (
  SELECT arm, mv, count(*) AS impressions, 0 AS clicks, 0 AS clicked, count(*) FILTER (WHERE fb)
         AS fallbacks, 0 AS invalid_clicks, 0 AS invalid_impressions
  FROM im GROUP BY 1, 2
  UNION ALL
  SELECT arm, mv, -count(*) FILTER (WHERE bad AND seen), sum(clicks) FILTER (WHERE NOT bad),
         count(*) FILTER (WHERE NOT bad), 0, sum(clicks) FILTER (WHERE bad),
         count(*) FILTER (WHERE bad AND seen)
  FROM cl_seen GROUP BY 1, 2
)
SELECT arm, mv, sum(impressions)::BIGINT, coalesce(sum(clicks), 0)::BIGINT,
       sum(clicked)::BIGINT, sum(fallbacks)::BIGINT, coalesce(sum(invalid_clicks), 0)::BIGINT,
       sum(invalid_impressions)::BIGINT
FROM rows GROUP BY 1, 2 ORDER BY 1, 2
"""
# COR: sessions ordered by ts (ties: storage order); a gap over max_gap_s starts a segment;
# empty normalised queries are dropped after the gap test; within a segment, consecutive
# (prev, q) with q <> prev are transitions, q = prev self-transitions.
_SEGMENTED = """
CREATE TEMP TABLE seg AS
  SELECT session_id, q, ts, o, sum(brk) OVER (PARTITION BY session_id ORDER BY ts, o) AS segno
  FROM (
    SELECT session_id, _qnorm AS q, ts, _ord AS o,
      CASE WHEN $1 >= 0 AND epoch(ts) - epoch(lag(ts) OVER w) > $1 THEN 1 ELSE 0 END AS brk
    FROM queries WINDOW w AS (PARTITION BY session_id ORDER BY ts, _ord)
  );
CREATE TEMP TABLE pairs AS
  SELECT lag(q) OVER (PARTITION BY session_id, segno ORDER BY ts, o) AS prev, q
  FROM seg WHERE q <> '';
"""
_TRANSITIONS = """
SELECT prev, q, count(*) FROM pairs WHERE prev IS NOT NULL AND prev <> q GROUP BY 1, 2
"""
_COR_STATS = """
SELECT (SELECT count(DISTINCT session_id) FROM queries),
       (SELECT count(*) FROM queries),
       (SELECT count(*) FROM (SELECT DISTINCT session_id, segno FROM seg WHERE q <> '')),
       (SELECT count(*) FROM pairs WHERE prev = q)
"""
