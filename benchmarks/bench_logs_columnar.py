"""Columnar logs vs the JSONL path: the training join, COR counting and /v1/stats over a
simulated log store, each path and window in its own subprocess (rows/s and peak RSS).

    .venv/bin/python benchmarks/bench_logs_columnar.py --impressions 10000000 --dir /var/tmp

Writes ``--impressions`` impressions over ``--days`` closed days (gateway impression ids, 0.5%
written twice, ~12% clicked on one or two positions, some clicks with an invalid-traffic
verdict, a click farm), one query-log line per two impressions, in 64 MiB JSONL segments as
the gateway leaves them; compacts the days (``gqr_serving.logstore.compact``), then runs each
read through both paths for each ``--windows`` size (days) and prints rows/s, peak RSS, the
columnar/JSONL ratios and whether both paths gave the same result. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEGMENT_BYTES = 64 << 20
OPS = ("join", "cor", "stats")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the simulated store ---------------------------------------------------------------------


class Segments:
    """Appends lines to ``<root>/<kind>/<day>/<writer>-<seq>.jsonl``, rotating at 64 MiB."""

    def __init__(self, root: Path, writer: str) -> None:
        self.root, self.writer, self.seq = root, writer, 0
        self.open: dict[tuple[str, str], tuple[Any, int]] = {}

    def add(self, kind: str, day: str, line: str) -> None:
        f, size = self.open.get((kind, day), (None, 0))
        data = line.encode() + b"\n"
        if f is None or size + len(data) > SEGMENT_BYTES:
            if f is not None:
                f.close()
            self.seq += 1
            folder = self.root / kind / day
            folder.mkdir(parents=True, exist_ok=True)
            f, size = (folder / f"{self.writer}-{self.seq:08d}.jsonl").open("wb"), 0
        f.write(data)
        self.open[(kind, day)] = (f, size + len(data))

    def close(self) -> None:
        for f, _ in self.open.values():
            f.close()


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_day(root: Path, day: datetime, n: int, seed: int) -> None:
    from gqr_serving.gateway.ids import Keys

    keys = Keys(b"k" * 32)
    rng = random.Random(seed)
    out = Segments(root, f"gw{seed:03d}")
    users = max(n // 20, 1)
    words = [f"w{i}" for i in range(5000)]
    for i in range(n):
        ts = day + timedelta(microseconds=rng.randrange(86_400_000_000))
        shown = rng.randrange(3, 7)
        arm = "canary" if rng.random() < 0.1 else "stable"
        iid = keys.new_impression_id(int(ts.timestamp() * 1000), shown, arm, "v1")
        user = "farm" if i % 997 == 0 else f"u{rng.randrange(users)}"
        query = " ".join(rng.sample(words, 2))
        rec = {
            "schema_version": 1,
            "kind": "impression",
            "impression_id": iid,
            "ts": _iso(ts),
            "deployment": "prod",
            "task": "suggestion",
            "arm": arm,
            "model_version": "v1",
            "session_id": f"s{seed}-{i // 4}",
            "user_key": user,
            "query": query,
            "side_info": {
                "history": [query],
                "ai_response": None,
                "cooccurring": [],
                "documents": [],
                "prefix": None,
            },
            "aux_texts": {},
            "queries": [f"{query} {w}" for w in rng.sample(words, shown)],
            "fallback": rng.random() < 0.01,
        }
        line = json.dumps(rec, separators=(",", ":"))
        d = ts.date().isoformat()
        out.add("impression", d, line)
        if rng.random() < 0.005:
            out.add("impression", d, line)  # a replayed spool
        if user == "farm" or rng.random() < 0.12:
            for pos in rng.sample(range(shown), 1 if rng.random() < 0.8 else 2):
                cts = ts + timedelta(seconds=rng.randrange(2, 600))
                click: dict[str, Any] = {
                    "schema_version": 1,
                    "kind": "click",
                    "impression_id": iid,
                    "position": pos,
                    "ts": _iso(cts),
                }
                if rng.random() < 0.01:
                    click["invalid"] = "too_fast"
                out.add("click", cts.date().isoformat(), json.dumps(click, separators=(",", ":")))
        if i % 2 == 0:
            q = {
                "schema_version": 1,
                "kind": "query",
                "session_id": f"s{seed}-{i // 8}",
                "ts": _iso(ts),
                "query": query if rng.random() < 0.9 else query.upper(),
                "user_key": user,
            }
            out.add("query", d, json.dumps(q, separators=(",", ":")))
    out.close()


def make_store(root: Path, impressions: int, days: int, today: datetime) -> None:
    chunks = days * 4  # a quarter of a day's traffic per task, two processes
    per = impressions // chunks
    with ProcessPoolExecutor(2) as pool:
        futures = []
        for c in range(chunks):
            day = today - timedelta(days=days - c // 4)
            futures.append(pool.submit(make_day, root, day, per, c))
        for i, f in enumerate(futures, 1):
            f.result()
            say(f"generated {i}/{chunks} chunks ({i * per:,} impressions)")


# -- one measured read, in a subprocess --------------------------------------------------------


def measure(
    root: str, path: str, op: str, days: int, today: datetime, memory: str
) -> dict[str, Any]:
    # Imports first: the clock times the reads, not loading the libraries.
    from gqr_serving.gateway.stats import LogStats
    from gqr_serving.logstore import LogReader
    from gqr_serving.logstore.engine import ColumnarLogs, EngineConfig
    from gqr_training.cor.extract import ExtractConfig, ExtractStats, count_transitions
    from gqr_training.cor.sources import logstore_sessions, logstore_transitions

    start, end = today - timedelta(days=days), today
    t0 = time.perf_counter()
    if op == "join":
        reader = LogReader(root)
        rows = clicks = 0
        if path == "jsonl":
            for _, clicked in reader.impressions_with_clicks(start, end):
                rows += 1
                clicks += len(clicked)
        else:
            engine = ColumnarLogs(reader, EngineConfig(memory_limit=memory))
            for batch in engine.impressions_with_clicks(start, end):
                rows += batch.num_rows
                clicks += sum(len(c) for c in batch.column("clicked").to_pylist())
        s = reader.stats
        result: Any = [rows, clicks, s.duplicate_impressions, s.invalid_impressions]
        result += [s.invalid_clicks, s.invalid_users, s.unmatched_clicks, s.duplicate_clicks]
        scanned = s.records
    elif op == "cor":
        stats, config = ExtractStats(), ExtractConfig()
        if path == "jsonl":
            counts = count_transitions(logstore_sessions(root, start, end), config, stats)
        else:
            counts = logstore_transitions(root, start, end, config, stats)
        result = [len(counts), sum(counts.values()), stats.sessions, stats.segments]
        scanned = stats.events
    else:
        window_s = (datetime.now(UTC) - start).total_seconds()  # the days, and empty today
        ls = LogStats(root, max_window_s=window_s + 3600, columnar=path == "columnar")
        _, arms = ls.query(window_s, fresh=True)
        result = [[r.arm, r.impressions, r.clicks, r.invalid_impressions] for r in arms]
        scanned = sum(r.impressions + r.invalid_impressions for r in arms)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"s": wall, "rows": scanned, "peak_mb": peak_mb, "result": result}


def run_child(args: argparse.Namespace, path: str, op: str, days: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", path, op, str(days), "--dir", args.root]
    cmd += ["--today", args.today, "--memory-limit", args.memory_limit]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{path} {op} {days}d failed:\n{out.stderr[-3000:]}")
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def compact_child(root: str) -> dict[str, Any]:
    from gqr_serving.logstore.compact import compact

    t0 = time.perf_counter()
    # The generator's segments are closed (no writer holds them) but were written just now:
    # no mtime guard, the day-end rule alone (every simulated day ended before today).
    result = compact(root, progress=say, open_guard_s=0)
    return {
        "s": time.perf_counter() - t0,
        "rows": result.rows,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def du(path: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in path.rglob(f"*{suffix}"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--impressions", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=14, help="days of traffic written")
    p.add_argument("--windows", default="7,14", help="window sizes read, in days")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where the store is made")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB's memory ceiling")
    p.add_argument("--keep", action="store_true", help="keep the store afterwards")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--today", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        path, op, days = args.child
        today = datetime.fromisoformat(args.today)
        if path == "compact":
            print(json.dumps(compact_child(args.dir)))
        else:
            print(json.dumps(measure(args.dir, path, op, int(days), today, args.memory_limit)))
        return
    windows = [int(w) for w in args.windows.split(",")]
    if max(windows) > args.days:
        p.error(f"--windows {args.windows}: a window longer than --days {args.days}")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    args.today = today.isoformat()
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="bench-logs-columnar-"))
    args.root = str(root)
    try:
        say(f"writing {args.impressions:,} impressions over {args.days} days under {root}")
        t0 = time.perf_counter()
        make_store(root, args.impressions, args.days, today)
        jsonl_gb = du(root, ".jsonl") / 1e9
        say(f"store written in {time.perf_counter() - t0:.0f}s: {jsonl_gb:.1f} GB of JSONL")
        say("compacting (one-off per closed day)")
        comp = run_child(args, "compact", "-", 0)
        parquet_gb = du(root, ".parquet") / 1e9
        say(
            f"compacted {comp['rows']:,} records in {comp['s']:.0f}s "
            f"({comp['rows'] / comp['s']:,.0f} rows/s, peak {comp['peak_mb']:.0f} MB): "
            f"{parquet_gb:.2f} GB of Parquet"
        )
        table = []
        for days in windows:
            for op in OPS:
                got = {}
                for path in ("jsonl", "columnar"):
                    say(f"{op} over {days} days, {path} path")
                    got[path] = run_child(args, path, op, days)
                    r = got[path]
                    say(f"  {r['rows']:,} rows in {r['s']:.1f}s, peak {r['peak_mb']:.0f} MB")
                table.append((days, op, got["jsonl"], got["columnar"]))
        print(
            f"\n{args.impressions:,} impressions over {args.days} days; JSONL {jsonl_gb:.1f} GB, "
            f"Parquet {parquet_gb:.2f} GB; compaction {comp['rows'] / comp['s']:,.0f} rows/s, "
            f"peak {comp['peak_mb']:.0f} MB; DuckDB memory_limit {args.memory_limit}"
        )
        head = (
            f"{'window':>6} {'read':<6} {'rows':>11} {'jsonl rows/s':>13} {'columnar rows/s':>16}"
            f" {'speed-up':>9} {'jsonl MB':>9} {'columnar MB':>12} {'same result':>12}"
        )
        print(head)
        for days, op, j, c in table:
            print(
                f"{days:>5}d {op:<6} {j['rows']:>11,} {j['rows'] / j['s']:>13,.0f} "
                f"{c['rows'] / c['s']:>16,.0f} {j['s'] / c['s']:>8.1f}x {j['peak_mb']:>9,.0f} "
                f"{c['peak_mb']:>12,.0f} {'yes' if j['result'] == c['result'] else 'NO':>12}"
            )
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
