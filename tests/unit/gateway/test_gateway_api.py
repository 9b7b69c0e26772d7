"""The API end to end in process: answers, validation, feedback, fallback and 503."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from gateway_fakes import ScriptedBackend, client, down

from gqr_serving.logstore import LogReader

pytestmark = pytest.mark.anyio
JSON = {"content-type": "application/json"}

GOOD = "green tea for weight loss <SEP> green tea side effects <SEP> best green tea brands"
REQ = {
    "task": "suggestion",
    "query": "what is green tea",
    "ai_answer": "Green tea is made from unoxidised leaves.",
    "user_key": "alice@example.com",
}


async def test_recommend_answers_and_logs_the_impression(tmp_path: Path) -> None:
    backend = ScriptedBackend(GOOD)
    async with client(tmp_path, backend) as c:
        r = await c.post("/v1/recommend", json=REQ)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["queries"] == GOOD.split(" <SEP> ")
        assert body["fallback"] is False
        assert body["arm"] is None and body["model_version"] is None  # not without expose_arm
        assert "green tea benefits" in backend.prompts[0].text  # COR went into the prompt
        c.app.state.gateway.sink.flush()  # type: ignore[attr-defined]
    (imp,) = LogReader(tmp_path / "logs").read("impression")
    assert imp.impression_id == body["impression_id"] and imp.queries == body["queries"]
    assert imp.user_key and "alice" not in imp.user_key
    assert imp.side_info.cooccurring[0] == "green tea benefits"


async def test_bad_output_is_filtered_and_topped_up_from_cor(tmp_path: Path) -> None:
    reply = "what is green tea <SEP> <query>x</query> <SEP> green tea side effects"
    async with client(tmp_path, ScriptedBackend(reply)) as c:
        body = (await c.post("/v1/recommend", json=REQ)).json()
    assert body["queries"][0] == "green tea side effects"
    assert "what is green tea" not in body["queries"] and len(body["queries"]) == 3


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"query": "x" * 513}, "query"),
        ({"query": "   "}, "query"),
        ({"history": ["q"] * 21}, "history"),
        ({"num_queries": 0}, "num_queries"),
        ({"num_queries": 7}, "num_queries"),  # suggestion accepts 1..6
        ({"task": "horoscope"}, "task"),
        ({"query": "\ud800"}, "query"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    tmp_path: Path, patch: dict[str, object], field: str
) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        body = json.dumps({**REQ, **patch}).encode()  # ASCII escapes carry lone surrogates
        r = await c.post("/v1/recommend", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    assert field in [str(p) for e in r.json()["detail"] for p in e["loc"]]


async def test_non_utf8_body_is_422(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        r = await c.post(
            "/v1/recommend",
            content=b'{"task": "suggestion", "query": "caf\xe9"}',
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]


async def test_missing_required_side_info_is_422(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend("rome hotels")) as c:
        r = await c.post("/v1/recommend", json={"task": "hint", "query": "rome weather"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "history"]


async def test_llm_down_falls_back_to_cor_with_n_queries(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(down())) as c:
        r = await c.post("/v1/recommend", json=REQ)
        metrics = (await c.get("/metrics")).text
    body = r.json()
    assert r.status_code == 200 and body["fallback"] is True
    assert body["fallback_reason"] == "llm_connect"
    assert body["queries"] == ["green tea benefits", "matcha vs green tea", "green tea caffeine"]
    assert 'gqr_gateway_fallbacks_total{arm="stable",reason="llm_connect"} 1.0' in metrics


async def test_slow_llm_falls_back_within_the_budget(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    async with client(tmp_path, ScriptedBackend(GOOD, delay=5.0), request_budget_s=0.3) as c:
        t0 = loop.time()
        body = (await c.post("/v1/recommend", json=REQ)).json()
        assert loop.time() - t0 < 1.0
    assert body["fallback"] is True and len(body["queries"]) == 3


async def test_llm_and_cor_down_is_503_with_a_json_body(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(down()), cor=None) as c:
        r = await c.post("/v1/recommend", json=REQ)
    assert r.status_code == 503
    assert r.json()["error"] == "unavailable" and "COR" in r.json()["detail"]


async def test_feedback_is_idempotent_and_stats_count_once(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        iid = (await c.post("/v1/recommend", json=REQ)).json()["impression_id"]
        first = await c.post(
            "/v1/feedback",
            json={"impression_id": iid, "user_key": REQ["user_key"], "positions": [0, 2]},
        )
        again = await c.post(
            "/v1/feedback",
            json={"impression_id": iid, "user_key": REQ["user_key"], "positions": [2, 2]},
        )
        assert first.json()["recorded"] == [0, 2]
        assert again.status_code == 200 and again.json()["duplicates"] == [2]
        c.app.state.gateway.sink.flush()  # type: ignore[attr-defined]
        stats = (await c.get("/v1/stats", params={"window": "1h", "fresh": "true"})).json()
    (arm,) = stats["arms"]
    assert (arm["impressions"], arm["clicks"], arm["clicked_impressions"]) == (1, 2, 1)


async def test_feedback_rejects_forged_ids_and_unshown_positions(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        iid = (await c.post("/v1/recommend", json=REQ)).json()["impression_id"]
        forged = iid[:-2] + ("AA" if not iid.endswith("AA") else "BB")
        r1 = await c.post(
            "/v1/feedback",
            json={"impression_id": forged, "user_key": REQ["user_key"], "positions": [0]},
        )
        r2 = await c.post(
            "/v1/feedback",
            json={"impression_id": iid, "user_key": REQ["user_key"], "positions": [3]},
        )
    # A bound id whose tag does not match: forged, or served to someone else (403 either way).
    assert r1.status_code == 403 and r1.json()["error"] == "wrong_user"
    assert r2.status_code == 422 and r2.json()["detail"][0]["loc"] == ["body", "positions", 0]


async def test_click_is_not_acknowledged_when_the_store_fails(tmp_path: Path) -> None:
    from gqr_serving.gateway.service import GatewayParts
    from gqr_serving.logstore import LogWriter

    class Broken:
        def write_many(self, records: object) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            return None

    def factory(role: str) -> object:
        return Broken() if role == "clk" else LogWriter(tmp_path / "logs", writer_id="w-imp")

    parts = GatewayParts(writer_factory=factory)  # type: ignore[arg-type]
    async with client(tmp_path, ScriptedBackend(GOOD), parts=parts) as c:
        iid = (await c.post("/v1/recommend", json=REQ)).json()["impression_id"]
        r = await c.post(
            "/v1/feedback",
            json={"impression_id": iid, "user_key": REQ["user_key"], "positions": [0]},
        )
    assert r.status_code == 503 and r.json()["error"] == "log_store_unavailable"


async def test_stats_window_is_validated(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        assert (await c.get("/v1/stats", params={"window": "soon"})).status_code == 422
        assert (await c.get("/v1/stats", params={"window": "400d"})).status_code == 422
        assert (await c.get("/v1/stats", params={"window": "15m"})).status_code == 200


async def test_health_ready_metrics_and_openapi(tmp_path: Path) -> None:
    async with client(tmp_path, ScriptedBackend(GOOD)) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        assert (await c.get("/readyz")).json()["arms"] == ["stable"]
        await c.post("/v1/recommend", json=REQ)
        text = (await c.get("/metrics")).text
        spec = (await c.get("/openapi.json")).json()
    for name in (
        "gqr_gateway_requests_total",
        "gqr_gateway_stage_seconds_bucket",
        "gqr_gateway_ctr",
        "gqr_gateway_sink_pending",
        "gqr_gateway_sink_lag_seconds",
    ):
        assert name in text
    assert 'stage="llm"' in text and 'stage="cor"' in text
    assert {"/v1/recommend", "/v1/feedback", "/v1/stats"} <= set(spec["paths"])
