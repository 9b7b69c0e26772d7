"""Gateway overhead: p50/p99 latency at a fixed rate and max throughput, LLM made instant.

    .venv/bin/python benchmarks/bench_gateway.py [--rate 200] [--seconds 10] [--ctr]

The LLM is an instant local server speaking TGI's ``POST /generate`` (the only stand-in, to
isolate the gateway's own cost); COR runs on a real milvus-lite server; ``--ctr`` adds the real
kserve CTR predictor (tiny random-init model) and the over-generate-and-rerank step. Clicks are
posted for ~30% of impressions and ``/v1/stats`` is checked against what was sent.
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "gateway"))
from gw_live_helpers import (
    PY,
    build_ctr_artifact,
    free_port,
    kill,
    publish_cor,
    start,
    wait_http,
    wait_port,
)

INSTANT_TGI = r"""
import asyncio, json, sys
REPLY = json.dumps({"generated_text": "green tea side effects <SEP> best green tea brands "
                    "<SEP> green tea caffeine <SEP> iced green tea <SEP> green tea for sleep "
                    "<SEP> green tea recipes"}).encode()
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            await r.readexactly(n)
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        w.close()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    await s.serve_forever()
asyncio.run(main())
"""
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A drink."}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


async def fixed_rate(url: str, rate: float, seconds: float) -> tuple[list[float], int, dict]:
    lat: list[float] = []
    errors = 0
    sent: dict[str, set[int]] = {}
    rng = random.Random(0)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as c:

        async def one(i: int) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            r = await c.post("/v1/recommend", json={**REQ, "user_key": f"u{i}"})
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                return
            body = r.json()
            if rng.random() < 0.3:
                pos = [rng.randrange(len(body["queries"]))]
                f = await c.post(
                    "/v1/feedback", json={"impression_id": body["impression_id"], "positions": pos}
                )
                if f.status_code == 200:
                    sent[body["impression_id"]] = set(pos)

        tasks = []
        start_t = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            await asyncio.sleep(max(0.0, start_t + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return lat, errors, {"impressions": n - errors, "clicks": sum(map(len, sent.values()))}


async def max_throughput(url: str, seconds: float, concurrency: int = 32) -> float:
    done = 0
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:

        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < end:
                r = await c.post("/v1/recommend", json={**REQ, "user_key": f"t{w}-{i}"})
                done += r.status_code == 200
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--ctr", action="store_true", help="Rerank with the real kserve CTR server.")
    ap.add_argument("--no-milvus", action="store_true", help="COR from memory (direct only).")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    publish_cor(tmp / "artifacts")
    ports = {k: free_port() for k in ("tgi", "milvus", "ctr", "gw")}
    procs = [
        start([PY, "-c", INSTANT_TGI, str(ports["tgi"])], tmp / "tgi.log"),
        start(
            [
                PY,
                "-m",
                "milvus_lite",
                "server",
                "--data-dir",
                str(tmp / "milvus"),
                "--port",
                str(ports["milvus"]),
            ],
            tmp / "milvus.log",
        ),
    ]
    routing = {
        "arms": [
            {
                "name": "stable",
                "weight": 1,
                "model_version": "bench",
                "backend": {
                    "kind": "tgi",
                    "transport": "http",
                    "url": f"http://127.0.0.1:{ports['tgi']}",
                },
            }
        ]
    }
    (tmp / "routing.json").write_text(json.dumps(routing))
    gw_args = [
        "--log-root",
        str(tmp / "logs"),
        "--routing-file",
        str(tmp / "routing.json"),
        "--cor-root",
        str(tmp / "artifacts"),
        "--cor-encoder",
        "hashing:64",
        "--port",
        str(ports["gw"]),
        "--log-level",
        "warning",
        "--stats-refresh-s",
        "0",
    ]
    if not args.no_milvus:
        gw_args += ["--milvus-uri", f"http://127.0.0.1:{ports['milvus']}"]
    try:
        wait_port(ports["tgi"], procs[0])
        wait_port(ports["milvus"], procs[1])
        if args.ctr:
            ctr = build_ctr_artifact(tmp / "ctr")
            procs.append(
                start(
                    [
                        PY,
                        "-m",
                        "gqr_training.ctr.server",
                        "--model_name",
                        "ctr",
                        "--model_dir",
                        str(ctr),
                        "--http_port",
                        str(ports["ctr"]),
                        "--threads",
                        "1",
                    ],
                    tmp / "ctr.log",
                )
            )
            wait_http(f"http://127.0.0.1:{ports['ctr']}/v1/models/ctr", procs[-1])
            gw_args += ["--ctr-url", f"http://127.0.0.1:{ports['ctr']}"]
        gw = start([PY, "-m", "gqr_serving.gateway.cli", *gw_args], tmp / "gw.log")
        procs.append(gw)
        url = f"http://127.0.0.1:{ports['gw']}"
        wait_http(f"{url}/readyz", gw)
        asyncio.run(fixed_rate(url, 50, 1))  # warm up (connections, model caches)
        lat, errors, sent = asyncio.run(fixed_rate(url, args.rate, args.seconds))
        print(
            f"fixed rate {args.rate}/s x {args.seconds}s: p50 {pct(lat, 0.5):.2f} ms, "
            f"p99 {pct(lat, 0.99):.2f} ms, errors {errors}",
            file=sys.stderr,
        )
        stats = httpx.get(f"{url}/v1/stats", params={"fresh": "true"}, timeout=30).json()
        got_imps = sum(a["impressions"] for a in stats["arms"])
        got_clicks = sum(a["clicks"] for a in stats["arms"])
        tput = asyncio.run(max_throughput(url, min(args.seconds, 5)))
    finally:
        for p in procs:
            kill(p)
    print(
        json.dumps(
            {
                "bench": "gateway",
                "rerank": args.ctr,
                "milvus": not args.no_milvus,
                "rate_rps": args.rate,
                "seconds": args.seconds,
                "p50_ms": round(pct(lat, 0.5), 2),
                "p99_ms": round(pct(lat, 0.99), 2),
                "errors": errors,
                "max_throughput_rps": round(tput, 1),
                "clicks_sent": sent["clicks"],
                "clicks_in_stats": got_clicks,
                "impressions_ok": sent["impressions"],
                "impressions_in_stats_incl_warmup": got_imps,
            }
        )
    )


if __name__ == "__main__":
    main()
