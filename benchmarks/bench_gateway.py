"""Gateway overhead: p50/p99 latency at a fixed rate and max throughput, LLM made instant.

    .venv/bin/python -m benchmarks.bench_gateway [--rate 200] [--seconds 10] [--ctr] \
        [--no-milvus] [--mix sim|single] [--save after.json] [--compare before.json] \
        [--gateway-src DIR] [--gateway-arg=--cor-timeout-s=0.01 ...]

(from the repository root, as a module: it imports ``testsupport``). The LLM is an instant
local server speaking TGI's ``POST /generate`` (``testsupport.http_stub``, the only stand-in, to
isolate the gateway's own cost); COR runs on a real milvus-lite server; ``--ctr`` adds the real
kserve CTR predictor (tiny random-init model) and the over-generate-and-rerank step. Clicks are
posted for ~30% of impressions and ``/v1/stats`` must then hold exactly the impressions served
and the clicks acknowledged (warm-up included); a mismatch exits 1.

Query mix (``--mix sim``, the default): the simulated world's traffic. COR is built from
``--train-days`` days of its sessions (Zipf-like topic popularity, ``gqr_training.sim``) and the
requests (query, session history, AI answer, user and session keys) are the following day's,
so they hold popular queries with many successors, sparse ones and queries never seen (the
last two need the ANN step). The mix and how COR answered (from memory, cached ANN result,
ANN search, or over budget) are printed, so a figure cannot hide a cache that only ever sees
one query. ``--mix single`` sends one fixed query ("what is green tea"), the best case.

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
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

try:
    from testsupport import http_stub
    from testsupport.artifacts import build_ctr_artifact, publish_cor
    from testsupport.percentile import pct
    from testsupport.procs import PY, free_port, kill, start, start_ctr_server, wait_http, wait_port
except ModuleNotFoundError as exc:  # run as a script: benchmarks/ alone is on sys.path
    raise SystemExit(
        f"{exc}: run python -m benchmarks.bench_gateway from the repository root"
    ) from None

REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A drink."}
RECOMMEND = "/v1/recommend"
REPO = Path(__file__).resolve().parents[1]
MIN_COOCCURRING = 5  # the gateway's RetrievalConfig default: fewer successors -> ANN step


# -- the load generator (its own process) ----------------------------------------------------


class Client:
    """Minimal HTTP/1.1 client: a pool of keep-alive connections, JSON in, JSON out.

    Like any keep-alive client it does not reuse a connection the server may be closing:
    uvicorn closes one idle for 5 s (``timeout_keep_alive``), so older idle ones are dropped.
    """

    MAX_IDLE_S = 4.0

    def __init__(self, port: int, max_connections: int = 256) -> None:
        self.port, self.max_connections = port, max_connections
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._open = 0
        self._freed = asyncio.Condition()

    async def _get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._freed:
            while not self._idle and self._open >= self.max_connections:
                await self._freed.wait()
            while self._idle:
                reader, writer, since = self._idle.pop()
                if time.monotonic() - since < self.MAX_IDLE_S and not reader.at_eof():
                    return reader, writer
                writer.close()  # stale: open a fresh one in its place
                self._open -= 1
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
                self._idle.append((reader, writer, time.monotonic()))
                self._freed.notify()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    async def close(self) -> None:
        for _, w, _ in self._idle:
            w.close()


async def fixed_rate(
    c: Client, rate: float, bodies: list[dict[str, Any]], tag: str
) -> dict[str, Any]:
    """``bodies`` recommended at ``rate`` per second, at fixed times; clicks on ~30% of them."""
    lat: list[float] = []
    errors = clicks = ok = 0
    statuses: Counter[str] = Counter()
    rng = random.Random(0)

    async def one(i: int, due: float) -> None:
        nonlocal errors, clicks, ok
        body_in = bodies[i]
        if "user_key" not in body_in:
            body_in = {**body_in, "user_key": f"{tag}{i}"}
        try:
            status, body = await c.call("POST", RECOMMEND, body_in)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, body = 0, None
        lat.append(time.perf_counter() - due)
        if status != 200:
            errors += 1
            statuses[str(status)] += 1
            if len(statuses) < 5:
                print(f"HTTP {status}: {body!r:.300}", file=sys.stderr)
            return
        ok += 1
        if rng.random() < 0.3:
            pos = [rng.randrange(len(body["queries"]))]
            fb = {
                "impression_id": body["impression_id"],
                "user_key": body_in.get("user_key"),
                "session_id": body_in.get("session_id"),
                "positions": pos,
            }
            try:
                status, _ = await c.call("POST", "/v1/feedback", fb)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
            clicks += status == 200

    tasks = []
    start_t = time.perf_counter()
    for i in range(len(bodies)):
        due = start_t + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return {"lat": lat, "errors": errors, "ok": ok, "clicks": clicks, "statuses": statuses}


async def max_throughput(
    c: Client, seconds: float, bodies: list[dict[str, Any]], concurrency: int = 32
) -> float:
    done = 0
    end = time.perf_counter() + seconds
    sent = 0

    async def worker(w: int) -> None:
        nonlocal done, sent
        i = 0
        while time.perf_counter() < end:
            body = {"user_key": f"t{w}-{i}", **bodies[sent % len(bodies)]}
            sent += 1
            try:
                status, _ = await c.call("POST", RECOMMEND, body)
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


async def scrape(c: Client) -> tuple[dict[float, float], Counter[str]]:
    """Cumulative ``le`` buckets of the gateway's /v1/recommend latency histogram, and the
    COR counters (``status=...`` and ``path=...``; a gateway before the cache has no paths)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
    text = (await reader.read()).decode()
    writer.close()
    out: dict[float, float] = {}
    cor: Counter[str] = Counter()
    prefix = 'gqr_gateway_request_seconds_bucket{endpoint="/v1/recommend",le="'
    for line in text.splitlines():
        if line.startswith(prefix):
            le, value = line[len(prefix) :].split('"}')
            out[float(le)] = float(value)
        for name, label in (
            ("gqr_gateway_cor_total", "status"),
            ("gqr_gateway_cor_path_total", "path"),
        ):
            head = f'{name}{{{label}="'
            if line.startswith(head):
                key, value = line[len(head) :].split('"}')
                cor[f"{label}={key}"] += float(value)
    return out, cor


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


