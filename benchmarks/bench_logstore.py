"""Throughput of the log store against plain unsynced file writes of the same lines.

    .venv/bin/python benchmarks/bench_logstore.py [--impressions 50000] [--dir /var/tmp]

Prints progress on stderr and one JSON line on stdout: records/s for ``write_many`` in
batches of 1000, for single ``write`` calls from 8 threads, and for reading everything back,
each with its ratio to a baseline measured in the same run (serialize + ``f.write``, no fsync;
for reads: iterate the lines of one plain file, parse each with ``LOG_RECORD``). Use ``--dir`` on
the disk you care about: on tmpfs an fsync is free and the numbers flatter the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gqr_serving.logstore.layout import Record


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--impressions",
        type=int,
        default=50_000,
        help="impressions (plus ~0.3 clicks and 1 query each)",
    )
    p.add_argument(
        "--single-writes", type=int, default=8_000, help="records for the 8-thread single-write run"
    )
    p.add_argument("--dir", default=None, help="where to write (default: the temp dir)")
    return p


def _records(n: int) -> list[Record]:
    from gqr_serving.records import ClickRecord, ImpressionRecord, QueryLogRecord, SideInfo

    t0 = datetime.now(UTC) - timedelta(hours=1)
    out: list[Record] = []
    for i in range(n):
        ts = t0 + timedelta(milliseconds=i)
        out.append(QueryLogRecord(session_id=f"s{i // 5}", ts=ts, query=f"how to cook dish {i}"))
        out.append(
            ImpressionRecord(
                impression_id=f"imp-{i}",
                ts=ts,
                deployment="bench",
                task="suggestion",
                arm="stable" if i % 10 else "canary",
                model_version="v1",
                session_id=f"s{i // 5}",
                user_key="u" * 16,
                query=f"how to cook dish {i}",
                side_info=SideInfo(history=["earlier query"], ai_response="An answer. " * 10),
                queries=[f"follow-up {i} {k}" for k in range(3)],
            )
        )
        if i % 3 == 0:
            out.append(ClickRecord(impression_id=f"imp-{i}", position=i % 3, ts=ts))
    return out


def _timed(label: str, n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    rps = n / (time.perf_counter() - start)
    print(f"{label:<28} {rps:>12,.0f} records/s", file=sys.stderr)
    return rps


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    from gqr_serving.logstore import LogReader, LogWriter
    from gqr_serving.records import LOG_RECORD

    print(f"building {args.impressions} impressions + clicks + queries...", file=sys.stderr)
    records = _records(args.impressions)
    n = len(records)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-logstore-") as tmp:
        base = Path(tmp)

        def baseline_write() -> None:
            with (base / "plain.jsonl").open("w") as f:
                for rec in records:
                    f.write(rec.model_dump_json() + "\n")

        def write_many() -> None:
            with LogWriter(base / "store", "bench") as w:
                for k in range(0, n, 1000):
                    w.write_many(records[k : k + 1000])

        singles = records[: args.single_writes]

        def write_threads() -> None:
            with LogWriter(base / "singles", "bench") as w:

                def work(part: list[Record]) -> None:
                    for rec in part:
                        w.write(rec)

                threads = [threading.Thread(target=work, args=(singles[t::8],)) for t in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

        def baseline_read() -> None:
            with (base / "plain.jsonl").open("rb") as f:
                for line in f:
                    LOG_RECORD.validate_json(line)

        def read() -> None:
            r = LogReader(base / "store")
            got = sum(1 for kind in ("impression", "click", "query") for _ in r.read(kind))
            assert got == n, (got, n)

        base_w = _timed("baseline f.write (no fsync)", n, baseline_write)
        many = _timed("write_many x1000", n, write_many)
        single = _timed("write, 8 threads", len(singles), write_threads)
        base_r = _timed("baseline read + parse", n, baseline_read)
        read_rps = _timed("LogReader.read", n, read)
    result = {
        "records": n,
        "dir": args.dir or tempfile.gettempdir(),
        "baseline_write_rps": round(base_w),
        "write_many_rps": round(many),
        "write_many_ratio": round(many / base_w, 3),
        "write_8threads_rps": round(single),
        "write_8threads_ratio": round(single / base_w, 3),
        "baseline_read_rps": round(base_r),
        "read_rps": round(read_rps),
        "read_ratio": round(read_rps / base_r, 3),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
