"""Recommend latency with --impression-durability async vs ack, in the same run.

    .venv/bin/python -m benchmarks.bench_impression_durability [--dir /a/folder/on/the/disk] \
        [--requests 2000] [--concurrency 16] [--rounds 2]

(from the repository root, as a module: it imports ``testsupport``). One real gateway process
per mode and round (rounds interleave the modes, so drift of a shared machine hits both), the
LLM an instant TGI stand-in (``testsupport.http_stub``) so the gateway's own cost and the
impression commit are what is measured; no COR, rate limits off. The log store and spool live
under ``--dir`` (default: a temp folder): fsync cost is the disk's, so point it at the disk
the gateway would use. Each request is a fresh user; latency is client-side, per request, at
``--concurrency`` requests in flight. Printed per mode: p50/p90/p99/mean latency, throughput,
and for ack the requests per group commit, a commit's mean duration (write + fsync) and where
impressions were acknowledged (store or spool); then ack/async ratios. After each round the
store must hold every impression served (checked; a mismatch exits 1). Prints one JSON line
last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

try:
    from testsupport import http_stub
    from testsupport.percentile import pct
    from testsupport.procs import (
        PY,
        free_port,
        kill,
        start,
        stop_process_group,
        wait_http,
        wait_port,
    )
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_impression_durability from the repository root"
    ) from None

MODES = ("async", "ack")
WARMUP = 100


async def _load(url: str, n: int, concurrency: int, tag: str) -> tuple[list[float], float]:
    """``n`` recommends, ``concurrency`` at a time; (latencies in s, wall seconds)."""
    latencies: list[float] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                body = {"task": "suggestion", "query": "what is green tea", "user_key": f"{tag}{i}"}
                t0 = time.perf_counter()
                r = await client.post("/v1/recommend", json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"recommend answered {r.status_code}: {r.text[:200]}")

        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start_t


def _metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(("gqr_gateway_group_commit_", "gqr_gateway_impression_acks")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _round(mode: str, work: Path, args: argparse.Namespace, r: int) -> dict[str, Any]:
    port, folder = free_port(), work / f"{mode}-{r}"
    argv = [
        PY, "-m", "gqr_serving.gateway.cli",
        "--log-root", str(folder / "logs"), "--spool-dir", str(folder / "spool"),
        "--routing-file", str(work / "routing.json"), "--impression-durability", mode,
        "--rate-recommend-user-per-s", "0", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    folder.mkdir(parents=True)
    proc = start(argv, folder / "gateway.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", proc, 120)
        asyncio.run(_load(url, WARMUP, args.concurrency, f"w{r}-"))
        lat, wall = asyncio.run(_load(url, args.requests, args.concurrency, f"m{r}-"))
        metrics = _metrics(url)
    finally:
        stop_process_group(proc, 30)
        kill(proc)
    from gqr_serving.logstore import LogReader

    stored = {rec.impression_id for rec in LogReader(folder / "logs").read("impression")}
    if len(stored) != WARMUP + args.requests:
        raise SystemExit(
            f"{mode}: {len(stored)} impressions stored, {WARMUP + args.requests} served"
        )
    commits = metrics.get("gqr_gateway_group_commit_requests_count", 0.0)
    return {
        "latencies": lat,
        "rps": len(lat) / wall,
        "per_commit": metrics.get("gqr_gateway_group_commit_requests_sum", 0.0) / commits
        if commits
        else None,
        "commit_ms": metrics.get("gqr_gateway_group_commit_seconds_sum", 0.0) * 1e3 / commits
        if commits
        else None,
        "acks": {k.split('"')[1]: v for k, v in metrics.items() if "impression_acks_total" in k},
    }


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    lat = sorted(x for r in rounds for x in r["latencies"])
    per_commit = [r["per_commit"] for r in rounds if r["per_commit"] is not None]
    commit_ms = [r["commit_ms"] for r in rounds if r["commit_ms"] is not None]
    acks: dict[str, float] = {}
    for r in rounds:
        for k, v in r["acks"].items():
            acks[k] = acks.get(k, 0) + v
    return {
        "p50_ms": pct(lat, 0.50) * 1e3,
        "p90_ms": pct(lat, 0.90) * 1e3,
        "p99_ms": pct(lat, 0.99) * 1e3,
        "mean_ms": statistics.fmean(lat) * 1e3,
        "rps": statistics.fmean(r["rps"] for r in rounds),
        "requests_per_commit": statistics.fmean(per_commit) if per_commit else None,
        "commit_ms": statistics.fmean(commit_ms) if commit_ms else None,
        "acks": acks,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, help="Folder for the log stores (default: a temp one).")
    p.add_argument("--requests", type=int, default=2000, help="Measured recommends a round.")
    p.add_argument("--concurrency", type=int, default=16, help="Requests in flight.")
    p.add_argument("--rounds", type=int, default=2, help="Rounds of each mode, interleaved.")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-durability-") as tmp:
        work = Path(tmp)
        tgi_port = free_port()
        tgi = start([PY, http_stub.__file__, str(tgi_port)], work / "tgi.log")
        try:
            wait_port(tgi_port, tgi)
            backend = {"kind": "tgi", "transport": "http", "url": f"http://127.0.0.1:{tgi_port}"}
            arm = {"name": "stable", "weight": 1, "model_version": "bench", "backend": backend}
            (work / "routing.json").write_text(json.dumps({"arms": [arm]}))
            results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
            for r in range(args.rounds):
                for mode in MODES:
                    results[mode].append(_round(mode, work, args, r))
        finally:
            kill(tgi)
    summary = {m: _summary(rs) for m, rs in results.items()}
    for mode, s in summary.items():
        extra = (
            f", {s['requests_per_commit']:.1f} requests/commit of {s['commit_ms']:.2f} ms, "
            f"acks {s['acks']}"
            if mode == "ack"
            else ""
        )
        print(
            f"{mode:5s}: p50 {s['p50_ms']:.2f} ms  p90 {s['p90_ms']:.2f} ms  "
            f"p99 {s['p99_ms']:.2f} ms  mean {s['mean_ms']:.2f} ms  {s['rps']:.0f} req/s{extra}"
        )
    ratios = {
        k: summary["ack"][k] / summary["async"][k] for k in ("p50_ms", "p90_ms", "p99_ms", "rps")
    }
    print("ack/async: " + "  ".join(f"{k} x{v:.2f}" for k, v in ratios.items()))
    print(json.dumps({"summary": summary, "ratios": ratios, "args": {
        "requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
        "dir": str(args.dir or tempfile.gettempdir())}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