def cor_shares(cor: Counter[str], n: int) -> dict[str, Any]:
    """How COR answered the measured requests, as shares of them."""
    out: dict[str, Any] = {k: round(v / max(1, n), 4) for k, v in sorted(cor.items()) if v}
    ann = sum(cor[f"path={p}"] for p in ("cache", "ann", "none"))
    if ann:
        out["ann_needed_share"] = round(ann / max(1, n), 4)
        out["ann_cache_hit_rate"] = round(cor["path=cache"] / ann, 4)
        out["ann_over_budget_rate"] = round(cor["path=none"] / ann, 4)
    return out


async def loadgen(
    port: int, rate: float, seconds: float, pids: dict[str, list[int]], bodies: list[Any]
) -> dict[str, Any]:
    c = Client(port)
    n_run = int(rate * seconds)
    warm = await fixed_rate(c, 50, bodies[:50], "w")  # connections, caches
    run_bodies = bodies[50 : 50 + n_run]
    (hist0, cor0), cpu0 = await scrape(c), {k: cpu_seconds(v) for k, v in pids.items()}
    run = await fixed_rate(c, rate, run_bodies, "u")
    cpu = {k: cpu_seconds(v) - cpu0[k] for k, v in pids.items()}
    hist1, cor1 = await scrape(c)
    want = (warm["ok"] + run["ok"], warm["clicks"] + run["clicks"])
    got = await stats_totals(c, want)
    tput = await max_throughput(c, min(seconds, 5), bodies[50 + n_run :] or bodies)
    await c.close()
    lat = run["lat"]
    cor1.subtract(cor0)
    per_req = {
        f"{k}_cpu_ms_per_request": round(1000 * v / max(1, len(lat)), 3)
        for k, v in cpu.items()
        if k != "gateway"
    }
    return {
        "p50_ms": round(pct(lat, 0.5) * 1000, 2),
        "p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "errors": run["errors"],
        "error_statuses": dict(run["statuses"]),
        "server_p50_ms_le": bucket_pct(hist0, hist1, 0.5),
        "server_p99_ms_le": bucket_pct(hist0, hist1, 0.99),
        "gateway_cpu_ms_per_request": round(1000 * cpu["gateway"] / max(1, len(lat)), 3),
        **per_req,
        "cor": cor_shares(cor1, len(lat)),
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
    pids = json.loads(argv[3])
    bodies = json.loads(Path(argv[4]).read_text())
    print(json.dumps(uvloop.run(loadgen(port, rate, seconds, pids, bodies))))


# -- the query mix -----------------------------------------------------------------------------


def sim_workload(
    root: Path, train_days: int, n: int, seed: int
) -> tuple[list[Any], dict[str, Any]]:
    """Publish COR built from ``train_days`` days of simulated sessions under ``root``; return
    the next day's first ``n`` requests as gateway bodies, and what the mix holds."""
    from gqr_serving.cor import normalize_query
    from gqr_training.cor.artifact_writer import publish, write_artifact
    from gqr_training.cor.extract import ExtractConfig, extract
    from gqr_training.sim import World

    world, day0 = World(seed=seed), date(2025, 1, 1)
    sessions: dict[str, list[tuple[float | None, str]]] = {}
    for d in range(train_days):
        for r in world.sample_requests(day0 + timedelta(days=d), 15000):
            sessions.setdefault(r.session_id, []).append((r.ts.timestamp(), r.query))
    rows, _ = extract(sessions.items(), ExtractConfig())
    write_artifact(root, "sim", rows, {"source": {"kind": "sim", "days": train_days}})
    publish(root, "sim")
    n_succ = Counter(q for q, _, _ in rows)
    reqs = world.sample_requests(day0 + timedelta(days=train_days), n)
    kinds: Counter[str] = Counter()
    for r in reqs:
        have = n_succ.get(normalize_query(r.query), 0)
        kinds["unseen" if have == 0 else "sparse" if have < MIN_COOCCURRING else "direct"] += 1
    bodies = [
        {
            "task": "suggestion",
            "query": r.query,
            "history": list(r.history)[-20:],
            "ai_answer": r.ai_response,
            "user_key": r.user_key,
            "session_id": r.session_id,
        }
        for r in reqs
    ]
    mix = {
        "train_days": train_days,
        "known_queries": len(n_succ),
        "transitions": len(rows),
        "requests": n,
        "distinct_queries": len({normalize_query(r.query) for r in reqs}),
        **{f"share_{k}": round(v / n, 4) for k, v in sorted(kinds.items())},
    }
    return bodies, mix


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
    ap.add_argument("--mix", choices=("sim", "single"), default="sim", help="Query mix.")
    ap.add_argument("--train-days", type=int, default=14, help="Sim days COR is built from.")
    ap.add_argument("--seed", type=int, default=0, help="Sim world seed.")
    ap.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        help="Extra gateway flag, e.g. --gateway-arg=--cor-timeout-s=0.01 (repeatable).",
    )
    return ap


