"""The REAL gateway under uvicorn (a subprocess) with real milvus-lite, the real kserve CTR
server, a real random-init LM (in process for 'stable', behind the TGI stand-in for
'canary'); then a load test with clicks, a second replica, and killing each backend."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from testsupport.artifacts import build_ctr_artifact, build_random_gpt2, publish_cor
from testsupport.procs import PY, free_port, kill, start, wait_http, wait_port
from testsupport.tgi_standin import start_tgi_standin

from gqr_serving.gateway.router import assign
from gqr_serving.gateway.routing_file import load_routing

pytestmark = pytest.mark.anyio
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A drink."}


@dataclass
class Live:
    url: str
    procs: dict[str, object]
    tmp: Path
    args: list[str]
    stable_user: str
    canary_user: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("gw-live")
    model = build_random_gpt2(tmp / "lm")
    publish_cor(tmp / "artifacts")
    ctr_dir = build_ctr_artifact(tmp / "ctr")
    ports = {k: free_port() for k in ("milvus", "ctr", "tgi", "gw")}
    procs = {
        "milvus": start(
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
        "ctr": start(
            [
                PY,
                "-m",
                "gqr_training.ctr.server",
                "--model_name",
                "ctr",
                "--model_dir",
                str(ctr_dir),
                "--http_port",
                str(ports["ctr"]),
                "--threads",
                "1",
            ],
            tmp / "ctr.log",
        ),
        "tgi": start_tgi_standin(model, "127.0.0.1", ports["tgi"], tmp / "tgi.log", threads=0),
    }
    routing = {
        "salt": "live",
        "decoding": {"max_new_tokens": 8, "temperature": 0.7, "seed_policy": "per_user"},
        "arms": [
            {
                "name": "stable",
                "weight": 50,
                "model_version": "v1",
                "backend": {"kind": "local", "model": str(model), "timeout_s": 20},
            },
            {
                "name": "canary",
                "weight": 50,
                "model_version": "v2",
                "backend": {
                    "kind": "tgi",
                    "url": f"http://127.0.0.1:{ports['tgi']}",
                    "transport": "http",
                    "timeout_s": 20,
                    "failure_threshold": 100,
                },
            },
        ],
    }
    (tmp / "routing.json").write_text(json.dumps(routing))
    (tmp / "token").write_text("admin-token-0123456789abcdef")
    args = [
        "--log-root",
        str(tmp / "logs"),
        "--routing-file",
        str(tmp / "routing.json"),
        "--cor-root",
        str(tmp / "artifacts"),
        "--milvus-uri",
        f"http://127.0.0.1:{ports['milvus']}",
        "--cor-encoder",
        "hashing:64",
        "--ctr-url",
        f"http://127.0.0.1:{ports['ctr']}",
        "--admin-token-file",
        str(tmp / "token"),
        "--spool-dir",
        str(tmp / "spool"),
        "--expose-arm",  # test 1 checks which arm served each user
        "true",
        "--stats-refresh-s",
        "0",
        "--request-budget-s",
        "30",
        "--cor-timeout-s",
        "5",
        "--ctr-timeout-s",
        "10",
    ]
    try:
        wait_port(ports["milvus"], procs["milvus"])  # type: ignore[arg-type]
        wait_http(f"http://127.0.0.1:{ports['ctr']}/v1/models/ctr", procs["ctr"])  # type: ignore[arg-type]
        wait_http(f"http://127.0.0.1:{ports['tgi']}/health", procs["tgi"])  # type: ignore[arg-type]
        procs["gw"] = start(
            [PY, "-m", "gqr_serving.gateway.cli", *args, "--port", str(ports["gw"])], tmp / "gw.log"
        )
        wait_http(f"http://127.0.0.1:{ports['gw']}/readyz", procs["gw"])  # type: ignore[arg-type]
        arms = load_routing(tmp / "routing.json").arms
        users = [f"user-{i}" for i in range(100)]
        stable = next(u for u in users if assign(arms, u, "live").name == "stable")
        canary = next(u for u in users if assign(arms, u, "live").name == "canary")
        yield Live(f"http://127.0.0.1:{ports['gw']}", procs, tmp, args, stable, canary)
    finally:
        for p in procs.values():
            kill(p)  # type: ignore[arg-type]


async def _recommend(c: httpx.AsyncClient, user: str, **kw: object) -> httpx.Response:
    return await c.post("/v1/recommend", json={**REQ, "user_key": user, **kw})


async def test_1_serves_both_arms_with_cor_and_rerank(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as c:
        bodies = [(await _recommend(c, u)).json() for u in (live.stable_user, live.canary_user)]
        more = [(await _recommend(c, live.stable_user)).json() for _ in range(4)]
    assert all("arm" in b for b in bodies + more), bodies + more
    assert [b["arm"] for b in bodies] == ["stable", "canary"]
    assert [b["model_version"] for b in bodies] == ["v1", "v2"]
    assert all(len(b["queries"]) == 3 for b in bodies + more), bodies + more
    assert any(b["reranked"] for b in bodies + more)  # the kserve CTR predictor ordered them


async def test_2_load_with_clicks_counts_exactly(live: Live) -> None:
    rng = random.Random(7)
    sent: dict[str, set[int]] = {}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as c:
        before = (await c.get("/v1/stats", params={"fresh": "true"})).json()["arms"]
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                r = await _recommend(c, f"load-{i}")
                assert r.status_code == 200, r.text
                body = r.json()
                clicks = [p for p in range(len(body["queries"])) if rng.random() < 0.4]
                if len(clicks) == len(body["queries"]):
                    clicks.pop()  # every position clicked is invalid traffic: not counted
                sent[body["impression_id"]] = set(clicks)
                for _ in range(2):  # every click sent twice: a retry must count once
                    if clicks:
                        f = await c.post(
                            "/v1/feedback",
                            json={
                                "impression_id": body["impression_id"],
                                "user_key": f"load-{i}",
                                "positions": clicks,
                            },
                        )
                        assert f.status_code == 200

        await asyncio.gather(*(one(i) for i in range(40)))
        want_imps, want_clicks = len(before_total(before, "impressions")) + 40, 0
        want_clicks = sum(len(s) for s in sent.values()) + before_total(before, "clicks")[0]
        for _ in range(50):
            arms = (await c.get("/v1/stats", params={"fresh": "true"})).json()["arms"]
            if sum(a["impressions"] for a in arms) >= 40 + before_total(before, "impressions")[0]:
                break
            await asyncio.sleep(0.1)
    assert sum(a["impressions"] for a in arms) == 40 + before_total(before, "impressions")[0]
    assert sum(a["clicks"] for a in arms) == want_clicks
    del want_imps


def before_total(arms: list[dict[str, int]], field: str) -> list[int]:
    return [sum(a[field] for a in arms)]


async def test_3_second_replica_on_the_same_root_agrees(live: Live) -> None:
    port = free_port()
    proc = start(
        [PY, "-m", "gqr_serving.gateway.cli", *live.args, "--port", str(port)], live.tmp / "gw2.log"
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc)
        async with httpx.AsyncClient(timeout=30) as c:
            a = (await c.get(f"{live.url}/v1/stats", params={"fresh": "true"})).json()["arms"]
            b = (await c.get(f"http://127.0.0.1:{port}/v1/stats", params={"fresh": "true"})).json()
        assert a == b["arms"] and a
    finally:
        kill(proc)


async def test_4_killing_backends_degrades_then_503(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as c:
        kill(live.procs["ctr"])  # type: ignore[arg-type]
        r = await _recommend(c, live.stable_user)
        assert r.status_code == 200 and r.json()["reranked"] is False
        kill(live.procs["tgi"])  # type: ignore[arg-type]
        r = await _recommend(c, live.canary_user)
        body = r.json()
        assert r.status_code == 200 and body["fallback"] is True and len(body["queries"]) == 3
        assert body["fallback_reason"].startswith("llm_")
        kill(live.procs["milvus"])  # type: ignore[arg-type]
        r = await _recommend(c, live.stable_user)
        assert r.status_code == 200 and r.json()["arm"] == "stable"  # LLM + direct COR
        r = await _recommend(c, live.canary_user, query="a query nobody ever searched")
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        metrics = (await c.get("/metrics")).text
    assert 'gqr_gateway_fallbacks_total{arm="canary"' in metrics
    assert "gqr_gateway_ctr_errors_total" in metrics
