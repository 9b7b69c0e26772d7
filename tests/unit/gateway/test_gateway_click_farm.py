"""Click farms against a whole gateway app: rate limited, and what gets through is filtered, so
/v1/stats (the canary analysis' input) shows the honest users' CTR, and the operator's rollout
decision on it is the one honest traffic alone gives."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_fakes import ScriptedBackend, client

from gqr_operator.observe import parse_stats
from gqr_operator.rollout.analysis import AnalysisConfig, ArmCounts, analyse
from gqr_serving.gateway.service import GatewayParts

pytestmark = pytest.mark.anyio
GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A tea."}
ALL = [0, 1, 2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def from_address(c: httpx.AsyncClient, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same app, connecting from ``host``."""
    transport = httpx.ASGITransport(app=c.app, client=(host, 40000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as other:
        yield other


async def stats(c: httpx.AsyncClient) -> dict[str, Any]:
    c.app.state.gateway.sink.flush()  # type: ignore[attr-defined]
    r = await c.get("/v1/stats", params={"window": "1h", "fresh": "true"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def farm(c: httpx.AsyncClient, clock: Clock, users: list[str], rounds: int, arm: str | None):
    """``rounds`` of recommend + click every position (on ``arm``'s answers only, if given),
    as fast as a script goes (5 ms apart); returns the status codes seen."""
    codes: dict[str, list[int]] = {"recommend": [], "feedback": []}
    for i in range(rounds):
        clock.now += 0.005
        r = await c.post("/v1/recommend", json={**REQ, "user_key": users[i % len(users)]})
        codes["recommend"].append(r.status_code)
        if r.status_code == 200 and (arm is None or r.json()["arm"] == arm):
            body = {
                "impression_id": r.json()["impression_id"],
                "user_key": users[i % len(users)],
                "positions": ALL,
            }
            codes["feedback"].append((await c.post("/v1/feedback", json=body)).status_code)
    return codes


async def honest(c: httpx.AsyncClient, clock: Clock, n: int, ctr: dict[str, float]) -> None:
    """``n`` requests from different users, a second apart per user; a user clicks one query
    with the probability its arm's ``ctr`` gives."""
    rng = random.Random(7)
    for i in range(n):
        clock.now += 0.05
        r = await c.post("/v1/recommend", json={**REQ, "user_key": f"user-{i // 3}"})
        assert r.status_code == 200, r.text
        got = r.json()
        if rng.random() < ctr.get(got["arm"], 0.2):
            body = {
                "impression_id": got["impression_id"],
                "user_key": f"user-{i // 3}",
                "positions": [rng.randrange(3)],
            }
            assert (await c.post("/v1/feedback", json=body)).status_code == 200


async def test_one_user_farm_is_limited_and_filtered(tmp_path: Path) -> None:
    clock = Clock()
    async with client(tmp_path, ScriptedBackend(GOOD), parts=GatewayParts(clock=clock)) as c:
        async with from_address(c, "198.51.100.20") as people:
            await honest(people, clock, 300, {"stable": 0.15})
        before = await stats(c)
        codes = await farm(c, clock, ["farmer"], 1000, None)
        after = await stats(c)
        metrics = (await c.get("/metrics")).text
    accepted = codes["recommend"].count(200)
    limited = codes["recommend"].count(429)
    assert limited + accepted == 1000 and 20 <= accepted <= 30  # burst 20 + 2/s for 5 s
    assert codes["feedback"] == [200] * accepted  # acknowledged like any click
    (b,), (a,) = before["arms"], after["arms"]
    assert (a["impressions"], a["clicks"], a["ctr"]) == (b["impressions"], b["clicks"], b["ctr"])
    assert (a["invalid_impressions"], a["invalid_clicks"]) == (accepted, 3 * accepted)
    assert (
        f'gqr_gateway_rate_limited_total{{endpoint="recommend",key="user"}} {limited}.0' in metrics
    )
    assert f'gqr_gateway_invalid_clicks_total{{reason="all_positions"}} {3 * accepted}.0' in metrics


def _routing(tmp_path: Path) -> Path:
    arms = [
        {"name": name, "weight": 50, "model_version": version, "backend": {"url": "http://x"}}
        for name, version in (("stable", "v1"), ("canary", "v2"))
    ]
    path = tmp_path / "routing.json"
    path.write_text(json.dumps({"salt": "exp", "arms": arms}))
    return path


def _decide(doc: dict[str, Any]) -> str:
    counts = parse_stats(doc, "v1", "v2")
    return analyse(counts.stable, counts.canary, CONFIG).decision


CONFIG = AnalysisConfig(confidence=0.95, max_relative_drop=0.0, min_impressions=300)


async def test_farm_aimed_at_the_canary_leaves_the_rollout_decision_alone(
    tmp_path: Path,
) -> None:
    clock = Clock()
    parts = GatewayParts(clock=clock)
    routing = _routing(tmp_path)
    # Address limits on (off by default), as where the gateway sees its clients' addresses.
    addr = {f"rate_{e}_addr_per_s": 50.0 for e in ("recommend", "feedback")}
    backend = ScriptedBackend(GOOD)
    # The worst case: a deployment that tells clients their arm (off by default), so the farm
    # can aim at the canary.
    async with client(
        tmp_path, backend, parts=parts, routing_file=routing, expose_arm=True, **addr
    ) as c:
        async with from_address(c, "198.51.100.20") as people:
            await honest(people, clock, 900, {"stable": 0.3, "canary": 0.1})
        honest_only = await stats(c)
        async with from_address(c, "203.0.113.66") as bots:
            codes = await farm(bots, clock, [f"bot-{i}" for i in range(20)], 1000, "canary")
        with_farm = await stats(c)
    assert _decide(honest_only) == "fail"  # the canary is worse
    assert codes["recommend"].count(429) > 400  # the farm's address ran dry
    assert _decide(with_farm) == "fail"
    canary = {a["arm"]: a for a in with_farm["arms"]}["canary"]
    canary_before = {a["arm"]: a for a in honest_only["arms"]}["canary"]
    assert canary["clicked_impressions"] == canary_before["clicked_impressions"]
    assert canary["impressions"] == canary_before["impressions"]
    # What the farm would have done unfiltered: the canary's CTR over stable's.
    farm_imps = canary["invalid_impressions"]
    assert farm_imps > 100
    counts = parse_stats(with_farm, "v1", "v2")
    raw = ArmCounts(counts.canary.impressions + farm_imps, counts.canary.clicks + farm_imps)
    assert raw.ctr > counts.stable.ctr
    assert analyse(counts.stable, raw, CONFIG).decision != "fail"
