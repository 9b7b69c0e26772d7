"""Which columnar engine the log store's joins use: DuckDB, Polars or pyarrow (Acero), measured
on the same Parquet files doing the join the training read does (dedup impressions by id, the
first click of each (impression, position), clicked positions per impression, impressions and
clicked impressions per user), each engine in its own subprocess for its peak RSS.

Polars is not a project dependency; run this from a scratch environment:

    python3.11 -m venv /tmp/engines && /tmp/engines/bin/pip install duckdb polars pyarrow psutil
    /tmp/engines/bin/python benchmarks/probe_columnar_engines.py --rows 3000000 --dir /var/tmp
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_data(folder: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    days = 7
    per_day = rows // days
    for d in range(days):
        n = per_day
        ids = np.char.add(f"d{d}-", np.arange(n).astype(str))
        ids[::500] = ids[1::500][: len(ids[::500])]  # a few duplicate ids
        users = np.char.add("u", rng.integers(0, rows // 40, n).astype(str))
        shown = rng.integers(3, 7, n)
        offsets = np.concatenate([[0], np.cumsum(shown)])
        words = np.char.add("q", (np.arange(offsets[-1]) % 9973).astype(str))
        queries = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(words))
        imps = pa.table(
            {
                "impression_id": ids,
                "user_key": users,
                "query": np.char.add("query ", (np.arange(n) % 50000).astype(str)),
                "queries": queries,
                "_ord": np.arange(n, dtype=np.int64) + (d << 32),
            }
        )
        pq.write_table(imps, folder / f"imp-{d}.parquet", row_group_size=128_000)
        c = n // 10
        clicks = pa.table(
            {
                "impression_id": ids[rng.integers(0, n, c)],
                "position": rng.integers(0, 6, c).astype(np.int32),
                "invalid": pa.array([None] * c, pa.string()),
                "_ord": np.arange(c, dtype=np.int64) + (d << 32),
            }
        )
        pq.write_table(clicks, folder / f"click-{d}.parquet")


def run_duckdb(folder: Path) -> int:
    import duckdb

    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2})
    con.execute("SET enable_progress_bar = false")
    imp = f"read_parquet('{folder}/imp-*.parquet')"
    clk = f"read_parquet('{folder}/click-*.parquet')"
    sql = f"""
    WITH cp AS (SELECT impression_id iid, position pos, first(invalid ORDER BY _ord) inv,
                       min(_ord) o FROM {clk} GROUP BY 1, 2),
    dup AS (SELECT impression_id iid, min(_ord) keep FROM {imp} GROUP BY 1 HAVING count(*) > 1),
    kept AS (SELECT i.* FROM {imp} i LEFT JOIN dup d ON d.iid = i.impression_id
             WHERE d.keep IS NULL OR d.keep = i._ord),
    ci AS (SELECT cp.iid, list(pos ORDER BY o) pos FROM cp JOIN kept k ON k.impression_id = cp.iid
           WHERE pos < len(k.queries) GROUP BY 1)
    SELECT k.*, coalesce(ci.pos, []) clicked FROM kept k LEFT JOIN ci ON ci.iid = k.impression_id
    """
    n = 0
    reader = con.sql(sql).to_arrow_reader(100_000)
    for batch in reader:
        n += batch.num_rows
    users = con.execute(
        f"SELECT user_key, count(*) FROM {imp} GROUP BY 1 HAVING count(*) >= 50"
    ).fetchall()
    return n + 0 * len(users)


def run_polars(folder: Path) -> int:
    import polars as pl

    imp = pl.scan_parquet(f"{folder}/imp-*.parquet")
    clk = pl.scan_parquet(f"{folder}/click-*.parquet")
    cp = (
        clk.sort("_ord")
        .group_by(["impression_id", "position"], maintain_order=True)
        .agg(pl.col("invalid").first(), pl.col("_ord").min().alias("o"))
    )
    kept = imp.sort("_ord").unique("impression_id", keep="first", maintain_order=True)
    ci = (
        cp.join(
            kept.select("impression_id", pl.col("queries").list.len().alias("shown")),
            on="impression_id",
        )
        .filter(pl.col("position") < pl.col("shown"))
        .sort("o")
        .group_by("impression_id")
        .agg(pl.col("position").alias("clicked"))
    )
    out = kept.join(ci, on="impression_id", how="left")
    n = 0
    for df in out.collect_batches(chunk_size=100_000):
        n += df.height
    imp.group_by("user_key").agg(pl.len()).filter(pl.col("len") >= 50).collect(engine="streaming")
    return n


def run_pyarrow(folder: Path) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    imp = ds.dataset(sorted(str(p) for p in folder.glob("imp-*.parquet")))
    clk = ds.dataset(sorted(str(p) for p in folder.glob("click-*.parquet"))).to_table()
    clk = clk.sort_by("_ord")
    cp = clk.group_by(["impression_id", "position"], use_threads=False).aggregate(
        [("invalid", "first"), ("_ord", "min")]
    )
    ids = imp.to_table(columns=["impression_id", "_ord"])
    dup = ids.group_by("impression_id").aggregate([("_ord", "min"), ("_ord", "count")])
    dup = dup.filter(pc.greater(dup["_ord_count"], 1))
    n = 0
    for batch in imp.to_batches(batch_size=100_000):
        t = pa.Table.from_batches([batch]).join(dup, "impression_id", join_type="left outer")
        t = t.filter(pc.or_(pc.is_null(t["_ord_min"]), pc.equal(t["_ord"], t["_ord_min"])))
        t = t.join(cp, "impression_id", join_type="left outer")
        n += t.num_rows
    imp.to_table(columns=["user_key"]).group_by("user_key").aggregate([("user_key", "count")])
    return n


def child(engine: str, folder: Path) -> None:
    import psutil

    t0 = time.perf_counter()
    n = {"duckdb": run_duckdb, "polars": run_polars, "pyarrow": run_pyarrow}[engine](folder)
    wall = time.perf_counter() - t0
    rss = psutil.Process().memory_info()
    peak = getattr(rss, "peak_wset", None) or _peak_rss()
    print(json.dumps({"engine": engine, "rows_out": n, "s": round(wall, 2), "peak_rss_mb": peak}))


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=3_000_000)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--child", nargs=2)
    a = p.parse_args()
    if a.child:
        child(a.child[0], Path(a.child[1]))
        return
    with tempfile.TemporaryDirectory(dir=a.dir, prefix="engines-") as tmp:
        make_data(Path(tmp), a.rows)
        for engine in ("duckdb", "polars", "pyarrow"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine, tmp],
                capture_output=True,
                text=True,
                env={**os.environ, "POLARS_MAX_THREADS": "2"},
            )
            print(
                out.stdout.strip() or f"{engine}: failed: {out.stderr.strip()[-400:]}", flush=True
            )


if __name__ == "__main__":
    main()
