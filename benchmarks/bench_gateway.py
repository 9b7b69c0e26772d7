"""Gateway overhead: p50/p99 latency at a fixed rate and max throughput, LLM made instant.

    .venv/bin/python benchmarks/bench_gateway.py [--rate 200] [--seconds 10] [--ctr] \
        [--no-milvus] [--save after.json] [--compare before.json] [--gateway-src DIR]

The LLM is an instant local server speaking TGI's ``POST /generate`` (the only stand-in, to
isolate the gateway's own cost); COR runs on a real milvus-lite server; ``--ctr`` adds the real
kserve CTR predictor (tiny random-init model) and the over-generate-and-rerank step. Clicks are
posted for ~30% of impressions and ``/v1/stats`` must then hold exactly the impressions served
and the clicks acknowledged (warm-up included); a mismatch exits 1.

The load generator is its own process (uvloop, raw HTTP/1.1 over keep-alive connections: a
few tens of microseconds of CPU per request, so it takes little from the gateway on a small
machine). Latency is measured from each request's *scheduled* send time, so a stalled
generator or gateway cannot hide queueing. Also reported: the gateway's own latency from its
``gqr_gateway_request_seconds`` histogram (bucket upper bounds) and its CPU per request.

Before/after: ``--save`` writes the result; ``--compare FILE`` adds the after/before ratios of
a saved result to the final line. ``--gateway-src DIR`` runs the gateway from another source
tree (e.g. a copy of ``serving/`` from before a change), with this same load generator.
Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
RECOMMEND = "/v1/recommend"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


# -- the load generator (its own process) ----------------------------------------------------


class Client:
    """Minimal HTTP/1.1 client: a pool of keep-alive connections, JSON in, JSON out."""

    def __init__(self, port: int, max_connections: int = 256) -> None:
        self.port, self.max_connections = port, max_connections
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._open = 0
        self._freed = asyncio.Condition()

    async def _get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._freed:
            while not self._idle and self._open >= self.max_connections:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            await self._drop(None)
            raise

    async def _drop(self, writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.close()
        async with self._freed:
            self._open -= 1
            self._freed.notify()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON body or None); raises OSError or IncompleteReadError."""
        data = b"" if body is None else json.dumps(body).encode()
        reader, writer = await self._get()
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\n\r\n".encode()
                + data
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise OSError("chunked responses are not supported by this client")
            raw = await reader.readexactly(length)
        except BaseException:
            await self._drop(writer)
            raise
        if close:
            await self._drop(writer)
        else:
            async with self._freed:
                self._idle.append((reader, writer))
                self._freed.notify()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    async def close(self) -> None:
        for _, w in self._idle:
            w.close()


async def fixed_rate(c: Client, rate: float, seconds: float, tag: str) -> dict[str, Any]:
    """``rate * seconds`` recommends at fixed times; clicks on ~30% of them."""
    lat: list[float] = []
    errors = clicks = ok = 0
    rng = random.Random(0)

    async def one(i: int, due: float) -> None:
        nonlocal errors, clicks, ok
        try:
            status, body = await c.call("POST", RECOMMEND, {**REQ, "user_key": f"{tag}{i}"})
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, body = 0, None
        lat.append(time.perf_counter() - due)
        if status != 200:
            errors += 1
            return
        ok += 1
        if rng.random() < 0.3:
            pos = [rng.randrange(len(body["queries"]))]
            fb = {"impression_id": body["impression_id"], "positions": pos}
            try:
                status, _ = await c.call("POST", "/v1/feedback", fb)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
            clicks += status == 200

    tasks = []
    start_t = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start_t + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return {"lat": lat, "errors": errors, "ok": ok, "clicks": clicks}


