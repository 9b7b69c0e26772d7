"""Token buckets, client addresses and the 429 answer: honest pace passes, bursts past the
limit are refused with Retry-After, idle buckets do not pile up."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gateway_fakes import ScriptedBackend, client

from gqr_serving.gateway.ratelimit import (
    TokenBuckets,
    client_address,
    parse_networks,
)
from gqr_serving.gateway.service import GatewayParts
from gqr_serving.gateway.settings import GatewaySettings, SettingsError

GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
REQ = {"task": "suggestion", "query": "what is green tea", "ai_answer": "A tea.", "user_key": "u1"}


class Clock:
    """Monotonic time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_the_wait_until_a_token() -> None:
    b = TokenBuckets(2.0, 20)
    for _ in range(20):
        assert b.wait("u", 0.0) == 0.0
        b.take("u", 0.0)
    assert b.wait("u", 0.0) == pytest.approx(0.5)
    assert b.wait("u", 0.5) == 0.0  # one token back after 1/rate seconds
    assert b.wait("other", 0.0) == 0.0  # keys do not share a bucket


def test_honest_pace_is_never_limited() -> None:
    b = TokenBuckets(2.0, 20)
    t = 0.0
    for i in range(5000):  # a click-happy human: bursts of 10 a second, then a pause
        t += 0.1 if i % 10 else 5.0
        assert b.wait("u", t) == 0.0, i
        b.take("u", t)


def test_idle_buckets_are_dropped_and_memory_is_bounded() -> None:
    b = TokenBuckets(1.0, 5, max_keys=100)
    for i in range(50):
        b.take(f"u{i}", 0.0)
    assert len(b) == 50
    b.take("late", 10.0)  # everyone else is full again after 5 s: as good as absent
    assert len(b) == 1
    for i in range(1000):
        b.take(f"v{i}", 20.0)
    assert len(b) == 100


def test_off_when_rate_or_burst_is_zero() -> None:
    b = TokenBuckets(0.0, 0)
    for _ in range(1000):
        assert b.wait("u", 0.0) == 0.0
        b.take("u", 0.0)
    assert len(b) == 0
    with pytest.raises(ValueError, match="rate=-1"):
        TokenBuckets(-1, 1)


def test_client_address_believes_only_trusted_proxies() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"  # not a proxy
    assert client_address("10.1.1.1", "198.51.100.7", proxies) == "198.51.100.7"
    # The client wrote the left hops itself; the nearest untrusted hop is the real peer.
    assert client_address("10.1.1.1", "6.6.6.6, 198.51.100.7, 10.2.2.2", proxies) == (
        "198.51.100.7"
    )
    assert client_address("10.1.1.1", None, proxies) == "10.1.1.1"
    assert client_address("10.1.1.1", "1.2.3.4", ()) == "10.1.1.1"
    assert client_address(None, None, ()) == "unknown"


@pytest.mark.anyio
async def test_feedback_is_limited_per_the_user_its_impression_is_bound_to(
    tmp_path: Path,
) -> None:
    clock = Clock()
    kw = {"rate_feedback_user_per_s": 0.5, "rate_feedback_user_burst": 2}
    async with client(tmp_path, ScriptedBackend(GOOD), parts=GatewayParts(clock=clock), **kw) as c:

        async def click(user: str | None) -> int:
            req = (
                {**REQ, "user_key": user}
                if user
                else {k: v for k, v in REQ.items() if k != "user_key"}
            )
            iid = (await c.post("/v1/recommend", json=req)).json()["impression_id"]
            fb = {"impression_id": iid, "user_key": user, "positions": [0]}
            return (await c.post("/v1/feedback", json=fb)).status_code

        alice = [await click("alice") for _ in range(3)]
        clock.now += 10.0  # alice's recommend bucket refills too
        bob = [await click("bob") for _ in range(2)]
        anonymous = [await click(None) for _ in range(3)]  # bound to nobody: address only (off)
    assert alice == [200, 200, 429]
    assert bob == [200, 200]
    assert anonymous == [200, 200, 200]


def test_trusted_proxies_setting(tmp_path: Path) -> None:
    base = {"GQR_GATEWAY_LOG_ROOT": str(tmp_path), "GQR_GATEWAY_LLM_URL": "http://x"}
    s = GatewaySettings.from_sources([], {**base, "GQR_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
    assert s.trusted_proxies == ("10.0.0.0/8", "::1")
    with pytest.raises(SettingsError, match=r"--trusted-proxies.*'10\.0\.0\.300/8'.*CIDR"):
        GatewaySettings.from_sources(["--trusted-proxies", "10.0.0.300/8"], base)


@pytest.mark.anyio
async def test_recommend_past_the_user_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    clock = Clock()
    parts = GatewayParts(clock=clock)
    kw = {"rate_recommend_user_per_s": 0.5, "rate_recommend_user_burst": 3}
    async with client(tmp_path, ScriptedBackend(GOOD), parts=parts, **kw) as c:
        codes = [(await c.post("/v1/recommend", json=REQ)).status_code for _ in range(3)]
        r = await c.post("/v1/recommend", json=REQ)
        other = await c.post("/v1/recommend", json={**REQ, "user_key": "u2"})
        clock.now += 2.0
        again = await c.post("/v1/recommend", json=REQ)
        metrics = (await c.get("/metrics")).text
    assert codes == [200, 200, 200]
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"] == "rate_limited"
    assert "0.5 requests/s (burst 3) per user" in r.json()["detail"]
    assert "--rate-recommend-user-per-s" in r.json()["detail"]
    assert other.status_code == 200 and again.status_code == 200
    assert 'gqr_gateway_rate_limited_total{endpoint="recommend",key="user"} 1.0' in metrics


@pytest.mark.anyio
async def test_address_limit_covers_feedback_and_keyless_requests(tmp_path: Path) -> None:
    clock = Clock()
    parts = GatewayParts(clock=clock)
    kw = {
        "rate_recommend_addr_per_s": 50.0,
        "rate_recommend_addr_burst": 5,
        "rate_feedback_addr_per_s": 50.0,
        "rate_feedback_addr_burst": 2,
    }
    async with client(tmp_path, ScriptedBackend(GOOD), parts=parts, **kw) as c:
        keyless = {k: v for k, v in REQ.items() if k != "user_key"}
        codes = [(await c.post("/v1/recommend", json=keyless)).status_code for _ in range(6)]
        iid = (await c.post("/v1/recommend", json=REQ)).json().get("impression_id")
        assert iid is None  # the address is spent, whichever user asks
        clock.now += 1.0
        iid = (await c.post("/v1/recommend", json=REQ)).json()["impression_id"]
        fb = [
            (
                await c.post(
                    "/v1/feedback",
                    json={"impression_id": iid, "user_key": REQ["user_key"], "positions": [0]},
                )
            )
            for _ in range(3)
        ]
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=c.app, client=("198.51.100.1", 1)),  # type: ignore[attr-defined]
            base_url="http://gw",
        )
        async with other:
            elsewhere = await other.post("/v1/recommend", json=keyless)
    assert codes == [200] * 5 + [429]
    assert [r.status_code for r in fb] == [200, 200, 429]
    assert fb[2].headers["retry-after"] == "1"
    assert elsewhere.status_code == 200