def main() -> None:
    if sys.argv[1:2] == ["_loadgen"]:
        _loadgen_main(sys.argv[2:])
        return
    args = make_parser().parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    n_bodies = 50 + int(args.rate * args.seconds) + 20000
    if args.mix == "sim":
        print(f"building COR from {args.train_days} simulated days ...", file=sys.stderr)
        bodies, mix = sim_workload(tmp / "artifacts", args.train_days, n_bodies, args.seed)
    else:
        publish_cor(tmp / "artifacts")
        bodies, mix = [REQ] * n_bodies, {"requests": n_bodies, "distinct_queries": 1}
    (tmp / "bodies.json").write_text(json.dumps(bodies))
    ports = {k: free_port() for k in ("tgi", "milvus", "ctr", "gw")}
    procs = [start([PY, http_stub.__file__, str(ports["tgi"])], tmp / "tgi.log")]
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
    gw_args += args.gateway_arg
    # The load generator replays a day's users within seconds: no per-user limit (env, which
    # a gateway from --gateway-src that predates the setting ignores).
    env = {
        "GQR_GATEWAY_RATE_RECOMMEND_USER_PER_S": "0",
        "GQR_GATEWAY_RATE_FEEDBACK_USER_PER_S": "0",
    }
    if args.gateway_src is not None:
        env["PYTHONPATH"] = f"{args.gateway_src.resolve()}:{os.environ.get('PYTHONPATH', '')}"
    try:
        wait_port(ports["tgi"], procs[0])
        if not args.no_milvus:
            wait_port(ports["milvus"], procs[1])
        if args.ctr:
            ctr = build_ctr_artifact(tmp / "ctr")
            procs.append(start_ctr_server(ctr, ports["ctr"], tmp / "ctr.log", "--threads", "1"))
            gw_args += ["--ctr-url", f"http://127.0.0.1:{ports['ctr']}"]
        gw = start([PY, "-m", "gqr_serving.gateway.cli", *gw_args], tmp / "gw.log", env)
        procs.append(gw)
        wait_http(f"http://127.0.0.1:{ports['gw']}/readyz", gw, timeout=600)
        print(
            f"gateway up (pid {gw.pid}); {args.rate:g} req/s for {args.seconds:g}s ...",
            file=sys.stderr,
        )
        pids = {"gateway": [gw.pid]}
        if not args.no_milvus:
            pids["milvus"] = [procs[1].pid]
        if args.ctr:
            pids["ctr"] = [procs[-2].pid]
        lg = [PY, "-m", "benchmarks.bench_gateway", "_loadgen", str(ports["gw"])]
        lg += [str(args.rate), str(args.seconds)]
        lg += [json.dumps(pids), str(tmp / "bodies.json")]
        load0 = os.getloadavg()[0]
        out = subprocess.run(lg, capture_output=True, text=True, check=False, cwd=REPO)
        if out.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
        if out.stderr:
            print(out.stderr[-3000:], file=sys.stderr, end="")
        result = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            kill(p)
    result = {
        "bench": "gateway",
        "rerank": args.ctr,
        "milvus": not args.no_milvus,
        "gateway_src": str(args.gateway_src or "this tree"),
        "gateway_args": args.gateway_arg,
        "rate_rps": args.rate,
        "seconds": args.seconds,
        "mix": mix,
        "loadavg_1m_before": round(load0, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        **result,
    }
    print(
        f"fixed rate {args.rate:g}/s x {args.seconds:g}s: p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms (gateway histogram: p99 <= "
        f"{result['server_p99_ms_le']:g} ms), errors {result['errors']}, "
        f"{result['gateway_cpu_ms_per_request']:.2f} ms gateway CPU/request; "
        f"max {result['max_throughput_rps']:.1f} req/s; load average {load0:.2f}",
        file=sys.stderr,
    )
    others = [k for k in ("milvus", "ctr") if f"{k}_cpu_ms_per_request" in result]
    if others:
        cpu = ", ".join(f"{k} {result[f'{k}_cpu_ms_per_request']:.2f} ms" for k in others)
        print(f"CPU per request of the other servers: {cpu}", file=sys.stderr)
    print(f"query mix: {json.dumps(mix)}", file=sys.stderr)
    print(
        f"COR answers (shares of the measured requests): {json.dumps(result['cor'])}",
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