async def max_throughput(c: Client, seconds: float, concurrency: int = 32) -> float:
    done = 0
    end = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < end:
            try:
                status, _ = await c.call("POST", RECOMMEND, {**REQ, "user_key": f"t{w}-{i}"})
            except (OSError, asyncio.IncompleteReadError):
                status = 0
            done += status == 200
            i += 1

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done / seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of ``pids`` and their children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    wanted, total = set(pids), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) in wanted or int(fields[1]) in wanted:  # fields[1]: the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def scrape(c: Client) -> dict[float, float]:
    """Cumulative ``le`` buckets of the gateway's /v1/recommend latency histogram."""
    reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    out: dict[float, float] = {}
    prefix = 'gqr_gateway_request_seconds_bucket{endpoint="/v1/recommend",le="'
    for line in text.splitlines():
        if line.startswith(prefix):
            le, value = line[len(prefix) :].split('"}')
            out[float(le)] = float(value)
    return out


def bucket_pct(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The histogram bucket bound (ms) under which a fraction ``q`` of the new requests fall."""
    diff = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = diff[-1][1] if diff else 0.0
    for le, count in diff:
        if total and count >= q * total:
            return le * 1000
    return float("nan")


async def stats_totals(c: Client, want: tuple[int, int], timeout_s: float = 15.0) -> list[int]:
    """Impressions and clicks in ``/v1/stats``: waits (impressions are written in the
    background) until they reach ``want`` or ``timeout_s`` passes."""
    end = time.monotonic() + timeout_s
    while True:
        _, body = await c.call("GET", "/v1/stats?fresh=true")
        got = [sum(a[k] for a in body["arms"]) for k in ("impressions", "clicks")]
        if (got[0] >= want[0] and got[1] >= want[1]) or time.monotonic() > end:
            return got
        await asyncio.sleep(0.2)


async def loadgen(port: int, rate: float, seconds: float, pids: list[int]) -> dict[str, Any]:
    c = Client(port)
    warm = await fixed_rate(c, 50, 1, "w")  # connections, caches
    hist0, cpu0 = await scrape(c), cpu_seconds(pids)
    run = await fixed_rate(c, rate, seconds, "u")
    cpu = cpu_seconds(pids) - cpu0
    hist1 = await scrape(c)
    want = (warm["ok"] + run["ok"], warm["clicks"] + run["clicks"])
    got = await stats_totals(c, want)
    tput = await max_throughput(c, min(seconds, 5))
    await c.close()
    lat = run["lat"]
    return {
        "p50_ms": round(pct(lat, 0.5), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "errors": run["errors"],
        "server_p50_ms_le": bucket_pct(hist0, hist1, 0.5),
        "server_p99_ms_le": bucket_pct(hist0, hist1, 0.99),
        "gateway_cpu_ms_per_request": round(1000 * cpu / max(1, len(lat)), 3),
        "max_throughput_rps": round(tput, 1),
        "impressions_sent": want[0],
        "impressions_in_stats": got[0],
        "clicks_sent": want[1],
        "clicks_in_stats": got[1],
        "counts_exact": got == list(want),
    }


def _loadgen_main(argv: list[str]) -> None:
    import uvloop

    port, rate, seconds = int(argv[0]), float(argv[1]), float(argv[2])
    pids = [int(p) for p in argv[3].split(",")]
    print(json.dumps(uvloop.run(loadgen(port, rate, seconds, pids))))


# -- orchestration -----------------------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--ctr", action="store_true", help="Rerank with the real kserve CTR server.")
    ap.add_argument("--no-milvus", action="store_true", help="COR from memory (direct only).")
    ap.add_argument("--save", type=Path, help="Write the result JSON here.")
    ap.add_argument("--compare", type=Path, help="A saved result: print after/before ratios.")
    ap.add_argument("--gateway-src", type=Path, help="Run the gateway from this serving/ tree.")
    return ap


def main() -> None:
    if sys.argv[1:2] == ["_loadgen"]:
        _loadgen_main(sys.argv[2:])
        return
    args = make_parser().parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    publish_cor(tmp / "artifacts")
    ports = {k: free_port() for k in ("tgi", "milvus", "ctr", "gw")}
    procs = [start([PY, "-c", INSTANT_TGI, str(ports["tgi"])], tmp / "tgi.log")]
    if not args.no_milvus:
        milvus = [PY, "-m", "milvus_lite", "server", "--data-dir", str(tmp / "milvus")]
        procs.append(start([*milvus, "--port", str(ports["milvus"])], tmp / "milvus.log"))
    backend = {"kind": "tgi", "transport": "http", "url": f"http://127.0.0.1:{ports['tgi']}"}
    routing = {
        "arms": [{"name": "stable", "weight": 1, "model_version": "bench", "backend": backend}]
    }
    (tmp / "routing.json").write_text(json.dumps(routing))
    gw_args = [
        *("--log-root", str(tmp / "logs"), "--routing-file", str(tmp / "routing.json")),
        *("--cor-root", str(tmp / "artifacts"), "--cor-encoder", "hashing:64"),
        *("--port", str(ports["gw"]), "--log-level", "warning", "--stats-refresh-s", "0"),
    ]
    if not args.no_milvus:
        gw_args += ["--milvus-uri", f"http://127.0.0.1:{ports['milvus']}"]
    env = {}
    if args.gateway_src is not None:
        env["PYTHONPATH"] = f"{args.gateway_src.resolve()}:{os.environ.get('PYTHONPATH', '')}"
    try:
        wait_port(ports["tgi"], procs[0])
        if not args.no_milvus:
            wait_port(ports["milvus"], procs[1])
        if args.ctr:
            ctr = build_ctr_artifact(tmp / "ctr")
            server = [PY, "-m", "gqr_training.ctr.server", "--model_name", "ctr"]
            server += ["--model_dir", str(ctr), "--http_port", str(ports["ctr"]), "--threads", "1"]
            procs.append(start(server, tmp / "ctr.log"))
            wait_http(f"http://127.0.0.1:{ports['ctr']}/v1/models/ctr", procs[-1])
            gw_args += ["--ctr-url", f"http://127.0.0.1:{ports['ctr']}"]
        gw = start([PY, "-m", "gqr_serving.gateway.cli", *gw_args], tmp / "gw.log", env)
        procs.append(gw)
        wait_http(f"http://127.0.0.1:{ports['gw']}/readyz", gw)
        print(
            f"gateway up (pid {gw.pid}); {args.rate:g} req/s for {args.seconds:g}s ...",
            file=sys.stderr,
        )
        lg = [PY, __file__, "_loadgen", str(ports["gw"]), str(args.rate), str(args.seconds)]
        out = subprocess.run([*lg, str(gw.pid)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            kill(p)
    result = {
        "bench": "gateway",
        "rerank": args.ctr,
        "milvus": not args.no_milvus,
        "gateway_src": str(args.gateway_src or "this tree"),
        "rate_rps": args.rate,
        "seconds": args.seconds,
        **result,
    }
    print(
        f"fixed rate {args.rate:g}/s x {args.seconds:g}s: p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms (gateway histogram: p99 <= "
        f"{result['server_p99_ms_le']:g} ms), errors {result['errors']}, "
        f"{result['gateway_cpu_ms_per_request']:.2f} ms gateway CPU/request; "
        f"max {result['max_throughput_rps']:.1f} req/s",
        file=sys.stderr,
    )
    if args.save is not None:
        args.save.write_text(json.dumps(result) + "\n")
    if args.compare is not None:
        before = json.loads(args.compare.read_text())
        keys = ("p50_ms", "p99_ms", "server_p99_ms_le", "gateway_cpu_ms_per_request")
        keys += ("max_throughput_rps",)
        result["after_over_before"] = {
            k: round(result[k] / before[k], 4) if before.get(k) else None for k in keys
        }
    print(json.dumps(result))
    if not result["counts_exact"]:
        print("counts in /v1/stats differ from what was sent", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
